"""Training rows: validation, the one prompt format, length fitting, helpfulness adapters and mix."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from transformers import AutoTokenizer

from janus.chat_format import format_prompt
from janus.config.train import RewardModelStage
from janus.train.data import (
    PREFERENCE_COLUMNS,
    SFT_COLUMNS,
    TrainingInputError,
    build_prompt,
    fit_to_length,
    format_rows,
    load_rows,
    require_rows,
)
from janus.train.helpfulness import (
    HHRLHFAdapter,
    OASST1PairwiseAdapter,
    WebGPTComparisonsAdapter,
    load_helpfulness,
    mix_counts,
)
from tests.sections import tiny_entry

REPO = Path(__file__).resolve().parents[1]


def write_jsonl(path: Path, rows: list) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir):
    return AutoTokenizer.from_pretrained(tiny_model_dir)


def test_broken_rows_are_counted_skips(tmp_path):
    path = write_jsonl(
        tmp_path / "train.jsonl",
        [
            {"system": "S", "prompt": "P", "chosen": "a", "rejected": "b"},
            {"system": "S", "prompt": "P", "chosen": "same", "rejected": "same"},
            {"system": "S", "prompt": "", "chosen": "a", "rejected": "b"},
            {"system": "S", "prompt": "P", "chosen": 3, "rejected": "b"},
            {"system": None, "prompt": "P", "chosen": "x", "rejected": "y"},  # no system: allowed
        ],
    )
    rows = load_rows(path, PREFERENCE_COLUMNS)
    assert len(rows.rows) == 2
    assert rows.rows[1]["system"] == ""
    assert dict(rows.skipped) == {"chosen_equals_rejected": 1, "empty_prompt": 1, "non_string_chosen": 1}
    with pytest.raises(TrainingInputError, match="2 valid dpo row.*min_train_rows=3"):
        require_rows(rows, 3, "dpo")


def test_missing_file_and_malformed_json_are_clear_errors(tmp_path):
    with pytest.raises(TrainingInputError, match="not found; run"):
        load_rows(tmp_path / "nope.jsonl", SFT_COLUMNS, hint="; run `dvc repro build_pairs` first")
    bad = write_jsonl(tmp_path / "bad.jsonl", ['{"prompt": "x", "output": "y"}', "{not json"])
    with pytest.raises(TrainingInputError, match=r"bad.jsonl:2: not valid JSON"):
        load_rows(bad, SFT_COLUMNS)


def test_prompt_is_the_shared_format(tokenizer):
    """Training prompts are byte-for-byte what inference builds with format_prompt."""
    rows = [{"system": "Be terse.", "prompt": "Say hi.", "output": "Hi."}]
    formatted = format_rows(rows, tokenizer, "chat_template", ("output",))
    assert formatted == [
        {"prompt": format_prompt(tokenizer, "Say hi.", "Be terse.", "chat_template"), "completion": "Hi."}
    ]
    mistral = build_prompt(tokenizer, "Say hi.", "Be terse.", "mistral")
    assert mistral == "[INST]Be terse.\nSay hi. [/INST]"
    assert build_prompt(tokenizer, "Say hi.", "", "mistral") == "[INST]Say hi. [/INST]"


def test_fit_to_length_cuts_responses_and_drops_prompts_that_fill_the_window(tokenizer):
    long = " ".join(["word"] * 200)
    rows = [
        {"prompt": "short prompt", "chosen": long, "rejected": "no"},
        {"prompt": long, "chosen": "a", "rejected": "b"},
    ]
    kept, counts = fit_to_length(rows, tokenizer, max_length=48)
    assert len(kept) == 1
    assert counts["prompt_too_long"] == 1 and counts["chosen_truncated"] == 1
    total = len(tokenizer(kept[0]["prompt"] + kept[0]["chosen"])["input_ids"])
    assert total <= 48


def test_hh_rlhf_adapter_keeps_history_and_final_replies():
    adapter = HHRLHFAdapter()
    single = adapter.extract(
        {"chosen": "\n\nHuman: Hi?\n\nAssistant: Hello!", "rejected": "\n\nHuman: Hi?\n\nAssistant: Go away."}
    )
    assert (single.prompt, single.chosen, single.rejected) == ("Hi?", "Hello!", "Go away.")
    turns = "\n\nHuman: Plan a trip.\n\nAssistant: Where to?\n\nHuman: Rome."
    multi = adapter.extract({"chosen": turns + "\n\nAssistant: Day 1: ...", "rejected": turns + "\n\nAssistant: No."})
    assert multi.prompt == "User: Plan a trip.\n\nAssistant: Where to?\n\nUser: Rome."
    from janus.data.sources.base import BadRow

    with pytest.raises(BadRow, match="history_mismatch"):
        adapter.extract({"chosen": "\n\nHuman: A\n\nAssistant: x", "rejected": "\n\nHuman: B\n\nAssistant: y"})


def test_oasst1_and_webgpt_adapters():
    oasst = OASST1PairwiseAdapter()
    assert oasst.extract({"prompt": "prompter: Why?", "chosen": "Because.", "rejected": "No."}).prompt == "Why?"
    history = oasst.extract(
        {"prompt": "prompter: Hi\nassistant: Hello\nprompter: Joke?", "chosen": "Sure...", "rejected": "No"}
    )
    assert history.prompt == "User: Hi\n\nAssistant: Hello\n\nUser: Joke?"
    # The first published version had the parent message only, without role labels.
    assert oasst.extract({"prompt": "Plain question", "chosen": "a", "rejected": "b"}).prompt == "Plain question"

    webgpt = WebGPTComparisonsAdapter()
    row = {"question": {"full_text": "Q?"}, "answer_0": "worse [1]", "answer_1": "better [2, 3].",
           "score_0": -0.5, "score_1": 0.5}
    pair = webgpt.extract(row)
    assert (pair.prompt, pair.chosen, pair.rejected) == ("Q?", "better.", "worse")
    from janus.data.sources.base import BadRow

    with pytest.raises(BadRow, match="tie"):
        webgpt.extract({**row, "score_0": 0.0, "score_1": 0.0})


def test_mix_counts_follow_ratios_and_sum_to_total():
    counts = mix_counts({"hh_rlhf": 0.72, "oasst1": 0.14, "webgpt_comparisons": 0.14}, 128_000)
    assert counts == {"hh_rlhf": 92160, "oasst1": 17920, "webgpt_comparisons": 17920}
    small = mix_counts({"hh_rlhf": 0.72, "oasst1": 0.14, "webgpt_comparisons": 0.14}, 25)
    assert sum(small.values()) == 25 and small["hh_rlhf"] == 18


def tiny_rm_stage(**overrides) -> RewardModelStage:
    raw = yaml.safe_load((REPO / "profiles/tiny.yaml").read_text())["train"]["rm"]
    return RewardModelStage.model_validate({**raw, **overrides})


def test_bundled_helpfulness_samples_load_with_held_out_pairs():
    config = tiny_rm_stage(helpfulness_size=25, helpfulness_eval_fraction=0.15)
    data = load_helpfulness(config, REPO, seed=1)
    assert data.stats["helpfulness_hh_rlhf_train"] == 18
    assert data.stats["helpfulness_webgpt_comparisons_skipped"] == 1  # the bundled tie
    assert all(data.stats[f"helpfulness_{name}_eval"] >= 1 for name in ("hh_rlhf", "oasst1", "webgpt_comparisons"))
    held_out = {(p.prompt, p.chosen) for p in data.eval}
    assert not held_out & {(p.prompt, p.chosen) for p in data.train}


def test_missing_helpfulness_source_is_a_clear_error(tmp_path):
    config = tiny_rm_stage(
        helpfulness_sources={
            name: tiny_entry("filter.sources", path=f"missing/{name}.jsonl")
            for name in ("hh_rlhf", "oasst1", "webgpt_comparisons")
        }
    )
    with pytest.raises(TrainingInputError, match=r"helpfulness_sources.hh_rlhf: .*not found"):
        load_helpfulness(config, tmp_path, seed=1)
