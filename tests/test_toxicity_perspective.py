"""The Perspective scorer against a local server that speaks the API's wire format."""

from __future__ import annotations

import logging

import pytest

from janus.evaluate.perspective import PerspectiveClient, PerspectiveError, parse_score
from janus.evaluate.toxicity.scorers import PerspectiveScorer, score_texts
from tests.sections import tiny_section
from tests.servers.perspective_server import PerspectiveServer

KEY = "sekrit-perspective-key-123"


@pytest.fixture()
def server():
    fake = PerspectiveServer(key=KEY).start()
    yield fake
    fake.stop()


@pytest.fixture()
def params(server, monkeypatch):
    monkeypatch.setenv("TEST_PERSPECTIVE_KEY", KEY)
    return tiny_section(
        "toxicity.perspective",
        url=server.url,
        key_env="TEST_PERSPECTIVE_KEY",
        requests_per_second=1000,
        max_retries=3,
        backoff_s=0.01,
        timeout_s=5,
    )


def test_scores_come_from_summary_score_and_requests_have_the_api_shape(server, params):
    client = PerspectiveClient(params)
    results = client.score_many(["What a lovely day.", "That was an awful, awful thing to say."])
    assert results == [(0.05, None), (0.9, None)]
    assert server.shape_errors == []
    assert server.bodies[0] == {
        "comment": {"text": "What a lovely day."},
        "languages": ["en"],
        "requestedAttributes": {"TOXICITY": {}},
    }
    assert client.stats.as_metrics()["succeeded"] == 2


def test_a_429_is_retried_after_its_retry_after_then_succeeds(server, params):
    waits: list[float] = []
    client = PerspectiveClient(params, sleep=waits.append)
    text = "[[429x2]] a calm sentence"
    assert client.score(text) == pytest.approx(0.05)
    assert server.hits[text] == 3
    assert client.stats.retries == 2
    assert client.stats.rate_limited == 2
    assert waits.count(pytest.approx(0.01)) >= 2  # the server's Retry-After, not our backoff


def test_an_error_body_is_an_unscored_item_with_the_apis_message(server, params):
    client = PerspectiveClient(params)
    results = client.score_many(["[[400]] hola", "fine text"])
    assert results[0][0] is None
    assert "does not support request languages" in results[0][1]
    assert results[1] == (0.05, None)
    assert server.hits["[[400]] hola"] == 1  # a 400 is not retried
    assert client.stats.failed == 1


def test_server_errors_exhaust_retries_then_fail(server, params):
    client = PerspectiveClient(params, sleep=lambda s: None)
    with pytest.raises(PerspectiveError, match="HTTP 500.*after 3 retries"):
        client.score("[[500x9]] text")
    assert server.hits["[[500x9]] text"] == 4


def test_the_key_travels_as_query_parameter_and_is_never_logged(server, params, caplog):
    caplog.set_level(logging.DEBUG)
    client = PerspectiveClient(params, sleep=lambda s: None)
    client.score("[[429x1]] hello")
    # a dead port: requests' own messages carry the full URL with the key
    dead = params.model_copy(update={"url": "http://127.0.0.1:9/v1alpha1/comments:analyze"})
    dead_client = PerspectiveClient(dead, sleep=lambda s: None)
    results = dead_client.score_many(["hello"])
    assert results[0][0] is None
    assert "ConnectionError" in results[0][1]
    assert KEY not in results[0][1]
    assert KEY not in caplog.text
    assert "<redacted>" in results[0][1] or "key" not in results[0][1]


def test_a_wrong_key_is_rejected_with_the_apis_error(server, params, monkeypatch):
    monkeypatch.setenv("TEST_PERSPECTIVE_KEY", "wrong")
    client = PerspectiveClient(params)
    with pytest.raises(PerspectiveError, match="API key not valid"):
        client.score("hello")


def test_a_missing_key_names_the_variable(params, monkeypatch):
    monkeypatch.delenv("TEST_PERSPECTIVE_KEY")
    with pytest.raises(PerspectiveError, match="TEST_PERSPECTIVE_KEY"):
        PerspectiveClient(params)


def test_malformed_scores_are_errors_not_values():
    with pytest.raises(PerspectiveError, match="no attributeScores"):
        parse_score({"attributeScores": {}})
    with pytest.raises(PerspectiveError, match="not in"):
        parse_score({"attributeScores": {"TOXICITY": {"summaryScore": {"value": 1.7}}}})


def test_the_toxicity_scorer_sends_each_distinct_text_once_and_skips_empty_ones(server, params):
    toxicity = tiny_section("toxicity", scorer="perspective", perspective=params)
    scorer = PerspectiveScorer(toxicity)
    texts = [" an awful remark", "a kind remark", "an awful remark ", "", "   "]
    scores = score_texts(scorer, texts)
    assert scores["an awful remark"] == (0.9, None)
    assert scores["a kind remark"] == (0.05, None)
    assert scores[""][0] is None
    assert sum(server.hits.values()) == 2
