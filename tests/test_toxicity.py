"""Toxicity stage: aggregation against hand-computed values, perplexity, scorers, end to end."""

from __future__ import annotations

import json
import math

import pytest

from janus.config import LLMConfig, ToxicitySection
from janus.evaluate.toxicity import (
    ClassifierScorer,
    LLMScorer,
    PerplexityModel,
    distinct_n,
    load_prompts,
    run_toxicity,
    run_toxicity_generation,
    summarize_model,
    toxicity_summary,
)
from janus.io import read_json, read_jsonl
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
    params = ToxicitySection(
        max_failed_fraction=0.0, models={"m": {"path": "unused"}}, threshold=0.5
    )
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
    from janus.evaluate.toxicity import ToxicityPrompt

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
    from janus.config import ClassifierParams

    scorer = ClassifierScorer(ClassifierParams(model=str(tiny_classifier_dir), label="TOXIC"))
    results = scorer.score(["a short text", "another, somewhat longer text here", "x"])
    assert all(error is None and 0.0 <= score <= 1.0 for score, error in results)
    alone = [scorer.score([text])[0][0] for text in ["a short text", "x"]]
    assert [results[0][0], results[2][0]] == pytest.approx(alone, rel=1e-4)
    with pytest.raises(ValueError, match="no label 'insult'"):
        ClassifierScorer(ClassifierParams(model=str(tiny_classifier_dir), label="insult"))


def test_llm_scorer_maps_the_0_to_10_scale_and_counts_failures(monkeypatch):
    monkeypatch.setenv("FAKE_KEY", "k")
    server = FakeOpenAIServer(valid_json={"toxicity": 7}).start()
    try:
        judge = LLMConfig(
            backend="openai",
            model="fake",
            base_url=server.base_url,
            api_key_env="FAKE_KEY",
            max_retries=0,
            timeout_s=5,
        )
        scorer = LLMScorer(ToxicitySection(max_failed_fraction=0.0, llm_scale="int10"), judge)
        assert scorer.score(["some text", "other text"]) == [(0.7, None), (0.7, None)]
        scorer.close()
        server.valid_json = {"toxicity": 0.25}
        scorer = LLMScorer(ToxicitySection(max_failed_fraction=1.0, llm_scale="unit"), judge)
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
    params = ToxicitySection(
        max_failed_fraction=0.0,
        prompts_path=str(prompts),
        generations_per_prompt=2,
        sampling={"max_tokens": 6},
        models={"a": {"path": str(tiny_model_dir)}, "b": {"path": str(tiny_model_dir)}},
        scorer="classifier",
        classifier={"model": str(tiny_classifier_dir)},
        perplexity_model=str(tiny_model_dir),
        engine={"batch_size": 4},
    )
    generated = tmp_path / "generations"
    for name in ("a", "b"):
        info = run_toxicity_generation(params, name, generated, tmp_path / "metrics")
        assert info["generations"] == 6 and info["engine"] == "transformers"
    assert read_json(tmp_path / "metrics" / "toxicity_generate" / "a.json")["prompts"] == 3
    metrics = run_toxicity(
        params, LLMConfig(), generated, tmp_path / "out", metrics_dir=tmp_path / "metrics"
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
    from janus.evaluate.toxicity import read_generations

    path = tmp_path / "m.jsonl"
    path.write_text(json.dumps({"prompt_id": "p", "prompt": "x", "generations": ["a", "b"]}) + "\n")
    with pytest.raises(ValueError, match="has 2 generations, params say 3"):
        read_generations(path, 3)
    with pytest.raises(FileNotFoundError, match="toxicity_generate@missing"):
        read_generations(tmp_path / "missing.jsonl", 3)
