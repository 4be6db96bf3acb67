"""The LLM stages against a scripted OpenAI-compatible teacher on 127.0.0.1 (the stand-in for
GPT-4-Turbo): invalid preference sets are re-asked, then counted and dropped; empty system messages
and responses are counted and dropped; every stage reports the client's stats."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from servers.scripted_chat import ScriptedChatServer, user_message

from janus.config import (
    GoldResponsesSection,
    LLMConfig,
    PreferenceSetsSection,
    SystemMessagesSection,
)
from janus.data.gold_responses import COLLECTION_COLUMNS, generate_gold_responses
from janus.data.preference_sets import generate_preference_sets
from janus.data.system_messages import generate_system_messages
from janus.data.taxonomy import load_taxonomy
from janus.io import RUNTIME_DIR, read_json

REPO = Path(__file__).resolve().parents[1]
DIMENSIONS = ("style", "background_knowledge", "informativeness", "harmlessness")


def _runtime(stage: str) -> dict:
    """What the stage's LLM client sent this run (janus.io.write_runtime, not a DVC metric)."""
    return read_json(RUNTIME_DIR / f"{stage}.llm.json")


def _set_object(tag: str, description: str | None = None) -> dict:
    return {
        d: {
            "subdimension": "Sub",
            "preference": f"{tag} {i}",
            "description": description or f"Wants {d}.",
        }
        for i, d in enumerate(DIMENSIONS)
    }


def _teacher(request: dict, times_seen: int) -> str:
    user = user_message(request)
    if "Instruction:" in user:  # a preference-set request
        if "Question ok?" in user:
            return json.dumps(_set_object("ok"))
        if "Question retry?" in user:
            broken = _set_object("retry")
            del broken["harmlessness"]  # missing dimension: schema-invalid, re-asked
            return json.dumps(broken if times_seen == 1 else _set_object("retry"))
        if "Question blank?" in user:
            return json.dumps(_set_object("blank", description="   "))  # schema-valid, still empty
        return json.dumps({"style": "formal", "tone": "kind"})  # never valid: wrong shape
    if "Preferences:" in user:  # a system-message request
        return "" if "empty-system" in user else "System message: You are a careful guide."
    return "" if "Silent" in user else f"An answer to: {user}"


@pytest.fixture()
def teacher(monkeypatch):
    monkeypatch.setenv("JANUS_SCRIPTED_CHAT_KEY", "sk-test-not-a-secret")
    with ScriptedChatServer(_teacher) as server:
        yield server


def _instructions(*questions: str) -> list[dict]:
    return [
        {
            "instruction_id": f"test-{i}",
            "main_source": "Nectar",
            "original_source": "sharegpt",
            "instruction": q,
        }
        for i, q in enumerate(questions)
    ]


def _seed_sets() -> list[dict]:
    items = [{"dimension": d, **v} for d, v in _set_object("seed").items()]
    return [{"seed_id": "seed-0000", "preference_set": items}]


def test_preference_sets_retry_then_count_and_drop_invalid_outputs(teacher):
    config = PreferenceSetsSection(
        max_failed_fraction=1.0, sets_per_instruction=2, name_max_chars=20, description_max_chars=60
    )
    llm = LLMConfig(**teacher.llm_config(max_invalid_retries=1))
    taxonomy = load_taxonomy(REPO / "data/taxonomy/seed_taxonomy.yaml")
    instructions = _instructions(
        "Question ok?", "Question retry?", "Question never?", "Question blank?"
    )
    rows, metrics = generate_preference_sets(instructions, _seed_sets(), taxonomy, config, llm)

    kept = {(row["instruction"], row["set_index"]) for row in rows}
    assert kept == {
        ("Question ok?", 0),
        ("Question ok?", 1),
        ("Question retry?", 0),
        ("Question retry?", 1),
    }
    for row in rows:
        assert [item["dimension"] for item in row["preference_set"]] == list(DIMENSIONS)
        assert row["seed_id"] == "seed-0000"
    assert metrics["requested"] == 8
    assert metrics["preference_sets"] == 4
    assert metrics["failed"] == 2  # "never": invalid on every attempt
    assert metrics["rejected_after_schema"] == 2  # "blank": whitespace descriptions
    assert metrics["valid_rate"] == pytest.approx(0.5)
    assert metrics["instructions_with_all_sets"] == 2
    assert metrics["instructions_without_pairable_sets"] == 2
    llm_stats = metrics["llm"]
    assert llm_stats["invalid_outputs"] >= 1 + 2 * 2  # the retry's first answer, never's two tries
    assert _runtime("preference_sets")["requests"] >= 8 and llm_stats["failed"] == 2


def _preference_rows() -> list[dict]:
    rows = []
    for k, tag in enumerate(["first", "empty-system", "third"]):
        items = [
            {"dimension": d, "subdimension": "Sub", "preference": tag, "description": f"{tag} {d}."}
            for d in DIMENSIONS
        ]
        rows.append(
            {
                "instruction_id": "test-0",
                "set_index": k,
                "main_source": "Nectar",
                "original_source": "sharegpt",
                "instruction": "Explain DNS.",
                "preference_set": items,
                "seed_id": "seed-0000",
            }
        )
    return rows


def test_system_messages_are_cleaned_and_empty_ones_dropped(teacher):
    examples = [
        {
            "preference_set": _preference_rows()[0]["preference_set"],
            "system": f"You are example {i}.",
        }
        for i in range(3)
    ]
    rows, metrics = generate_system_messages(
        _preference_rows(),
        examples,
        SystemMessagesSection(max_failed_fraction=1.0, num_examples=2),
        LLMConfig(**teacher.llm_config()),
    )
    assert [row["set_index"] for row in rows] == [0, 2]
    assert all(row["system"] == "You are a careful guide." for row in rows)
    assert metrics["empty"] == 1 and metrics["system_messages"] == 2
    assert metrics["second_person_rate"] == 1.0
    # the empty answer is re-asked (max_invalid_retries 2): 3 + 2 requests
    assert _runtime("system_messages")["requests"] == 5


def test_gold_responses_make_the_published_columns(teacher):
    rows = [{**row, "system": "You are a careful guide."} for row in _preference_rows()]
    for k, row in enumerate(rows):
        row["instruction"] = f"Question number {k}"
    rows[1]["instruction"] = "Silent question"
    collection, metrics = generate_gold_responses(
        rows, GoldResponsesSection(max_failed_fraction=1.0), LLMConfig(**teacher.llm_config())
    )
    assert len(collection) == 2 and metrics["empty"] == 1
    for row in collection:
        assert set(COLLECTION_COLUMNS) <= set(row)
        assert row["output"] == f"An answer to: {row['prompt']}"
        assert row["system"] == "You are a careful guide."
    # the empty answer is re-asked (max_invalid_retries 2): 3 + 2 requests
    assert _runtime("gold_responses")["requests"] == 5
    assert _runtime("gold_responses")["cache_hits"] == 0

    # A rerun is served from the cache; only the empty answer, never cached, is asked again.
    before = sum(teacher.seen.values())
    _, again = generate_gold_responses(
        rows, GoldResponsesSection(max_failed_fraction=1.0), LLMConfig(**teacher.llm_config())
    )
    assert sum(teacher.seen.values()) == before + 3
    assert _runtime("gold_responses")["requests"] == 3
    assert _runtime("gold_responses")["cache_hits"] == 2
    assert again["llm"] == metrics["llm"]  # metrics hold results only: a rerun changes none
