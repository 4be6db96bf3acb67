"""Batch mode against a loopback fake of the Files and Batches API (tests/servers/fake_batches.py):
upload, create, status validating -> in_progress -> finalizing -> completed, output and error files,
an expired batch, a partial completion, re-asking invalid answers in a following batch, and a
client killed with SIGKILL while polling that resumes without submitting anything twice."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sections import tiny_section
from servers.fake_batches import FakeBatchesServer

from janus.config.llm import LLMConfig
from janus.llm import ChatRequest, LLMClient
from janus.llm import batch as batch_module
from janus.llm.batch import BatchBackend
from janus.llm.batch_files import split_requests
from janus.llm.batch_state import BatchState
from janus.llm.cache import resolve_cache_dir
from janus.llm.pricing import Rates

ANSWER_SCHEMA = {
    "type": "object",
    "properties": {"answer": {"type": "string"}},
    "required": ["answer"],
    "additionalProperties": False,
}
PRICE = {
    "input_per_mtok": 10.0,
    "output_per_mtok": 30.0,
    "cached_input_per_mtok": 5.0,
    "batch_discount": 0.5,
}


@pytest.fixture()
def server():
    fake = FakeBatchesServer(valid_json={"answer": "ok"}).start()
    yield fake
    fake.stop()


@pytest.fixture(autouse=True)
def _runtime_in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # runtime/cost/*.json lands here, not in the repo


def _config(server, **overrides) -> LLMConfig:
    settings = {
        "backend": "openai",
        "mode": "batch",
        "model": "gpt-fake",
        "base_url": server.base_url,
        "batch_poll_s": 0.01,
        "max_retries": 2,
        "cache_dir": "~/unused",  # JANUS_CACHE_DIR (conftest) wins
        "prices": {"gpt-fake": PRICE},
    }
    return tiny_section("llm.teacher", **{**settings, **overrides})


def _requests(prompts, schema=None):
    return [ChatRequest(messages=[("user", p)], schema=schema, max_tokens=16) for p in prompts]


def test_batches_split_run_and_fill_the_cache(server, monkeypatch):
    monkeypatch.setattr(batch_module, "MAX_REQUESTS_PER_BATCH", 3)
    prompts = [f"question {i}" for i in range(7)]
    with LLMClient(_config(server), stage="unit") as client:
        results = client.generate(_requests(prompts))
        paid = client.cost.spent_usd
        stats = client.stats
        runtime = client.backend.runtime
    assert [r.text for r in results] == [f"echo: question {i}" for i in range(7)]
    assert all(r.ok and not r.cached for r in results)
    assert len(server.batches) == 3  # 7 requests at 3 per batch
    assert server.uploads == 3
    assert set(server.submitted.values()) == {1}
    assert all(b["object"]["status"] == "completed" for b in server.batches.values())
    assert runtime["requests_submitted"] == 7
    # the request lines carried the cache keys as custom_id and the Chat Completions body
    body_file = next(iter(server.files.values()))
    first = json.loads(body_file["content"].decode().splitlines()[0])
    assert first["method"] == "POST" and first["url"] == "/v1/chat/completions"
    assert first["custom_id"] == client.cache_key(_requests(prompts)[0])
    assert first["body"]["model"] == "gpt-fake" and first["body"]["max_tokens"] == 16
    # batch price, cached prompt tokens at the cached rate (the fake reports 2 per request)
    rates = Rates.of(_config(server))
    expected = sum(
        rates.cost(r.prompt_tokens, r.completion_tokens, cached_tokens=2, batch=True)
        for r in results
    )
    assert paid == pytest.approx(expected)
    assert paid < stats.cost_usd  # metrics keep the list (online) price of the answers
    written = json.loads(Path("runtime/cost/unit.json").read_text())  # cwd: tmp_path
    assert written["paid_usd"] == pytest.approx(paid, abs=1e-6) and written["mode"] == "batch"
    assert written["backend"]["batches_submitted"] == 3
    # an unchanged rerun is answered from the cache: nothing uploaded, nothing created
    with LLMClient(_config(server), stage="unit") as client:
        again = client.generate(_requests(prompts))
    assert [r.text for r in again] == [r.text for r in results]
    assert all(r.cached for r in again)
    assert server.uploads == 3 and len(server.batches) == 3


def test_the_client_hands_batch_mode_a_whole_batch_at_a_time(server, monkeypatch):
    """Chunks run one after another; in batch mode a chunk is a batch (hours each), so the
    client's chunk is the batch limit, not the online default."""
    from janus.llm import client as client_module

    monkeypatch.setattr(client_module, "DEFAULT_CHUNK_SIZE", 4)
    monkeypatch.setattr(batch_module, "MAX_REQUESTS_PER_BATCH", 10)
    with LLMClient(_config(server), stage="unit") as client:
        assert client.chunk_size == 10
        results = client.generate(_requests([f"q{i}" for i in range(12)]))
    assert all(r.ok for r in results)
    sizes = sorted(len(entry["requests"]) for entry in server.batches.values())
    assert sizes == [2, 10]  # the online chunk would have made [4, 4, 4]


def test_split_by_count_and_bytes():
    lines = [(f"k{i}", b"x" * 10) for i in range(10)]
    assert [len(g) for g in split_requests(lines, max_requests=4, max_bytes=1000)] == [4, 4, 2]
    assert [len(g) for g in split_requests(lines, max_requests=100, max_bytes=35)] == [3, 3, 3, 1]
    with pytest.raises(ValueError, match="alone"):
        split_requests([("big", b"x" * 50)], max_requests=5, max_bytes=40)


def test_partial_completion_and_error_file(server):
    prompts = ["fine one", "[[fail]] flaky", "[[fail_always]] broken", "fine two"]
    with LLMClient(_config(server), stage="unit") as client:
        results = client.generate(_requests(prompts))
        errors = dict(client.backend.runtime["errors"])
    ok = {r.request.message_list()[0]["content"]: r for r in results}
    assert ok["fine one"].ok and ok["fine two"].ok
    # a 500 in the error file is submitted again in a following batch, and then answered
    assert ok["[[fail]] flaky"].ok
    # a 400 is final: the item fails, is not cached, and a rerun asks again
    assert not ok["[[fail_always]] broken"].ok
    assert "http_400" in ok["[[fail_always]] broken"].error
    assert errors == {"http_500": 1, "http_400": 1}
    assert len(server.batches) == 2
    counts = [b["object"]["request_counts"] for b in server.batches.values()]
    assert counts[0] == {"total": 4, "completed": 2, "failed": 2}
    assert counts[1] == {"total": 1, "completed": 1, "failed": 0}


def test_expired_batch_keeps_what_ran_and_resubmits_the_rest(server):
    server.expire_next = 1
    prompts = ["ran in time", "[[slow]] did not", "also ran"]
    with LLMClient(_config(server), stage="unit") as client:
        results = client.generate(_requests(prompts))
        errors = dict(client.backend.runtime["errors"])
    assert all(r.ok for r in results)
    first, second = (entry["object"] for entry in server.batches.values())
    assert first["status"] == "expired" and first["request_counts"]["completed"] == 2
    assert second["status"] == "completed" and second["request_counts"]["total"] == 1
    assert errors == {"batch_expired": 1}
    assert server.submitted.most_common(1)[0][1] == 2  # only the expired request went twice


def test_invalid_answer_is_reasked_in_a_following_batch(server):
    prompts = ["[[invalid]] structured", "structured too"]
    with LLMClient(_config(server), stage="unit") as client:
        results = client.generate(_requests(prompts, schema=ANSWER_SCHEMA))
        invalid = client.stats.invalid_outputs
    assert all(r.ok and r.parsed == {"answer": "ok"} for r in results)
    assert invalid == 1
    assert len(server.batches) == 2  # the re-ask (the next attempt's key) is a new batch
    first_lines = next(iter(server.files.values()))["content"].decode().splitlines()
    assert json.loads(first_lines[0])["body"]["response_format"]["type"] == "json_schema"


def _lines_of(server, batch_entry) -> list[dict]:
    content = server.files[batch_entry["object"]["input_file_id"]]["content"].decode()
    return [json.loads(line) for line in content.splitlines()]


def test_a_line_rejected_for_its_response_format_moves_the_route_down(server):
    """As online: a 400 naming response_format moves json_schema -> json_object; only the
    rejected items go into the next batch (on the new route); the other answers are kept."""
    server.reject_formats = {"json_schema"}
    structured = ["first structured", "second structured"]
    plain = ["plain one", "plain two"]
    requests = _requests(structured, schema=ANSWER_SCHEMA) + _requests(plain)
    with LLMClient(_config(server), stage="unit") as client:
        results = client.generate(requests)
        errors = dict(client.backend.runtime["errors"])
        route = client.stats.extra["structured_route"]
        fallbacks = client.stats.extra["structured_fallbacks"]
        paid = client.cost.spent_usd
    assert all(r.ok for r in results)
    assert [r.parsed for r in results[:2]] == [{"answer": "ok"}] * 2
    assert [r.text for r in results[2:]] == ["echo: plain one", "echo: plain two"]
    assert route == "json_object" and fallbacks == 1
    assert errors == {"rejected_json_schema": 2}
    first, second = server.batches.values()
    assert first["object"]["request_counts"] == {"total": 4, "completed": 2, "failed": 2}
    assert [line["body"]["response_format"]["type"] for line in _lines_of(server, second)] == [
        "json_object",
        "json_object",
    ]
    # the plain items ran once; the rejected ones twice, paid once (a 400 line is not billed)
    keys = {client.cache_key(r): r.message_list()[0]["content"] for r in requests}
    assert {keys[k]: n for k, n in server.submitted.items()} == {
        "first structured": 2,
        "second structured": 2,
        "plain one": 1,
        "plain two": 1,
    }
    rates = Rates.of(_config(server))
    billed = sum(
        rates.cost(r.prompt_tokens, r.completion_tokens, cached_tokens=2, batch=True)
        for r in results
    )
    assert paid == pytest.approx(billed)
    # the cache keeps the answers: a rerun sends nothing
    with LLMClient(_config(server), stage="unit") as client:
        assert all(r.cached for r in client.generate(requests))
    assert len(server.batches) == 2


def test_route_steps_down_to_the_prompt_when_both_formats_are_refused(server):
    server.reject_formats = {"json_schema", "json_object"}
    with LLMClient(_config(server), stage="unit") as client:
        results = client.generate(_requests(["only structured"], schema=ANSWER_SCHEMA))
        route = client.stats.extra["structured_route"]
        errors = dict(client.backend.runtime["errors"])
    assert results[0].ok and results[0].parsed == {"answer": "ok"}
    assert route == "prompt"
    assert errors == {"rejected_json_schema": 1, "rejected_json_object": 1}
    last = list(server.batches.values())[-1]
    [line] = _lines_of(server, last)
    assert "response_format" not in line["body"]
    assert "JSON schema" in json.dumps(line["body"]["messages"])  # the schema in the prompt
    assert server.format_requests == {"json_schema": 1, "json_object": 1}


def test_a_fixed_route_that_is_refused_fails_its_items_naming_the_key(server):
    server.reject_formats = {"json_schema"}
    config = _config(server, structured_output="json_schema")
    with LLMClient(config, stage="unit", max_failed_fraction=1.0) as client:
        results = client.generate(_requests(["structured"], schema=ANSWER_SCHEMA))
    assert not results[0].ok
    assert "llm.*.structured_output" in results[0].error
    assert len(server.batches) == 1  # not resubmitted: no batch could answer it


def test_a_batch_created_but_not_recorded_is_adopted(server, monkeypatch):
    """Killed between batches.create and saving its id: the rerun finds it by its file id."""
    original = BatchBackend._create

    def create_then_die(self, client, local_id, file_id):
        client.batches.create(
            input_file_id=file_id, endpoint="/v1/chat/completions", completion_window="24h"
        )
        raise KeyboardInterrupt  # as if killed before the id reached batches.sqlite

    monkeypatch.setattr(BatchBackend, "_create", create_then_die)
    with pytest.raises(KeyboardInterrupt), LLMClient(_config(server), stage="unit") as client:
        client.generate(_requests(["a", "b"]))
    monkeypatch.setattr(BatchBackend, "_create", original)
    with LLMClient(_config(server), stage="unit") as client:
        results = client.generate(_requests(["a", "b"]))
        resumed = client.backend.runtime["batches_resumed"]
    assert all(r.ok for r in results)
    assert resumed == 1
    assert len(server.batches) == 1 and set(server.submitted.values()) == {1}


CHILD = """
import sys, json
from janus.config.llm import LLMConfig
from janus.llm import ChatRequest, LLMClient
config = LLMConfig.model_validate(json.loads(sys.argv[1]))
requests = [ChatRequest(messages=[("user", f"item {i}")], max_tokens=8) for i in range(5)]
with LLMClient(config, stage="child") as client:
    client.generate(requests)
print("finished")
"""


def test_kill_while_polling_then_resume_submits_nothing_twice(server, tmp_path, monkeypatch):
    server.hold = True  # batches stay in_progress: the child polls until killed
    config = _config(server)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src")}
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, json.dumps(config.model_dump())],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 120
        while server.retrieves < 5:  # created, and polled a few times
            assert child.poll() is None, child.stderr.read().decode()
            assert time.monotonic() < deadline, "the child never polled"
            time.sleep(0.05)
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    assert child.returncode == -signal.SIGKILL
    assert len(server.batches) == 1 and server.uploads == 1
    state = BatchState(resolve_cache_dir(config.cache_dir))
    [record] = state.open_batches(
        json.dumps(BatchBackend(config, _stats()).identity(), sort_keys=True)
    )
    state.close()
    assert record["batch_id"] in server.batches and len(record["keys"]) == 5

    server.hold = False
    requests = [ChatRequest(messages=[("user", f"item {i}")], max_tokens=8) for i in range(5)]
    with LLMClient(config, stage="resume") as client:
        results = client.generate(requests)
        resumed = client.backend.runtime["batches_resumed"]
    assert [r.text for r in results] == [f"echo: item {i}" for i in range(5)]
    assert resumed == 1
    assert server.uploads == 1 and len(server.batches) == 1
    assert set(server.submitted.values()) == {1}


def _stats():
    from janus.llm.types import UsageStats

    return UsageStats()
