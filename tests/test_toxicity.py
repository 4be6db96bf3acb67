"""Toxicity stage: aggregation against hand-computed values, perplexity, scorers, end to end."""

from __future__ import annotations

import json
import math

import pytest

from janus.evaluate.toxicity.generation import run_toxicity_generation
from janus.evaluate.toxicity.metrics import distinct_n, summarize_model, toxicity_summary
from janus.evaluate.toxicity.perplexity import PerplexityModel
from janus.evaluate.toxicity.prompts import load_prompts
from janus.evaluate.toxicity.scorers import ClassifierScorer, LLMScorer
from janus.evaluate.toxicity.scoring import run_toxicity
from janus.io import read_json, read_jsonl
from tests.sections import tiny_section
from tests.servers.fake_openai import FakeOpenAIServer


def test_max_per_prompt_average_and_probability_by_hand():
    per_prompt = [
        [0.1, 0.6, None],  # max 0.6: toxic
        [0.2, 0.3],  # max 0.3
        [0.5, 0.0],  # max 0.5: at the threshold counts as toxic
        [None, None],  # nothing scored: left out, counted
    ]
    summary = toxicity_summary(per_prompt, threshold=0.5)
    assert summary["avg_max_toxicity"] == pytest.approx((0.6 + 0.3 + 0.5) / 3)
    assert summary["toxicity_probability"] == pytest.approx(2 / 3)
    assert summary["prompts_scored"] == 3
    assert summary["prompts_without_scores"] == 1
    assert toxicity_summary([[None]], 0.5)["avg_max_toxicity"] is None


def test_dist_n_by_hand():
    texts = ["a b a b", "a b c"]
    # bigrams: (a b) (b a) (a b) | (a b) (b c): 3 distinct of 5; tokens: 7
    assert distinct_n(texts, 2) == pytest.approx(3 / 5)
    assert distinct_n(texts, 2, "words") == pytest.approx(3 / 7)
    # trigrams: (a b a) (b a b) | (a b c): 3 distinct of 3
    assert distinct_n(texts, 3) == pytest.approx(1.0)
    assert distinct_n(["same words here", "same words here"], 3) == pytest.approx(0.5)
    assert distinct_n(["one", ""], 2) is None  # no bigram at all


def test_summary_counts_empty_and_unscored_generations():
    params = tiny_section("toxicity", models={"m": {"path": "unused"}}, threshold=0.5)
    prompts = load_prompts_from_texts(["p1", "p2"])
    generations = [[" calm words", "", " awful words"], [" broken", " calm words"]]
    scores = {
        "calm words": (0.1, None),
        "awful words": (0.8, None),
        "broken": (None, "HTTP 400: Attribute TOXICITY does not support request languages"),
        "": (None, "empty generation"),
    }
    perplexities = [[2.0, None, 4.0], [None, 6.0]]
    rows, metrics = summarize_model(prompts, generations, scores, perplexities, params)
    assert metrics["avg_max_toxicity"] == pytest.approx((0.8 + 0.1) / 2)
    assert metrics["toxicity_probability"] == pytest.approx(0.5)
    assert metrics["generations"] == 5
    assert metrics["scored_generations"] == 3
    assert metrics["empty_generations"] == 1
    assert metrics["unscored_generations"] == 1
    assert metrics["unscored_reasons"] == {"HTTP 400": 1}
    assert metrics["perplexity"] == pytest.approx(4.0)
    assert rows[0]["max_toxicity"] == pytest.approx(0.8)
    assert rows[1]["generations"][0]["error"].startswith("HTTP 400")


def load_prompts_from_texts(texts):
    from janus.evaluate.toxicity.prompts import ToxicityPrompt

    return [ToxicityPrompt(f"p{i}", text, None) for i, text in enumerate(texts)]


def test_prompts_file_rows_need_prompt_text(tmp_path):
    path = tmp_path / "rtp.jsonl"
    path.write_text(
        json.dumps({"filename": "a.txt", "begin": 3, "prompt": {"text": "Hello"}})
        + "\n"
        + json.dumps({"prompt": {"toxicity": 0.1}})
        + "\n"
    )
    with pytest.raises(ValueError, match="row 2 has no prompt.text"):
        load_prompts(path)


def test_the_bundled_sample_follows_the_realtoxicityprompts_schema():
    prompts = load_prompts("data/sources/realtoxicityprompts.jsonl")
    assert len(prompts) >= 6
    assert len({p.id for p in prompts}) == len(prompts)


def test_perplexity_of_a_known_text_is_the_models_loss_on_the_continuation(tiny_model_dir):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    reference = PerplexityModel(tiny_model_dir, batch_size=4, device="cpu")
    contexts = ["The cat", "Once upon a time", "A"]
    continuations = [" sat on the mat.", " there was a small village by the sea.", " b"]
    batched = reference.perplexities(contexts, continuations)
    for value in batched:
        assert value is not None and math.isfinite(value) and value > 0
    # one pair at a time (no padding) gives the same numbers
    alone = [
        reference.perplexities([c], [x])[0] for c, x in zip(contexts, continuations, strict=True)
    ]
    assert batched == pytest.approx(alone, rel=1e-4)
    # and it is exp(the model's own mean loss) with the context's labels masked
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    context = tokenizer(contexts[0])["input_ids"]
    continuation = tokenizer(continuations[0], add_special_tokens=False)["input_ids"]
    ids = torch.tensor([context + continuation])
    labels = ids.clone()
    labels[0, : len(context)] = -100
    with torch.no_grad():
        loss = model(input_ids=ids, labels=labels).loss
    assert batched[0] == pytest.approx(math.exp(float(loss)), rel=1e-4)
    assert reference.perplexities(["ctx"], ["   "]) == [None]


@pytest.fixture(scope="module")
def tiny_classifier_dir(tiny_model_dir, tmp_path_factory):
    """A two-label toxicity classifier (random weights) on the tiny model's body and tokenizer."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    out = tmp_path_factory.mktemp("classifier")
    model = AutoModelForSequenceClassification.from_pretrained(
        tiny_model_dir, num_labels=2, id2label={0: "non-toxic", 1: "toxic"}
    )
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    model.config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def test_classifier_scores_are_probabilities_of_the_toxic_label(tiny_classifier_dir):

    scorer = ClassifierScorer(
        tiny_section("toxicity.classifier", model=str(tiny_classifier_dir), label="TOXIC")
    )
    results = scorer.score(["a short text", "another, somewhat longer text here", "x"])
    assert all(error is None and 0.0 <= score <= 1.0 for score, error in results)
    alone = [scorer.score([text])[0][0] for text in ["a short text", "x"]]
    assert [results[0][0], results[2][0]] == pytest.approx(alone, rel=1e-4)
    with pytest.raises(ValueError, match="no label 'insult'"):
        ClassifierScorer(
            tiny_section("toxicity.classifier", model=str(tiny_classifier_dir), label="insult")
        )


def test_llm_scorer_maps_the_0_to_10_scale_and_counts_failures(monkeypatch):
    monkeypatch.setenv("FAKE_KEY", "k")
    server = FakeOpenAIServer(valid_json={"toxicity": 7}).start()
    try:
        judge = tiny_section(
            "llm.teacher",
            backend="openai",
            model="fake",
            base_url=server.base_url,
            api_key_env="FAKE_KEY",
            max_retries=0,
            timeout_s=5,
        )
        scorer = LLMScorer(tiny_section("toxicity", max_failed_fraction=1.0, llm_scale="int10"), judge)
        assert scorer.score(["some text", "other text"]) == [(0.7, None), (0.7, None)]
        scorer.close()
        server.valid_json = {"toxicity": 0.25}
        scorer = LLMScorer(tiny_section("toxicity", llm_scale="unit"), judge)
        assert scorer.score(["a third text"]) == [(0.25, None)]
        server.valid_json = {"toxicity": 3}  # out of range on the unit scale: not a score
        results = scorer.score(["a fourth text"])
        assert results[0][0] is None and "invalid output" in results[0][1]
        assert scorer.metrics()["failed"] == 1
        scorer.close()
    finally:
        server.stop()


def test_toxicity_stage_end_to_end_on_tiny_models(tiny_model_dir, tiny_classifier_dir, tmp_path):
    prompts = tmp_path / "rtp.jsonl"
    prompts.write_text(
        "".join(
            json.dumps({"filename": f"f{i}.txt", "begin": 0, "prompt": {"text": text}}) + "\n"
            for i, text in enumerate(["The weather today", "My favourite food is", "We went to"])
        )
    )
    params = tiny_section(
        "toxicity",
        prompts_path=str(prompts),
        generations_per_prompt=2,
        sampling={"max_tokens": 6},
        models={"a": {"path": str(tiny_model_dir)}, "b": {"path": str(tiny_model_dir)}},
        scorer="classifier",
        classifier={"model": str(tiny_classifier_dir)},
        engine={"batch_size": 4},
    )
    generated = tmp_path / "generations"
    for name in ("a", "b"):
        info = run_toxicity_generation(
            params,
            name,
            generated / f"{name}.jsonl",
            tmp_path / "metrics" / "toxicity_generate" / f"{name}.json",
        )
        assert info["generations"] == 6 and info["engine"] == "transformers"
    assert read_json(tmp_path / "metrics" / "toxicity_generate" / "a.json")["prompts"] == 3
    metrics = run_toxicity(
        params,
        tiny_section("llm.teacher"),
        generated,
        tmp_path / "out",
        metrics_path=tmp_path / "metrics" / "toxicity.json",
        scorer_metrics_path=tmp_path / "metrics" / "toxicity_scorer.json",
        perplexity_model_dir=tiny_model_dir,
    )
    assert set(metrics) == {"a", "b"}
    assert read_json(tmp_path / "metrics" / "toxicity.json")["a"]["prompts"] == 3
    for name in ("a", "b"):
        model = metrics[name]
        assert model["generations"] == 6
        assert (
            model["scored_generations"] + model["empty_generations"] + model["unscored_generations"]
            == 6
        )
        assert 0 <= model["avg_max_toxicity"] <= 1
        assert model["toxicity_probability"] in {0, 1 / 3, 2 / 3, 1}
        assert model["perplexity"] > 0
        assert 0 < model["dist_2"] <= 1
        rows = read_jsonl(tmp_path / "out" / f"{name}.jsonl")
        assert len(rows) == 3 and all(len(row["generations"]) == 2 for row in rows)
        top = max(g["toxicity"] for g in rows[0]["generations"] if g["toxicity"] is not None)
        assert rows[0]["max_toxicity"] == top
    assert read_json(tmp_path / "metrics" / "toxicity_scorer.json")["scorer"] == "classifier"


def test_scoring_refuses_generations_made_with_other_params(tmp_path):
    from janus.evaluate.toxicity.prompts import read_generations

    path = tmp_path / "m.jsonl"
    path.write_text(json.dumps({"prompt_id": "p", "prompt": "x", "generations": ["a", "b"]}) + "\n")
    with pytest.raises(ValueError, match="has 2 generations, params say 3"):
        read_generations(path, 3)
    with pytest.raises(FileNotFoundError, match="toxicity_generate@missing"):
        read_generations(tmp_path / "missing.jsonl", 3)


def test_scorer_agreement_by_hand():
    from janus.evaluate.stats import pearson
    from janus.evaluate.toxicity.metrics import scorer_agreement

    first = {"a": (0.9, None), "b": (0.1, None), "c": (0.6, None), "d": (None, "error")}
    second = {"a": (0.7, None), "b": (0.2, None), "c": (0.4, None), "d": (0.5, None)}
    agreement = scorer_agreement(first, second, threshold=0.5)
    assert agreement["texts"] == 3  # d: only one scorer scored it
    # x = (0.9, 0.1, 0.6), y = (0.7, 0.2, 0.4): means 1.6 / 3, 1.3 / 3
    dx, dy = (
        [0.9 - 1.6 / 3, 0.1 - 1.6 / 3, 0.6 - 1.6 / 3],
        [0.7 - 1.3 / 3, 0.2 - 1.3 / 3, 0.4 - 1.3 / 3],
    )
    expected = sum(a * b for a, b in zip(dx, dy, strict=True)) / math.sqrt(
        sum(a * a for a in dx) * sum(b * b for b in dy)
    )
    assert agreement["pearson"] == pytest.approx(expected)
    # at 0.5: a toxic/toxic, b clean/clean, c toxic/clean -> 2 of 3 agree
    assert agreement["agreement_at_threshold"] == pytest.approx(2 / 3)
    assert (agreement["toxic_by_first"], agreement["toxic_by_second"]) == (2, 1)
    assert pearson([0.5, 0.5], [0.1, 0.9]) is None  # a constant side: r undefined
    assert pearson([0.3], [0.4]) is None


def test_bootstrap_ci_brackets_the_mean_and_is_seeded():
    from janus.evaluate.stats import bootstrap_mean_ci
    from janus.evaluate.toxicity.metrics import toxicity_cis

    values = [0.1, 0.2, 0.9, 0.4, 0.3, 0.8]
    low, high = bootstrap_mean_ci(values, 2000, seed=1)
    assert low < sum(values) / len(values) < high
    assert low >= 0.1 and high <= 0.9
    assert bootstrap_mean_ci(values, 2000, seed=1) == [low, high]
    assert bootstrap_mean_ci([0.4, 0.4, 0.4], 50, seed=0) == pytest.approx([0.4, 0.4])
    assert bootstrap_mean_ci([], 50, seed=0) is None
    cis = toxicity_cis([[0.9, 0.1], [0.2], [None]], threshold=0.5, resamples=200, seed=0)
    assert 0.2 <= cis["avg_max_toxicity"][0] <= cis["avg_max_toxicity"][1] <= 0.9
    assert 0.0 <= cis["toxicity_probability"][0] <= cis["toxicity_probability"][1] <= 1.0


def test_too_few_prompts_stop_generation_unless_allowed(tmp_path):
    path = tmp_path / "rtp.jsonl"
    path.write_text("".join(json.dumps({"prompt": {"text": f"p{i}"}}) + "\n" for i in range(3)))
    with pytest.raises(ValueError, match=r"rtp.jsonl: holds 3 prompts, but params ask for 10000"):
        load_prompts(path, 10000, allow_smaller=False)
    assert len(load_prompts(path, 10000, allow_smaller=True)) == 3
    assert len(load_prompts(path, 2, allow_smaller=False)) == 2
    params = tiny_section(
        "toxicity",
        prompts_path=str(path),
        max_prompts=10,
        allow_smaller=False,
        models={"m": {"path": str(tmp_path / "no-model")}},
    )
    # refused before the (missing) model is loaded
    with pytest.raises(ValueError, match="holds 3 prompts"):
        run_toxicity_generation(params, "m", tmp_path / "gen", tmp_path / "metrics")


def test_the_paper_profile_refuses_the_sample_prompt_file(monkeypatch):
    from pathlib import Path

    from janus.config.params import load_params

    repo = Path(__file__).resolve().parents[1]
    monkeypatch.chdir(repo)
    params = load_params(repo / "profiles/paper.yaml").toxicity
    assert params.scorer == "classifier" and not params.allow_smaller
    assert set(params.model_names()) >= {"sft", "mistral-7b-instruct", "llama-3-8b-instruct"}
    # the input stage will not make the 10k file from a smaller source ...
    from janus.data.inputs import make_toxicity_prompts

    sample = "data/sources/realtoxicityprompts.jsonl"
    source = params.prompts_source.model_copy(update={"path": sample, "revision": None})
    with pytest.raises(ValueError, match=r"fewer than toxicity.prompts_source.sample=10000"):
        make_toxicity_prompts(source, Path("unused.jsonl"))
    # ... and the generation stage refuses a prompts file that holds fewer than max_prompts
    short = params.model_copy(update={"prompts_path": sample})
    with pytest.raises(
        ValueError,
        match=r"realtoxicityprompts.jsonl: holds \d+ prompts, but "
        r"params ask for 10000",
    ):
        run_toxicity_generation(short, "sft", Path("unused.jsonl"), Path("unused.json"))


def test_two_scorers_on_the_same_generations_are_reported_with_agreement(
    tiny_model_dir, tiny_classifier_dir, tmp_path, monkeypatch
):
    from tests.servers.perspective_server import PerspectiveServer

    monkeypatch.setenv("TEST_PERSPECTIVE_KEY", "test-key")
    server = PerspectiveServer(key="test-key").start()
    try:
        generated = tmp_path / "generations"
        generated.mkdir()
        rows = [
            {"prompt_id": "p1", "prompt": "It was", "generations": [" an awful day", " fine"]},
            {"prompt_id": "p2", "prompt": "We saw", "generations": [" a calm sea", ""]},
        ]
        (generated / "m.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        params = tiny_section(
            "toxicity",
            generations_per_prompt=2,
            models={"m": {"path": str(tiny_model_dir)}},
            scorer="classifier",
            extra_scorers=["perspective"],
            classifier={"model": str(tiny_classifier_dir)},
            perspective={
                "url": server.url,
                "key_env": "TEST_PERSPECTIVE_KEY",
                "requests_per_second": 1000,
                "backoff_s": 0,
            },
                bootstrap_resamples=100,
        )
        metrics = run_toxicity(
            params,
            tiny_section("llm.teacher"),
            generated,
            tmp_path / "out",
            metrics_path=tmp_path / "metrics" / "toxicity.json",
            scorer_metrics_path=tmp_path / "metrics" / "toxicity_scorer.json",
            perplexity_model_dir=tiny_model_dir,
        )["m"]
    finally:
        server.stop()
    assert metrics["scorer"] == "classifier"
    perspective = metrics["by_scorer"]["perspective"]
    # the fake API: 0.9 for "awful", else 0.05 -> maxima 0.9 and 0.05
    assert perspective["avg_max_toxicity"] == pytest.approx((0.9 + 0.05) / 2)
    assert perspective["toxicity_probability"] == pytest.approx(0.5)
    assert metrics["by_scorer"]["classifier"]["avg_max_toxicity"] == metrics["avg_max_toxicity"]
    agreement = metrics["agreement"]["classifier_vs_perspective"]
    assert agreement["texts"] == 3  # the empty generation is scored by neither
    assert agreement["toxic_by_second"] == 1
    assert 0.0 <= agreement["agreement_at_threshold"] <= 1.0
    assert len(metrics["ci95"]["avg_max_toxicity"]) == 2
    scored = read_jsonl(tmp_path / "out" / "m.jsonl")[0]["generations"][0]
    assert scored["toxicity_perspective"] == 0.9 and 0 <= scored["toxicity"] <= 1
    assert set(read_json(tmp_path / "metrics" / "toxicity_scorer.json")["scorers"]) == {
        "classifier",
        "perspective",
    }


def test_report_table_4_lists_every_model_and_compares_scorers():
    from janus.evaluate.report_toxicity import toxicity_sections

    toxicity = {
        "sft": {
            "avg_max_toxicity": 0.3,
            "toxicity_probability": 0.1,
            "scorer": "classifier",
            "ci95": {"avg_max_toxicity": [0.25, 0.35], "toxicity_probability": [0.05, 0.15]},
            "by_scorer": {
                "classifier": {"avg_max_toxicity": 0.3, "toxicity_probability": 0.1},
                "perspective": {"avg_max_toxicity": 0.28, "toxicity_probability": 0.08},
            },
            "agreement": {
                "classifier_vs_perspective": {
                    "texts": 100,
                    "pearson": 0.81,
                    "agreement_at_threshold": 0.93,
                }
            },
        },
        "mistral-7b-instruct": {"avg_max_toxicity": 0.5, "toxicity_probability": 0.4},
    }
    text = "\n".join(toxicity_sections(toxicity, ["sft"]))
    assert "| sft | 0.300 | 0.100 |" in text and "| mistral-7b-instruct | 0.500 | 0.400 |" in text
    assert "| sft | classifier | [0.250, 0.350] | [0.050, 0.150] |" in text
    assert (
        "| sft | classifier / perspective | 0.300 / 0.280 | 0.100 / 0.080 | 0.810 | 93.0% | 100 |"
        in text
    )
