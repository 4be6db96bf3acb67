"""Source adapters: one per source schema, each turning one row into one user instruction."""

from __future__ import annotations

import json

import pytest

from janus.config.filter import SOURCE_NAMES
from janus.data.sources import ADAPTERS, BadRow, SourceError, read_rows
from janus.data.sources.base import human_turns


def test_one_adapter_per_configured_source():
    assert set(ADAPTERS) == set(SOURCE_NAMES)
    assert {adapter.main_source for adapter in ADAPTERS.values()} == {
        "Nectar",
        "OpenHermesPreferences",
        "ultrafeedback_binarized_cleaned",
        "chatbot_arena_conversations",
        "domain_specific_preference",
    }


# -- Nectar ------------------------------------------------------------------------------------


def test_nectar_single_turn():
    row = {
        "prompt": "\n\nHuman: What is a good name for a cat?\n\nAssistant:",
        "answers": [{"answer": "Tom", "model": "gpt-4", "rank": 1.0}],
        "turns": 1,
        "source": ["anthropic-hh"],
    }
    extracted = ADAPTERS["nectar"].extract(row)
    assert extracted.instruction == "What is a good name for a cat?"
    assert extracted.original_source == "anthropic-hh"
    assert extracted.turns == 1


def test_nectar_multi_turn_keeps_first_human_turn_and_counts_turns():
    row = {
        "prompt": "\n\nHuman: Hi there\n\nAssistant: Hello! How can I help?\n\nHuman: Tell me a joke\n\nAssistant:",
        "source": ["lmsys-chat-1m", "sharegpt"],
    }
    extracted = ADAPTERS["nectar"].extract(row)
    assert extracted.instruction == "Hi there"
    assert extracted.turns == 2
    assert extracted.original_source == "lmsys-chat-1m"


def test_nectar_without_source_label_is_dash():
    extracted = ADAPTERS["nectar"].extract({"prompt": "\n\nHuman: Hi\n\nAssistant:", "source": []})
    assert extracted.original_source == "-"


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ({"source": ["sharegpt"]}, "missing_text"),
        ({"prompt": 12, "source": ["sharegpt"]}, "wrong_type"),
        ({"prompt": "\n\nHuman:   \n\nAssistant:", "source": ["x"]}, "missing_text"),
        ({"prompt": "\n\nHuman: ok\n\nAssistant:", "source": [3]}, "wrong_type"),
    ],
)
def test_nectar_bad_rows(row, reason):
    with pytest.raises(BadRow) as caught:
        ADAPTERS["nectar"].extract(row)
    assert caught.value.reason == reason


def test_human_turns_splits_transcript():
    transcript = "\n\nHuman: A\nstill A\n\nAssistant: B\n\nHuman: C\n\nAssistant:"
    assert human_turns(transcript) == ["A\nstill A", "C"]
    assert human_turns("Human: only\n\nAssistant:") == ["only"]


# -- OpenHermesPreferences ---------------------------------------------------------------------


def test_openhermes_prompt_and_source():
    row = {
        "source": "glaive-code-assist",
        "category": "coding",
        "prompt": "Reverse a list in Python.",
        "chosen": [{"content": "Reverse a list in Python.", "role": "user"}],
    }
    extracted = ADAPTERS["openhermes_preferences"].extract(row)
    assert (extracted.instruction, extracted.original_source) == (
        "Reverse a list in Python.",
        "glaive-code-assist",
    )


def test_openhermes_null_source_is_dash_and_chosen_is_the_fallback():
    row = {
        "source": None,
        "chosen": [
            {"content": "Write a haiku.", "role": "user"},
            {"content": "Leaves fall...", "role": "assistant"},
        ],
    }
    extracted = ADAPTERS["openhermes_preferences"].extract(row)
    assert (extracted.instruction, extracted.original_source) == ("Write a haiku.", "-")


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ({"source": "x", "prompt": None}, "missing_text"),
        ({"source": "x", "prompt": ["a"]}, "wrong_type"),
        ({"source": "x", "chosen": "text"}, "wrong_type"),
        ({"source": "x", "chosen": [{"role": "assistant", "content": "hi"}]}, "missing_text"),
    ],
)
def test_openhermes_bad_rows(row, reason):
    with pytest.raises(BadRow) as caught:
        ADAPTERS["openhermes_preferences"].extract(row)
    assert caught.value.reason == reason


# -- UltraFeedback -----------------------------------------------------------------------------


def test_ultrafeedback_prompt_and_source():
    row = {
        "prompt": "  Why is the sky blue?  ",
        "prompt_id": "ab" * 32,
        "source": "false_qa",
        "chosen": [],
        "rejected": [],
        "score_chosen": 8.0,
    }
    extracted = ADAPTERS["ultrafeedback_binarized_clean"].extract(row)
    assert (extracted.instruction, extracted.original_source) == (
        "Why is the sky blue?",
        "false_qa",
    )


def test_ultrafeedback_missing_prompt():
    with pytest.raises(BadRow, match="prompt is missing"):
        ADAPTERS["ultrafeedback_binarized_clean"].extract({"source": "sharegpt"})


# -- Chatbot Arena -----------------------------------------------------------------------------


def test_chatbot_arena_first_user_turn_of_conversation_a():
    row = {
        "question_id": "q1",
        "model_a": "vicuna-13b",
        "model_b": "koala-13b",
        "conversation_a": [
            {"content": "How do I center a div?", "role": "user"},
            {"content": "Use flexbox.", "role": "assistant"},
            {"content": "Vertically too?", "role": "user"},
            {"content": "align-items.", "role": "assistant"},
        ],
        "turn": 2,
    }
    extracted = ADAPTERS["chatbot_arena_conversations"].extract(row)
    assert extracted.instruction == "How do I center a div?"
    assert extracted.turns == 2
    assert extracted.original_source == "-"


@pytest.mark.parametrize(
    ("conversation", "reason"),
    [([], "missing_text"), (None, "missing_text"), ("hi", "wrong_type"), (["hi"], "wrong_type")],
)
def test_chatbot_arena_bad_rows(conversation, reason):
    with pytest.raises(BadRow) as caught:
        ADAPTERS["chatbot_arena_conversations"].extract({"conversation_a": conversation})
    assert caught.value.reason == reason


# -- DSP ---------------------------------------------------------------------------------------


def test_dsp_query_is_from_alpaca():
    row = {
        "query": "Give three tips for staying healthy.",
        "responses": {
            "academy": "a",
            "business": "b",
            "entertainment": "c",
            "literature": "d",
            "normal": "e",
        },
    }
    extracted = ADAPTERS["domain_specific_preference"].extract(row)
    assert (extracted.instruction, extracted.original_source) == (
        "Give three tips for staying healthy.",
        "alpaca",
    )


@pytest.mark.parametrize(
    ("row", "reason"),
    [({"responses": {}}, "missing_text"), ({"query": "q", "responses": ["a"]}, "wrong_type")],
)
def test_dsp_bad_rows(row, reason):
    with pytest.raises(BadRow) as caught:
        ADAPTERS["domain_specific_preference"].extract(row)
    assert caught.value.reason == reason


# -- reading -----------------------------------------------------------------------------------


def test_read_jsonl_reports_malformed_lines(tmp_path):
    path = tmp_path / "s.jsonl"
    path.write_text('{"query": "a"}\nnot json\n[1, 2]\n\n{"query": "b"}\n')
    rows = list(read_rows(str(path)))
    assert [row.data for row in rows if row.data] == [{"query": "a"}, {"query": "b"}]
    errors = [row for row in rows if row.error]
    assert [row.number for row in errors] == [2, 3]
    assert "malformed JSON" in errors[0].error


def test_read_parquet_and_json_array(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"query": ["x", "y"]}), tmp_path / "s.parquet")
    assert [row.data["query"] for row in read_rows("s.parquet", root=tmp_path)] == ["x", "y"]
    (tmp_path / "dsp.json").write_text(json.dumps([{"query": "z"}]))
    assert [row.data["query"] for row in read_rows("dsp.json", root=tmp_path)] == ["z"]


def test_read_hub_reads_the_pinned_snapshot_with_datasets(tmp_path, monkeypatch):
    # `hub:<name>` at a revision: janus.hf_loading fetches that commit's snapshot (here from an
    # offline hub cache laid out as huggingface_hub writes it) and `datasets` reads it. The
    # layout mimics allenai/ultrafeedback_binarized_cleaned's, whose split is `train_prefs`.
    import datasets
    import huggingface_hub.constants as constants

    sha = "0123456789abcdef0123456789abcdef01234567"
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf-cache")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    repo = tmp_path / "hub" / "datasets--acme--ultrafeedback"
    folder = repo / "snapshots" / sha / "data"
    folder.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(sha)
    lines = [json.dumps({"prompt": p, "source": "sharegpt"}) for p in ("p1", "p2")]
    (folder / "train_prefs-00000-of-00001.jsonl").write_text("\n".join(lines) + "\n")
    (folder / "test_prefs-00000-of-00001.jsonl").write_text(lines[0] + "\n")
    rows = list(read_rows("hub:acme/ultrafeedback", split="train_prefs", revision=sha))
    assert [row.data["prompt"] for row in rows] == ["p1", "p2"]
    with pytest.raises(SourceError, match="could not be loaded"):
        list(read_rows("hub:acme/ultrafeedback", split="train", revision=sha))


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(SourceError, match="nowhere.jsonl: source file not found"):
        list(read_rows("nowhere.jsonl", root=tmp_path))


def test_unsupported_format(tmp_path):
    (tmp_path / "s.csv").write_text("a,b\n")
    with pytest.raises(SourceError, match="unsupported format"):
        list(read_rows("s.csv", root=tmp_path))
