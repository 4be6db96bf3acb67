"""The LLM client over the local transformers backend, on the tiny random model."""

from __future__ import annotations

import dataclasses
import shutil
import sqlite3

import pytest

from janus.config.llm import LLMConfig
from janus.llm import ChatRequest, LLMClient
from janus.llm.cache import CACHE_FILE, resolve_cache_dir
from janus.llm.structured import InvalidOutput, parse_and_validate
from tests.sections import tiny_section

LABEL_SCHEMA = {
    "type": "object",
    "properties": {
        "label": {"enum": ["helpful", "harmless", "honest"]},
        "reason": {"type": "string", "maxLength": 24},
    },
    "required": ["label", "reason"],
    "additionalProperties": False,
}


def _all_stats(client) -> dict:
    """Metrics (results) and the runtime record (requests sent, retries, cache hits) together."""
    return {**client.stats.as_metrics(), **client.stats.as_runtime()}


def _config(model_dir, **overrides) -> LLMConfig:
    return tiny_section(
        "llm.teacher", **{"backend": "local", "model": str(model_dir), "batch_size": 4, **overrides}
    )


def _schema_requests(count: int) -> list[ChatRequest]:
    return [
        ChatRequest(
            messages=[{"role": "user", "content": f"Classify answer number {i}."}],
            schema=LABEL_SCHEMA,
            temperature=1.0,
            max_tokens=48,
            tag=f"item-{i}",
        )
        for i in range(count)
    ]


def test_schema_constrained_outputs_are_all_valid_and_rerun_is_free(tiny_model_dir):
    requests = _schema_requests(6)
    with LLMClient(_config(tiny_model_dir), stage="test") as client:
        first = client.generate(requests, desc="labels")
        stats = _all_stats(client)
    assert [result.request for result in first] == requests  # order kept
    assert all(result.ok for result in first), [result.error for result in first]
    for result in first:
        assert result.parsed == parse_and_validate(result.text, LABEL_SCHEMA)
        assert result.parsed["label"] in LABEL_SCHEMA["properties"]["label"]["enum"]
        assert len(result.parsed["reason"]) <= 24
    assert stats["requests"] == 6 and stats["cache_hits"] == 0
    assert stats["valid_output_rate"] == 1.0 and stats["valid_rate"] == 1.0
    assert stats["prompt_tokens"] > 0 and stats["completion_tokens"] > 0

    with LLMClient(_config(tiny_model_dir), stage="test") as client:
        second = client.generate(requests, desc="labels")
        rerun = _all_stats(client)
    assert rerun["requests"] == 0 and rerun["cache_hits"] == 6
    assert [r.parsed for r in second] == [r.parsed for r in first]
    assert all(r.cached for r in second)
    # what the outputs cost is the same on a rerun; what the rerun itself sent is zero
    assert rerun["completion_tokens"] == stats["completion_tokens"]
    assert rerun["sent_completion_tokens"] == 0


def test_answers_do_not_depend_on_batch_composition(tiny_model_dir, monkeypatch, tmp_path):
    requests = [
        ChatRequest(messages=[{"role": "user", "content": "word " * (i + 1)}], max_tokens=12)
        for i in range(4)
    ] + _schema_requests(1)
    answers = []
    for batch_size in (1, 5):
        monkeypatch.setenv("JANUS_CACHE_DIR", str(tmp_path / f"cache-{batch_size}"))
        with LLMClient(_config(tiny_model_dir, batch_size=batch_size)) as client:
            answers.append([result.text for result in client.generate(requests)])
            assert client.stats.requests == len(requests)
    assert answers[0] == answers[1]


def test_sample_index_and_temperature_zero(tiny_model_dir):
    base = ChatRequest(messages=[{"role": "user", "content": "Say something."}], max_tokens=16)
    samples = [dataclasses.replace(base, sample_index=i) for i in range(3)]
    greedy = [dataclasses.replace(base, temperature=0.0, sample_index=i) for i in range(2)]
    with LLMClient(_config(tiny_model_dir)) as client:
        sampled = client.generate(samples)
        greedy_results = client.generate(greedy)
    assert len({result.text for result in sampled}) == 3  # distinct samples of one prompt
    assert greedy_results[0].text == greedy_results[1].text  # greedy ignores the sample index


def test_truncated_structured_output_is_counted_reasked_then_failed(tiny_model_dir):
    long_schema = {
        "type": "object",
        "properties": {"essay": {"type": "string", "minLength": 200}},
        "required": ["essay"],
    }
    requests = [
        ChatRequest(
            messages=[{"role": "user", "content": "Write."}], schema=long_schema, max_tokens=6
        ),
        *_schema_requests(1),
    ]
    with LLMClient(_config(tiny_model_dir, max_invalid_retries=2)) as client:
        truncated, fine = client.generate(requests)
        stats = _all_stats(client)
    assert not truncated.ok and "truncated" in truncated.error
    assert truncated.finish_reason == "length" and fine.finish_reason == "stop"
    assert truncated.attempts == 3 and truncated.parsed is None
    assert fine.ok
    assert stats["invalid_outputs"] == 3 and stats["failed"] == 1 and stats["succeeded"] == 1
    assert stats["requests"] == 4
    assert stats["valid_output_rate"] == pytest.approx(1 / 4)


def test_cache_lives_in_janus_cache_dir_and_commits_each_answer(tiny_model_dir, tmp_path):
    config = _config(tiny_model_dir)
    directory = resolve_cache_dir(config.cache_dir)
    assert directory == (tmp_path / "llm-cache").resolve()  # conftest's JANUS_CACHE_DIR
    with LLMClient(config) as client:
        client.generate(_schema_requests(3))
    with sqlite3.connect(directory / CACHE_FILE) as connection:
        assert connection.execute("SELECT COUNT(*) FROM responses").fetchone()[0] == 3
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_changed_weights_change_the_model_identity(tiny_model_dir, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(tiny_model_dir, copy)
    request = _schema_requests(1)[0]
    with LLMClient(_config(tiny_model_dir)) as original, LLMClient(_config(copy)) as same:
        assert original.cache_key(request) == same.cache_key(request)  # path is not identity
    weights = next(copy.glob("*.safetensors"))
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with LLMClient(_config(tiny_model_dir)) as original, LLMClient(_config(copy)) as changed:
        assert original.cache_key(request) != changed.cache_key(request)


def test_invalid_json_is_reported_not_guessed():
    with pytest.raises(InvalidOutput, match="not JSON"):
        parse_and_validate('{"label": "helpful", "reas', LABEL_SCHEMA)
    with pytest.raises(InvalidOutput, match="schema violation"):
        parse_and_validate('{"label": "kind", "reason": "x"}', LABEL_SCHEMA)
    fenced = 'Sure:\n```json\n{"label": "honest", "reason": "ok"}\n```'
    assert parse_and_validate(fenced, LABEL_SCHEMA) == {"label": "honest", "reason": "ok"}


def test_a_broken_schema_is_the_callers_error(tiny_model_dir):
    broken = ChatRequest(messages=[{"role": "user", "content": "x"}], schema={"type": "objekt"})
    with LLMClient(_config(tiny_model_dir)) as client, pytest.raises(Exception, match="objekt"):
        client.generate([broken])


def test_a_failing_item_fails_alone_and_is_not_cached(tiny_model_dir, monkeypatch):
    from janus.llm.local import LocalBackend

    original = LocalBackend._generate_batch

    def poisoned(self, jobs, prompts):  # a fault in one prompt, like an over-long input
        if any("POISON" in prompt for prompt in prompts):
            raise RuntimeError("this prompt cannot be generated")
        return original(self, jobs, prompts)

    monkeypatch.setattr(LocalBackend, "_generate_batch", poisoned)
    requests = _schema_requests(3)
    requests.insert(1, ChatRequest(messages=[{"role": "user", "content": "POISON"}], max_tokens=48))
    requests[1] = dataclasses.replace(requests[1], schema=LABEL_SCHEMA)
    with LLMClient(_config(tiny_model_dir, batch_size=4)) as client:
        results = client.generate(requests)
        stats = _all_stats(client)
    assert [r.ok for r in results] == [True, False, True, True]
    assert "cannot be generated" in results[1].error
    assert stats["failed"] == 1 and stats["succeeded"] == 3 and stats["requests"] == 4
    monkeypatch.setattr(LocalBackend, "_generate_batch", original)
    with LLMClient(_config(tiny_model_dir, batch_size=4)) as client:
        again = client.generate(requests)
        assert client.stats.requests == 1 and all(r.ok for r in again)  # only the missing one


HUB_COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture
def hub_judge(tiny_model_dir, tmp_path, monkeypatch) -> str:
    """The tiny model as `janus-test/judge` in a hub cache laid out as huggingface_hub writes it
    (snapshots/<commit>, refs/main), read offline."""
    cache = tmp_path / "hf" / "hub"
    repo = cache / "models--janus-test--judge"
    shutil.copytree(tiny_model_dir, repo / "snapshots" / HUB_COMMIT)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(HUB_COMMIT)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import huggingface_hub.constants as hub_constants

    monkeypatch.setattr(hub_constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", True)
    return "hub:janus-test/judge"


def test_a_hub_model_at_a_pinned_revision_answers_in_process(hub_judge):
    """`model: hub:<owner>/<name>` with model_revision: the hub library resolves it; the identity
    is the id and the commit, so a branch that moves to new weights is a new model for the
    cache. Without CUDA it runs on transformers."""
    config = _config("unused", model=hub_judge, model_revision="main", device="cpu")
    assert config.hub_id() == "janus-test/judge"
    request = ChatRequest(messages=[{"role": "user", "content": "Hi"}], max_tokens=4)
    with LLMClient(config) as client:
        assert client.backend.identity()["model"] == f"hub:janus-test/judge@{HUB_COMMIT}"
        (result,) = client.generate([request])
    assert result.ok, result.error
    pinned = _config("unused", model=hub_judge, model_revision=HUB_COMMIT, device="cpu")
    with LLMClient(pinned) as again:
        assert again.cache_key(request) == client.cache_key(request)  # the branch and its commit


@pytest.mark.gpu
def test_a_hub_model_runs_on_vllm_when_it_is_installed(hub_judge):
    pytest.importorskip("vllm")
    config = _config("unused", model=hub_judge, model_revision="main", device="auto")
    requests = [
        ChatRequest(messages=[{"role": "user", "content": f"Hi {i}"}], max_tokens=8)
        for i in range(3)
    ]
    with LLMClient(config) as client:
        assert client.backend.identity()["engine"] == "vllm"
        results = client.generate(requests)
        labels = client.generate(_schema_requests(2))
    assert all(result.ok for result in results), [result.error for result in results]
    assert all(result.ok for result in labels), [result.error for result in labels]


def test_a_hub_model_without_a_revision_is_refused():
    with pytest.raises(ValueError, match="needs a model_revision"):
        _config("unused", model="hub:janus-test/judge", model_revision=None)
    with pytest.raises(ValueError, match="expected hub:<owner>/<name>"):
        _config("unused", model="hub:not a hub id", model_revision="main")
