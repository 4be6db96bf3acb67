"""The openai backend against real HTTP servers on 127.0.0.1.

- `FakeOpenAIServer` (tests/servers/fake_openai.py) speaks the Chat Completions wire format and
  injects scripted faults: 429s with retry-after, 500s, stalls past the timeout, dropped
  connections, malformed bodies, schema-invalid JSON, response_format rejections, a dying server.
- `transformers serve` on the tiny model is a real OpenAI-compatible server, end to end.
"""

from __future__ import annotations

import asyncio
import json
import logging

import pytest
from servers.fake_openai import FakeOpenAIServer

from janus.config.llm import LLMConfig
from janus.llm import ChatRequest, LLMClient
from janus.llm.cache import resolve_cache_dir
from janus.llm.openai_wire import EndpointConfigError
from janus.llm.rate_limit import RateLimiter
from tests.sections import tiny_section

ANSWER_SCHEMA = {
    "type": "object",
    "properties": {"answer": {"type": "string"}},
    "required": ["answer"],
    "additionalProperties": False,
}


@pytest.fixture()
def server():
    fake = FakeOpenAIServer(stall_s=1.5, valid_json={"answer": "ok"}).start()
    yield fake
    fake.stop()


def _all_stats(client) -> dict:
    """Metrics (results) and the runtime record (requests sent, retries, cache hits) together."""
    return {**client.stats.as_metrics(), **client.stats.as_runtime()}


def _config(server: FakeOpenAIServer, **overrides) -> LLMConfig:
    settings = {
        "backend": "openai",
        "model": "fake-model",
        "base_url": server.base_url,
        "timeout_s": 0.5,
        "max_retries": 3,
        "max_in_flight": 4,
    }
    settings.update(overrides)
    return tiny_section("llm.teacher", **settings)


def _plain(*prompts: str) -> list[ChatRequest]:
    return [ChatRequest(messages=[{"role": "user", "content": p}], max_tokens=32) for p in prompts]


def _structured(*prompts: str) -> list[ChatRequest]:
    return [
        ChatRequest(messages=[{"role": "user", "content": p}], schema=ANSWER_SCHEMA, max_tokens=32)
        for p in prompts
    ]


def test_transport_faults_are_retried_counted_and_nothing_is_lost(server):
    requests = _plain(
        "[[429x2]] a",
        "[[500x1]] b",
        "[[stallx1]] c",
        "[[dropx1]] d",
        "[[malformedx2]] e",
        "f",
        "[[500x99]] g",
    )
    with LLMClient(_config(server, max_retries=2)) as client:
        results = client.generate(requests)
        stats = _all_stats(client)
    assert [r.ok for r in results] == [True] * 6 + [False]
    assert [r.text for r in results[:6]] == [
        f"echo: {r.request.message_list()[0]['content']}" for r in results[:6]
    ]
    assert "InternalServerError" in results[-1].error and "500" in results[-1].error
    # 2 + 1 + 1 + 1 transport retries, 2 malformed bodies, 2 retries of the hopeless 500
    assert stats["retries"] == 9
    assert stats["retries"] == server.client_retries + stats["malformed_responses"]
    assert stats["malformed_responses"] == 2
    assert stats["failed"] == 1 and stats["succeeded"] == 6
    assert stats["requests"] == 7  # generations asked, the failed one included
    assert stats["prompt_tokens"] == sum(r.prompt_tokens for r in results) > 0
    assert stats["completion_tokens"] == sum(r.completion_tokens for r in results) > 0


def test_rejected_response_format_falls_back_once_and_invalid_outputs_are_reasked(server):
    server.reject_formats = {"json_schema"}
    requests = _structured("s1", "[[invalidx1]] s2", "[[invalidx9]] s3")
    with LLMClient(_config(server, max_invalid_retries=2, max_in_flight=1)) as client:
        results = client.generate(requests)
        stats = _all_stats(client)
        assert server.format_requests["json_schema"] == 1  # paid once, then remembered
        more = client.generate(_structured("s4", "s5"))
        assert server.format_requests["json_schema"] == 1
    assert results[0].parsed == {"answer": "ok"} and results[0].attempts == 1
    assert results[1].parsed == {"answer": "ok"} and results[1].attempts == 2
    assert not results[2].ok and "after 3 attempt(s)" in results[2].error
    assert results[2].failure_reason == "invalid_output"
    assert all(r.ok for r in more)
    assert stats["invalid_outputs"] == 1 + 3
    assert stats["structured_fallbacks"] == 1 and stats["structured_route"] == "json_object"
    assert stats["valid_output_rate"] == pytest.approx(2 / 6)
    json_object_bodies = [b for b in server.bodies if b.get("response_format")]
    assert json_object_bodies[-1]["response_format"] == {"type": "json_object"}
    assert "JSON schema" in json_object_bodies[-1]["messages"][-1]["content"]


def test_rejecting_every_format_ends_on_the_prompt_route(server):
    server.reject_formats = {"json_schema", "json_object"}
    with LLMClient(_config(server, max_in_flight=1)) as client:
        results = client.generate(_structured("one", "two"))
        stats = _all_stats(client)
    assert all(r.parsed == {"answer": "ok"} for r in results)
    assert stats["structured_route"] == "prompt" and stats["structured_fallbacks"] == 2
    last = server.bodies[-1]
    assert "response_format" not in last and "JSON schema" in last["messages"][-1]["content"]


def test_an_endpoint_that_ignores_response_format_is_detected(server):
    server.honor_response_format = False  # accepts the field, answers prose (transformers serve)
    config = _config(server, max_in_flight=1, prose_answers_before_fallback=2)
    with LLMClient(config) as client:
        results = client.generate(_structured("one", "two", "three"))
        stats = _all_stats(client)
    # two prose answers in a row are the evidence; the re-asks then go the json_object route
    assert results[0].parsed == {"answer": "ok"} and results[0].attempts == 2
    assert results[1].parsed == {"answer": "ok"} and results[1].attempts == 2
    assert results[2].parsed == {"answer": "ok"} and results[2].attempts == 1
    assert stats["invalid_outputs"] == 2 and stats["structured_route"] == "json_object"


def test_an_explicit_route_rejected_by_the_endpoint_stops_the_run(server):
    server.reject_formats = {"json_schema"}
    client = LLMClient(_config(server, structured_output="json_schema"))
    with client, pytest.raises(EndpointConfigError, match="response_format.*structured_output"):
        client.generate(_structured("x", "y"))
    assert server.http_requests <= 2


def test_interrupted_run_resumes_paying_only_for_missing_answers(server):
    requests = _plain(*(f"item {i}" for i in range(10)))
    server.die_after = 4  # the server "dies" after 4 answers: every later connection drops
    with LLMClient(_config(server, max_retries=1)) as client:
        first = client.generate(requests)
    assert sum(r.ok for r in first) == 4
    # a dropped connection: APIConnectionError (httpx) or its APITimeoutError (aiohttp transport)
    assert all(r.failure_reason in ("connection_error", "timeout") for r in first if not r.ok)
    assert client.stats.failed == 6  # counted, not lost

    server.die_after = None
    server.reset_counts()
    with LLMClient(_config(server)) as client:
        second = client.generate(requests)
    assert all(r.ok for r in second)
    assert server.http_requests == 6  # only the missing ones were sent
    assert {key.split()[1] for key in server.hits} == {
        r.request.message_list()[0]["content"].split()[1] for r in first if not r.ok
    }
    assert client.stats.cache_hits == 4 and client.stats.requests == 6

    server.reset_counts()
    with LLMClient(_config(server)) as client:
        client.generate(requests)
    assert server.http_requests == 0 and client.stats.requests == 0


def test_in_flight_requests_are_bounded(server):
    server.delay_s = 0.2
    with LLMClient(_config(server, max_in_flight=3)) as client:
        results = client.generate(_plain(*(f"p{i}" for i in range(12))))
    assert all(r.ok for r in results)
    assert 2 <= server.peak_in_flight <= 3


def test_rate_limiter_spaces_requests_by_budget():
    now = [0.0]
    waits: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        waits.append(seconds)
        now[0] += seconds

    async def scenario() -> None:
        limiter = RateLimiter(per_minute=60, clock=lambda: now[0], sleep=fake_sleep)
        await limiter.acquire(60)  # a full minute's budget, at once
        await limiter.acquire(1)  # must wait one second for a unit to refill
        await limiter.acquire(120)  # more than a minute's worth: waits for a full bucket

    asyncio.run(scenario())
    assert waits == [pytest.approx(1.0), pytest.approx(60.0)]


def test_api_key_comes_from_the_environment_and_is_never_stored(server, monkeypatch, caplog):
    secret = "sk-test-secret-4242"
    monkeypatch.setenv("JANUS_TEST_KEY", secret)
    caplog.set_level(logging.DEBUG)
    with LLMClient(_config(server, api_key_env="JANUS_TEST_KEY")) as client:
        results = client.generate(_plain("[[500x1]] hello", "[[invalidx1]] there"))
        metrics = json.dumps(_all_stats(client))
    assert all(r.ok for r in results)
    assert server.authorizations == {f"Bearer {secret}"}
    cache_dir = resolve_cache_dir(_config(server).cache_dir)
    for path in cache_dir.iterdir():
        assert secret.encode() not in path.read_bytes(), path
    assert secret not in metrics and secret not in caplog.text


def test_missing_key_for_a_hosted_endpoint_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("JANUS_ABSENT_KEY", raising=False)
    config = tiny_section(
        "llm.teacher", backend="openai", model="gpt-4-turbo", api_key_env="JANUS_ABSENT_KEY"
    )
    with pytest.raises(EndpointConfigError, match="JANUS_ABSENT_KEY"):
        LLMClient(config)


def test_a_rejected_key_stops_the_run(server):
    with LLMClient(_config(server)) as client, pytest.raises(EndpointConfigError, match="401"):
        client.generate(_plain("[[401x1]] a", "b"))


# ---------------------------------------------------------------------------------------------
# a real OpenAI-compatible server: transformers serve on the tiny model
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def served_tiny_model(tiny_model_dir, tmp_path_factory):
    from janus.serving import transformers_serve

    log_path = tmp_path_factory.mktemp("serve") / "serve.log"
    with transformers_serve(tiny_model_dir, log_path=log_path) as base_url:
        yield base_url


def test_transformers_serve_end_to_end(served_tiny_model, tiny_model_dir):
    config = tiny_section(
        "llm.teacher",
        backend="openai",
        model=str(tiny_model_dir),
        base_url=served_tiny_model,
        max_in_flight=2,
        timeout_s=60,
        max_retries=1,
    )
    requests = [
        ChatRequest(messages=[{"role": "user", "content": f"Tell me about {topic}."}], max_tokens=8)
        for topic in ("rivers", "owls", "salt")
    ]
    with LLMClient(config) as client:
        results = client.generate(requests)
        stats = _all_stats(client)
    # the random model may answer whitespace only: such items fail as empty (re-asked, uncached)
    ok = [r for r in results if r.ok]
    assert all(r.text.strip() for r in ok)
    assert all(r.failure_reason == "empty_output" for r in results if not r.ok)
    assert stats["requests"] == sum(r.attempts for r in results) >= 3
    assert stats["prompt_tokens"] == sum(r.prompt_tokens for r in results)
    with LLMClient(config) as client:
        client.generate(requests)
        # answers are cached, empty ones are not: those are asked again
        assert client.stats.cache_hits >= len(ok)
        assert client.stats.requests == sum(r.attempts for r in results if not r.ok)


def test_transformers_serve_structured_failures_are_counted(served_tiny_model, tiny_model_dir):
    config = tiny_section(
        "llm.teacher",
        backend="openai",
        model=str(tiny_model_dir),
        base_url=served_tiny_model,
        max_in_flight=1,
        timeout_s=60,
        max_retries=1,
        max_invalid_retries=1,
    )
    with LLMClient(config) as client:
        results = client.generate(_structured("Answer in JSON.", "Again, in JSON."))
        stats = _all_stats(client)
    # the random model cannot write JSON: every answer is counted invalid or empty, re-asked,
    # then failed
    assert stats["invalid_outputs"] + stats["empty_outputs"] == 4
    assert stats["failed"] == 2 and stats["requests"] == 4
    assert all("after 2 attempt(s)" in r.error for r in results)


def test_identical_requests_in_one_call_are_sent_once(server):
    requests = _plain("same", "same", "other", "same")
    with LLMClient(_config(server)) as client:
        results = client.generate(requests)
    assert [r.text for r in results] == ["echo: same", "echo: same", "echo: other", "echo: same"]
    assert server.http_requests == 2 and client.stats.requests == 2
    assert client.stats.cache_hits == 2 and client.stats.succeeded == 4
