"""Issue 9: LLM stages fail loudly and lose nothing; issue 10: a fleet of endpoints, streaming.

Every case runs the real openai client against loopback servers speaking the Chat Completions
wire format (tests/servers/fake_openai.py), with faults scripted per prompt or server-wide.
"""

from __future__ import annotations

import pytest
from servers.fake_openai import FakeOpenAIServer

from janus.config.llm import LLMConfig
from janus.llm import ChatRequest, LLMClient, StageFailed
from janus.llm.openai_wire import EndpointConfigError
from tests.sections import tiny_section

SCHEMA = {
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


def _config(base_url, **overrides) -> LLMConfig:
    settings = {
        "backend": "openai",
        "model": "fake-model",
        "base_url": base_url,
        "timeout_s": 1.0,
        "max_retries": 2,
        "max_in_flight": 4,
        "max_invalid_retries": 2,
    }
    settings.update(overrides)
    return tiny_section("llm.teacher", **settings)


def _plain(*prompts: str) -> list[ChatRequest]:
    return [ChatRequest(messages=[{"role": "user", "content": p}], max_tokens=32) for p in prompts]


def _structured(*prompts: str) -> list[ChatRequest]:
    return [
        ChatRequest(messages=[{"role": "user", "content": p}], schema=SCHEMA, max_tokens=32)
        for p in prompts
    ]


# -- the failure threshold ----------------------------------------------------------------------


def test_past_the_threshold_the_call_raises_with_counts_and_a_rerun_pays_only_the_rest(server):
    prompts = [f"[[500x9]] bad {i}" for i in range(3)] + [f"good {i}" for i in range(7)]
    config = _config(server.base_url, max_retries=1)
    client = LLMClient(config, stage="gold_responses", max_failed_fraction=0.2)
    with client, pytest.raises(StageFailed) as raised:
        client.generate(_plain(*prompts))
    message = str(raised.value)
    assert "3 of 10 items failed" in message and "gold_responses.max_failed_fraction" in message
    assert "http_500: 3" in message
    assert raised.value.by_reason == {"http_500": 3}

    # the endpoint is fixed: only the three failed items are asked again
    server.reset_counts()
    healthy = [p.replace("[[500x9]] ", "") for p in prompts]
    fixed = [*healthy[:3], *prompts[3:]]  # the good prompts are the very same requests
    with LLMClient(config, stage="gold_responses", max_failed_fraction=0.2) as client:
        results = client.generate(_plain(*fixed))
    assert all(r.ok for r in results)
    assert server.http_requests == 3 and client.stats.cache_hits == 7


def test_within_the_threshold_failures_are_returned_and_counted_by_reason(server):
    with LLMClient(_config(server.base_url, max_retries=0), max_failed_fraction=0.5) as client:
        results = client.generate(_plain("[[500x9]] a", "b", "c", "d"))
    assert [r.ok for r in results] == [False, True, True, True]
    assert results[0].failure_reason == "http_500"
    metrics = client.stats.as_metrics()
    assert metrics["failed_by_reason"] == {"http_500": 1} and metrics["items"] == 4


def test_a_broken_endpoint_stops_early(server):
    server.fault_all = "prose"  # never JSON, whatever is asked
    config = _config(server.base_url, structured_output="prompt", broken_endpoint_window=5)
    prompts = [f"item {i}" for i in range(200)]
    client = LLMClient(config, stage="preference_sets", max_failed_fraction=0.1)
    with client, pytest.raises(StageFailed, match="stopped early.*endpoint looks broken") as raised:
        client.generate(_structured(*prompts))
    # 5 unusable answers in a row, plus what was in flight: far from 200 x 3 requests
    assert server.http_requests < 20
    assert raised.value.by_reason["invalid_output"] >= 1
    assert sum(raised.value.by_reason.values()) == 200  # every item accounted for
    assert raised.value.by_reason["not_asked"] > 150


def test_metrics_hold_results_and_runtime_holds_the_run(server, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with LLMClient(_config(server.base_url), stage="expand_seeds") as client:
        client.generate(_plain("[[500x1]] a", "b"))
    metrics = client.stats.as_metrics()
    for volatile in ("requests", "retries", "cache_hits", "seconds", "spent_usd"):
        assert volatile not in metrics
    runtime = (tmp_path / "runtime" / "expand_seeds.llm.json").read_text()
    assert '"requests": 2' in runtime and '"retries": 1' in runtime
    with LLMClient(_config(server.base_url)) as again:
        again.generate(_plain("[[500x1]] a", "b"))
    assert again.stats.as_metrics() == metrics  # a warm-cache rerun: the same metrics


# -- errors no retry can fix ----------------------------------------------------------------------


def test_model_not_found_stops_the_run_at_once(server):
    server.fault_all = "404"
    client = LLMClient(_config(server.base_url, max_in_flight=2))
    with client, pytest.raises(EndpointConfigError) as raised:
        client.generate(_plain(*(f"p{i}" for i in range(300))))
    message = str(raised.value)
    assert "fake-model" in message and server.base_url in message and "llm.*.model" in message
    assert server.http_requests <= 2  # one per worker at most, not 300


def test_a_rejected_parameter_stops_the_run(server):
    client = LLMClient(_config(server.base_url, max_in_flight=1))
    with client, pytest.raises(EndpointConfigError, match="temperature"):
        client.generate(_plain("[[400x1]] a", "b", "c"))
    assert server.http_requests == 1


# -- structured outputs: only evidence about the endpoint moves the route ---------------------------


def test_one_invalid_answer_and_a_refusal_keep_the_route(server):
    requests = _structured("[[invalidx1]] a", "[[refusex1]] b", *(f"c{i}" for i in range(20)))
    with LLMClient(_config(server.base_url, max_in_flight=2)) as client:
        results = client.generate(requests)
    assert all(r.ok for r in results)
    assert results[0].attempts == 2 and results[1].attempts == 2  # re-asked on the same route
    runtime = client.stats.as_runtime()
    assert runtime["structured_route"] == "json_schema" and runtime["structured_fallbacks"] == 0
    assert runtime["refusals"] == 1
    assert server.format_requests == {"json_schema": 24}


def test_a_run_of_prose_answers_moves_the_route_down(server):
    server.honor_response_format = False
    config = _config(server.base_url, max_in_flight=1, prose_answers_before_fallback=3)
    with LLMClient(config) as client:
        results = client.generate(_structured(*(f"q{i}" for i in range(6))))
    assert all(r.ok for r in results)
    assert client.stats.as_runtime()["structured_route"] == "json_object"
    assert server.format_requests["json_schema"] == 3  # the evidence, then no more


# -- empty answers ---------------------------------------------------------------------------------


def test_empty_answers_are_reasked_stored_and_replayed_by_a_rerun(server):
    with LLMClient(_config(server.base_url)) as client:
        results = client.generate(_plain("[[emptyx1]] a", "[[emptyx9]] b", "c"))
    assert results[0].ok and results[0].text == "echo: [[emptyx1]] a" and results[0].attempts == 2
    assert not results[1].ok and results[1].failure_reason == "empty_output"
    assert client.stats.empty_outputs == 1 + 3
    first_metrics = client.stats.as_metrics()
    server.reset_counts()
    with LLMClient(_config(server.base_url)) as client:
        again = client.generate(_plain("[[emptyx1]] a", "[[emptyx9]] b", "c"))
    # a: its empty first answer and its good second one are replayed, no request (the same row
    # and the same counts); b failed, so it is asked again: a fresh round of three; c: cached
    assert again[0].text == results[0].text and again[0].attempts == 2
    assert server.hits["[[emptyx1]] a"] == 0 and server.hits["c"] == 0
    assert server.hits["[[emptyx9]] b"] == 3
    assert client.stats.extra["failed_items_asked_again"] == 1
    assert client.stats.as_metrics() == first_metrics


# -- the cache outlives the address -------------------------------------------------------------------


def test_the_cache_survives_a_new_port_and_localhost(server):
    requests = _plain(*(f"item {i}" for i in range(5)))
    with LLMClient(_config(server.base_url)) as client:
        client.generate(requests)
    with FakeOpenAIServer().start() as moved:
        for url in (moved.base_url, moved.base_url.replace("127.0.0.1", "localhost")):
            with LLMClient(_config(url)) as client:
                results = client.generate(requests)
            assert all(r.ok for r in results) and client.stats.cache_hits == 5
        assert moved.http_requests == 0


# -- one retry budget per item ---------------------------------------------------------------------------


def test_transport_faults_and_malformed_bodies_share_one_budget(server):
    # 2 malformed bodies, then 500s: with max_retries 3 the item gets 4 requests in all
    with LLMClient(_config(server.base_url, max_retries=3, timeout_s=2)) as client:
        (result,) = client.generate(_plain("[[malformedx2,500x50]] x"))
    assert not result.ok
    assert server.http_requests == 4
    # invalid answers are new samples (max_invalid_retries), drawing on the same budget
    server.reset_counts()
    with LLMClient(_config(server.base_url, max_retries=2, timeout_s=2)) as client:
        (result,) = client.generate(_structured("[[malformedx1,invalidx1,500x1,invalidx1]] y"))
    assert result.ok and result.attempts == 3
    assert server.http_requests == 3 + 2  # three samples, two retries in all


# -- a fleet of endpoints -------------------------------------------------------------------------------


def test_a_fleet_balances_loses_nothing_when_one_dies_and_pays_nothing_twice():
    servers = [FakeOpenAIServer().start() for _ in range(3)]
    try:
        for fake in servers:
            fake.delay_s = 0.02
        servers[1].die_after = 5  # stops answering after five answers
        config = _config([fake.base_url for fake in servers], max_in_flight=2, max_retries=1)
        prompts = [f"item {i}" for i in range(90)]
        with LLMClient(config, max_failed_fraction=0.0) as client:
            results = client.generate(_plain(*prompts))
        assert all(r.ok for r in results)
        answered = sum(fake.answers for fake in servers)
        assert answered == 90  # every item answered once, none twice
        assert servers[0].answers > 20 and servers[2].answers > 20 and servers[1].answers == 5
        counts = client.stats.as_runtime()["endpoints"]
        assert [counts[fake.base_url]["answers"] for fake in servers] == [
            fake.answers for fake in servers
        ]
    finally:
        for fake in servers:
            fake.stop()


# -- streaming at scale ----------------------------------------------------------------------------------


def test_stream_yields_in_order_a_chunk_at_a_time(server):
    requests = (_plain(f"row {i}")[0] for i in range(23))  # a generator: never held as a list
    with LLMClient(_config(server.base_url), chunk_size=5) as client:
        texts = [r.text for r in client.stream(requests, total=23)]
    assert texts == [f"echo: row {i}" for i in range(23)]
    assert server.peak_in_flight <= 4


def test_stream_rows_pairs_each_row_with_its_result_reading_a_chunk_at_a_time(server):
    read = []

    def rows():
        for i in range(7):
            read.append(i)
            yield {"id": i}

    with LLMClient(_config(server.base_url), chunk_size=3) as client:
        for row, result in client.stream_rows(rows(), lambda row: _plain(f"row {row['id']}")[0]):
            assert result.text == f"echo: row {row['id']}"
            assert len(read) <= 3 * (row["id"] // 3 + 1)  # only the chunk in flight is read


def test_a_stream_counts_only_its_own_failures_when_a_call_runs_between_its_chunks(server):
    # gold_responses asks a window's cut-off answers again between the chunks of its first pass
    config = _config(server.base_url, max_retries=0)
    with LLMClient(config, stage="gold_responses", max_failed_fraction=0.0, chunk_size=2) as client:
        texts = []
        for result in client.stream(_plain("a", "b", "c", "d")):
            texts.append(result.text)
            if len(texts) == 2:
                again = client.generate(_plain("[[500x9]] again"), check_failures=False)
                assert again[0].failure_reason == "http_500"
    assert texts == ["echo: a", "echo: b", "echo: c", "echo: d"]  # the pass itself: no failure
    assert client.stats.as_metrics()["failed_by_reason"] == {"http_500": 1}


def test_the_rate_limit_holds_across_chunks(server):
    # 60 requests/min: the bucket holds a minute's worth (60); requests 61 and 62 must wait a
    # second each, although they come in a later chunk than the first 60
    config = _config(server.base_url, requests_per_minute=60, max_in_flight=8)
    with LLMClient(config, chunk_size=31) as client:
        results = list(client.stream(_plain(*(f"r{i}" for i in range(62)))))
    assert all(r.ok for r in results)
    arrivals = sorted(server.arrivals)
    assert arrivals[-1] - arrivals[0] >= 1.9  # a lower bound that only the limiter explains
