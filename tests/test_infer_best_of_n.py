"""Best-of-N: the highest-reward sample is kept, with a known reward function and a tiny RM."""

from __future__ import annotations

import math
import shutil

import pytest

from janus.chat_format import save_format
from janus.config.infer import InferSection
from janus.infer.best_of_n import Candidate, RewardModelScorer, choose_best, select_best
from janus.infer.responses import run_best_of_n
from tests.sections import tiny_section

BENCH = [
    {"id": f"q{i}", "source": "mf-test", "system": f"Answer like persona {i}.", "prompt": f"Q{i}?"}
    for i in range(2)
]


def test_select_best_takes_the_highest_reward_first_on_ties_and_skips_nan():
    assert select_best([0.1, 0.7, -2.0]) == 1
    assert select_best([0.5, 0.5, 0.1]) == 0
    assert select_best([math.nan, -1.0, -3.0]) == 1
    with pytest.raises(ValueError, match="no finite reward"):
        select_best([math.nan])


def test_choose_best_scores_every_group_in_one_pass():
    calls = []

    def length_reward(candidates):
        calls.append(len(candidates))
        return [float(len(c.response)) for c in candidates]

    groups = [
        [Candidate(None, "a", "xx"), Candidate(None, "a", "xxxx"), Candidate(None, "a", "x")],
        [Candidate("s", "b", "yyy"), Candidate("s", "b", "y")],
    ]
    choices = choose_best(groups, length_reward)
    assert [c.index for c in choices] == [1, 0]
    assert [c.reward for c in choices] == [4.0, 3.0]
    assert choices[0].rewards == [2.0, 4.0, 1.0]
    assert calls == [5]


def _params(policy, **entry) -> InferSection:
    return tiny_section(
        "infer",
        models={},
        best_of_n={"pol-bon": {"path": str(policy), "n": 4, **entry}},
        sampling={"max_tokens": 6},
        engine={"backend": "transformers", "batch_size": 8},
    )


def test_best_of_n_keeps_the_sample_a_known_reward_function_prefers(tiny_model_dir):
    def reward(candidates):  # deterministic: longer responses are better
        return [float(len(c.response)) for c in candidates]

    rows, samples, metrics = run_best_of_n(
        _params(tiny_model_dir), "pol-bon", BENCH, reward_fn=reward
    )
    assert len(rows) == 4 and len(samples) == 4
    for row, group in zip(rows, samples, strict=True):
        lengths = [len(s["response"]) for s in group["samples"]]
        assert len(lengths) == 4
        assert row["response"] == group["samples"][lengths.index(max(lengths))]["response"]
        assert row["reward"] == max(lengths)
        assert row["num_samples"] == 4
        assert group["chosen"] == lengths.index(max(lengths))
    assert metrics["samples_per_prompt"] == 4
    assert metrics["sequences"] == 16
    assert metrics["mean_chosen_reward"] >= metrics["mean_sample_reward"]


@pytest.fixture(scope="module")
def tiny_reward_model(tiny_model_dir, tmp_path_factory):
    """A scalar-reward AutoModelForSequenceClassification on the tiny model, trained (as it were)
    in the Mistral format."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    out = tmp_path_factory.mktemp("rm") / "rm"
    model = AutoModelForSequenceClassification.from_pretrained(tiny_model_dir, num_labels=1)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    model.config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    save_format(out, "mistral")
    return out


def test_reward_model_input_is_the_rm_format_then_response_then_eos(tiny_reward_model):
    scorer = RewardModelScorer(tiny_reward_model, batch_size=4, device="cpu")
    text = scorer.text(Candidate("Be brief.", "What is 2+2?", "4"))
    assert text == "[INST]Be brief.\nWhat is 2+2? [/INST]4" + scorer.tokenizer.eos_token
    no_system = scorer.text(Candidate(None, "What is 2+2?", "4"))
    assert no_system.startswith("[INST]What is 2+2? [/INST]4")


def test_best_of_n_with_a_tiny_reward_model_keeps_its_top_sample(tiny_model_dir, tiny_reward_model):
    policy = tiny_model_dir
    rows, samples, metrics = run_best_of_n(
        _params(policy, reward_model=str(tiny_reward_model)), "pol-bon", BENCH
    )
    scorer = RewardModelScorer(tiny_reward_model, batch_size=1, device="cpu")
    for row, group in zip(rows, samples, strict=True):
        # each sample scored alone (no padding) agrees with the batched scores
        alone = scorer(
            [Candidate(row["system"], row["prompt"], s["response"]) for s in group["samples"]]
        )
        assert [s["reward"] for s in group["samples"]] == pytest.approx(alone, rel=1e-4, abs=1e-5)
        assert row["reward"] == pytest.approx(max(alone), rel=1e-4, abs=1e-5)
        assert row["response"] == group["samples"][alone.index(max(alone))]["response"]
    assert metrics["reward_model"] == str(tiny_reward_model)
    assert metrics["reward_prompt_format"] == "mistral"
    assert len({round(s["reward"], 6) for g in samples for s in g["samples"]}) > 1


def test_a_classifier_with_several_labels_is_not_a_reward_model(tiny_model_dir, tmp_path):
    from transformers import AutoModelForSequenceClassification

    out = tmp_path / "two"
    AutoModelForSequenceClassification.from_pretrained(
        tiny_model_dir, num_labels=2
    ).save_pretrained(out)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(tiny_model_dir / name, out / name)
    with pytest.raises(ValueError, match="one output"):
        RewardModelScorer(out, device="cpu")
