"""The LLM stages against a scripted OpenAI-compatible teacher on 127.0.0.1 (the stand-in for
GPT-4-Turbo): invalid preference sets are re-asked, then counted and dropped; empty system messages
and responses are counted and dropped; every stage reports the client's stats."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from servers.loopback import JSONHandler, LoopbackServer, chat_completion
from servers.scripted_chat import ScriptedChatServer, user_message

from janus.data.gold_responses import COLLECTION_COLUMNS, generate_gold_responses
from janus.data.preference_sets import generate_preference_sets
from janus.data.system_messages import generate_system_messages
from janus.data.taxonomy import load_taxonomy
from janus.io import RUNTIME_DIR, read_json, read_jsonl
from janus.llm import StageFailed
from tests.sections import tiny_section

REPO = Path(__file__).resolve().parents[1]
DIMENSIONS = ("style", "background_knowledge", "informativeness", "harmlessness")
GOLD = tiny_section(
    "gold_responses", on_length="retry", retry_max_tokens=4096, max_failed_fraction=1.0
)


def teacher_prompts(server: ScriptedChatServer, marker: str) -> str:
    """Every user message the server saw that contains `marker`, joined."""
    return "\n".join(user for user in server.seen if marker in user)


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
    if "Preferences:" in user:  # a system-message request (it shows the instruction too)
        return "" if "empty-system" in user else "System message: You are a careful guide."
    if "Instruction:" in user:  # a preference-set request
        if "Question ok?" in user:
            return json.dumps(_set_object("ok"))
        if "Question retry?" in user:
            broken = _set_object("retry")
            del broken["harmlessness"]  # missing dimension: schema-invalid, re-asked
            return json.dumps(broken if times_seen == 1 else _set_object("retry"))
        if "Question blank?" in user:
            return json.dumps(_set_object("blank", description="   "))  # schema-valid, still empty
        if "Question long?" in user:  # schema-valid, but three sentences per description
            return json.dumps(_set_object("long", description="One. Two here. Three there."))
        return json.dumps({"style": "formal", "tone": "kind"})  # never valid: wrong shape
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


def test_preference_sets_retry_then_count_and_drop_invalid_outputs(teacher, tmp_path):
    config = tiny_section(
        "preference_sets",
        max_failed_fraction=1.0,
        sets_per_instruction=2,
        name_max_chars=20,
        description_max_chars=60,
        description_max_sentences=2,
    )
    llm = tiny_section("llm.teacher", **teacher.llm_config(max_invalid_retries=1))
    taxonomy = load_taxonomy(REPO / "data/taxonomy/seed_taxonomy.yaml")
    instructions = _instructions(
        "Question ok?", "Question retry?", "Question never?", "Question blank?", "Question long?"
    )
    out = tmp_path / "preference_sets.jsonl"
    metrics = generate_preference_sets(instructions, _seed_sets(), taxonomy, config, llm, out)
    rows = read_jsonl(out)

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
    assert metrics["requested"] == 10
    assert metrics["preference_sets"] == 4
    assert metrics["failed"] == 2  # "never": invalid on every attempt
    # "blank": whitespace descriptions; "long": three sentences where two are allowed
    assert metrics["rejected_after_schema"] == 4
    assert metrics["rejected_reasons"] == {"other": 2, "too_many_sentences": 2}
    assert metrics["valid_rate"] == pytest.approx(0.4)
    assert metrics["instructions_with_all_sets"] == 2
    assert metrics["instructions_without_pairable_sets"] == 3
    llm_stats = metrics["llm"]
    assert llm_stats["invalid_outputs"] >= 1 + 2 * 2  # the retry's first answer, never's two tries
    assert _runtime("preference_sets")["requests"] >= 10 and llm_stats["failed"] == 2
    # the limit is asked for in the prompt
    assert "in at most 2 sentences" in teacher_prompts(teacher, "Question ok?")


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


def test_system_messages_are_cleaned_and_empty_ones_dropped(teacher, tmp_path):
    examples = [
        {
            "instruction": f"Example question {i}?",
            "preference_set": _preference_rows()[0]["preference_set"],
            "system": f"You are example {i}.",
        }
        for i in range(3)
    ]
    out = tmp_path / "system_messages.jsonl"
    metrics = generate_system_messages(
        _preference_rows(),
        examples,
        tiny_section(
            "system_messages", max_failed_fraction=1.0, num_examples=2, with_instruction=True
        ),
        tiny_section("llm.teacher", **teacher.llm_config()),
        out,
    )
    rows = read_jsonl(out)
    assert [row["set_index"] for row in rows] == [0, 2]
    assert all(row["system"] == "You are a careful guide." for row in rows)
    assert metrics["empty"] == 1 and metrics["system_messages"] == 2
    assert metrics["second_person_rate"] == 1.0
    # the empty answer is re-asked (max_invalid_retries 2): 3 + 2 requests
    assert _runtime("system_messages")["requests"] == 5


def test_gold_responses_make_the_published_columns(teacher, tmp_path):
    rows = [{**row, "system": "You are a careful guide."} for row in _preference_rows()]
    for k, row in enumerate(rows):
        row["instruction"] = f"Question number {k}"
    rows[1]["instruction"] = "Silent question"
    out = tmp_path / "collection.jsonl"
    metrics = generate_gold_responses(
        rows, GOLD, tiny_section("llm.teacher", **teacher.llm_config()), out
    )
    collection = read_jsonl(out)
    assert len(collection) == 2 and metrics["empty"] == 1
    for row in collection:
        assert set(COLLECTION_COLUMNS) <= set(row)
        assert row["output"] == f"An answer to: {row['prompt']}"
        assert row["system"] == "You are a careful guide."
    # the empty answer is re-asked (max_invalid_retries 2): 3 + 2 requests
    assert _runtime("gold_responses")["requests"] == 5
    assert _runtime("gold_responses")["cache_hits"] == 0

    # A rerun is served from the cache; only the item whose answers were all empty (it failed)
    # is asked again, a fresh round of three.
    before = sum(teacher.seen.values())
    again = generate_gold_responses(
        rows, GOLD, tiny_section("llm.teacher", **teacher.llm_config()), out
    )
    assert sum(teacher.seen.values()) == before + 3
    assert _runtime("gold_responses")["requests"] == 3
    assert _runtime("gold_responses")["cache_hits"] == 2
    assert again["llm"] == metrics["llm"]  # metrics hold results only: a rerun changes none


# -- gold responses cut off at max_tokens ------------------------------------------------------


class BudgetedTeacher(LoopbackServer):
    """Answers as the Chat Completions API does under `max_tokens`: an answer longer than the
    budget (one token per word here) is cut there and comes with finish_reason "length"."""

    def __init__(self, words_per_question: dict[str, int]):
        self.budgets: list[tuple[str, int]] = []  # (question, max_tokens) per request
        server = self

        class Handler(JSONHandler):
            def do_POST(self):  # noqa: N802 - http.server's naming
                body = self.read_json()
                question = user_message(body)
                budget = body["max_tokens"]
                server.budgets.append((question, budget))
                words = [f"w{i}" for i in range(words_per_question[question])]
                payload = chat_completion(
                    "chatcmpl-1",
                    body["model"],
                    " ".join(words[:budget]),
                    5,
                    min(budget, len(words)),
                )
                payload["choices"][0]["finish_reason"] = "length" if len(words) > budget else "stop"
                self.send_json(200, payload)

        super().__init__(Handler)

    def llm_config(self) -> dict:
        return {
            "backend": "openai",
            "model": "budgeted-gpt",
            "base_url": f"http://127.0.0.1:{self._server.server_address[1]}/v1",
            "api_key_env": "JANUS_SCRIPTED_CHAT_KEY",
            "max_retries": 0,
            "requests_per_minute": 600_000,
        }


QUESTIONS = {"Short?": 3, "Long?": 20, "Endless?": 100}


def _gold_rows() -> list[dict]:
    rows = []
    for k, question in enumerate(QUESTIONS):
        row = {**_preference_rows()[k], "system": "You are a careful guide."}
        rows.append({**row, "instruction": question})
    return rows


@pytest.mark.parametrize("policy", ["retry", "drop", "keep"])
def test_gold_responses_cut_off_at_max_tokens_are_never_kept_silently(
    monkeypatch, tmp_path, policy
):
    monkeypatch.setenv("JANUS_SCRIPTED_CHAT_KEY", "sk-test-not-a-secret")
    config = tiny_section(
        "gold_responses", generation={"max_tokens": 10}, on_length=policy, retry_max_tokens=30
    )
    with BudgetedTeacher(QUESTIONS) as server:
        out = tmp_path / "collection.jsonl"
        metrics = generate_gold_responses(
            _gold_rows(), config, tiny_section("llm.teacher", **server.llm_config()), out
        )
    collection = read_jsonl(out)
    outputs = {row["prompt"]: row["output"] for row in collection}
    assert metrics["cut_off"]["first_pass"] == 2  # Long and Endless hit 10 tokens
    if policy == "retry":
        # asked again with the larger budget: Long now fits, Endless is cut off again
        assert sorted(server.budgets) == [
            ("Endless?", 10),
            ("Endless?", 30),
            ("Long?", 10),
            ("Long?", 30),
            ("Short?", 10),
        ]
        assert set(outputs) == {"Short?", "Long?"} and len(outputs["Long?"].split()) == 20
        assert metrics["cut_off"] == {
            "policy": "retry",
            "first_pass": 2,
            "retried": 2,
            "dropped": 1,
            "kept_flagged": 0,
        }
    elif policy == "drop":
        assert len(server.budgets) == 3
        assert set(outputs) == {"Short?"}
        assert metrics["cut_off"]["dropped"] == 2 and metrics["cut_off"]["retried"] == 0
    else:
        assert len(server.budgets) == 3
        assert set(outputs) == set(QUESTIONS)
        flagged = {row["prompt"] for row in collection if row.get("truncated")}
        assert flagged == {"Long?", "Endless?"}
        assert metrics["cut_off"]["kept_flagged"] == 2 and metrics["cut_off"]["dropped"] == 0
    assert metrics["responses"] == len(collection)


def test_gold_retry_a_window_at_a_time_keeps_the_row_order_and_the_metrics(monkeypatch, tmp_path):
    # Cut-off answers (over 10 words) sit between the others; those over 30 are cut off again.
    words = {"Short?": 3, "Long?": 20, "Endless?": 100, "Brief?": 2, "Lengthy?": 25, "Huge?": 50}
    base = {**_preference_rows()[0], "system": "You are a careful guide."}
    rows = [
        {**base, "instruction_id": f"test-{k}", "instruction": question}
        for k, question in enumerate(words)
    ]
    config = tiny_section(
        "gold_responses", generation={"max_tokens": 10}, on_length="retry", retry_max_tokens=30
    )
    monkeypatch.setenv("JANUS_SCRIPTED_CHAT_KEY", "sk-test-not-a-secret")
    runs = {}
    with BudgetedTeacher(words) as server:
        llm = tiny_section("llm.teacher", **server.llm_config())
        # None: one window, every cut-off answer asked again at once (as before streaming);
        # 2: a window per chunk of two rows, each window's cut-off answers asked again before
        # the window is written
        for chunk_size in (None, 2):
            monkeypatch.setenv("JANUS_CACHE_DIR", str(tmp_path / f"cache-{chunk_size}"))
            out = tmp_path / f"collection-{chunk_size}.jsonl"
            metrics = generate_gold_responses(rows, config, llm, out, chunk_size=chunk_size)
            runs[chunk_size] = (out.read_bytes(), metrics)
        assert sorted(server.budgets).count(("Long?", 30)) == 2  # both runs asked again
    assert runs[2] == runs[None]
    assert [row["prompt"] for row in read_jsonl(out)] == ["Short?", "Long?", "Brief?", "Lengthy?"]
    assert metrics["cut_off"] == {
        "policy": "retry",
        "first_pass": 4,
        "retried": 4,
        "dropped": 2,
        "kept_flagged": 0,
    }


# -- streaming: a paper-scale stage (200k rows) holds one chunk in memory ------------------------

CHUNK = 2  # the LLM client's chunk size in these tests: six rows make three chunks


def _numbered_rows(count: int = 6) -> list[dict]:
    base = {**_preference_rows()[0], "system": "You are a careful guide."}
    return [
        {**base, "instruction_id": f"test-{k}", "instruction": f"Question number {k}"}
        for k in range(count)
    ]


def _rows_in_temp_files(out: Path) -> int:
    """Complete rows in the stage's temporary output file (janus.io.atomic_open's)."""
    return sum(path.read_bytes().count(b"\n") for path in out.parent.glob(f".{out.name}.*.tmp"))


def _long_answer(question: str) -> str:
    # longer than the writer's buffer: a row the stage has written is on disk, not in memory
    return f"An answer to: {question}. " + "More words. " * 1000


def _stream_gold(monkeypatch, out: Path, answer, rows, **config) -> dict:
    monkeypatch.setenv("JANUS_SCRIPTED_CHAT_KEY", "sk-test-not-a-secret")
    with ScriptedChatServer(answer) as server:
        return generate_gold_responses(
            rows,
            tiny_section("gold_responses", **config),
            tiny_section("llm.teacher", **server.llm_config(max_in_flight=2)),
            out,
            total=6,
            chunk_size=CHUNK,
        )


def test_gold_rows_are_on_disk_before_the_stage_ends(monkeypatch, tmp_path):
    out = tmp_path / "collection.jsonl"
    written_when_last_chunk_asked = []

    def answer(request: dict, times_seen: int) -> str:
        question = user_message(request)
        if question in ("Question number 4", "Question number 5"):
            written_when_last_chunk_asked.append(_rows_in_temp_files(out))
        return _long_answer(question)

    metrics = _stream_gold(monkeypatch, out, answer, _numbered_rows())
    assert len(written_when_last_chunk_asked) == 2
    assert min(written_when_last_chunk_asked) > 0  # collect-then-write would have written 0
    assert metrics["responses"] == 6 and len(read_jsonl(out)) == 6


def test_gold_input_is_read_a_chunk_at_a_time(monkeypatch, tmp_path):
    read_so_far = []
    read_when_asked = []

    def rows():
        for row in _numbered_rows():
            read_so_far.append(row)
            yield row

    def answer(request: dict, times_seen: int) -> str:
        read_when_asked.append(len(read_so_far))
        return _long_answer(user_message(request))

    _stream_gold(monkeypatch, tmp_path / "collection.jsonl", answer, rows())
    # the first chunk's requests went out with only that chunk read; all six were read in the end
    assert min(read_when_asked) == CHUNK and len(read_so_far) == 6


def test_past_the_threshold_a_streaming_stage_leaves_no_file(monkeypatch, tmp_path):
    out = tmp_path / "collection.jsonl"
    written_before_failing = []

    def answer(request: dict, times_seen: int) -> str:
        question = user_message(request)
        if question == "Question number 5":  # the last chunk's: empty on every attempt
            written_before_failing.append(_rows_in_temp_files(out))
            return ""
        return _long_answer(question)

    with pytest.raises(StageFailed, match="1 of 6 items failed"):
        _stream_gold(monkeypatch, out, answer, _numbered_rows(), max_failed_fraction=0.1)
    assert max(written_before_failing) > 0  # rows had been written to the temporary file...
    assert not out.exists() and not list(tmp_path.glob(".collection.jsonl.*"))  # ...now gone


def test_a_retry_budget_must_be_larger():
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="retry_max_tokens"):
        tiny_section(
            "gold_responses", generation={"max_tokens": 64}, on_length="retry", retry_max_tokens=64
        )
