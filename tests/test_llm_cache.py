"""The response cache key: every field that determines an answer changes it; `tag` does not."""

from __future__ import annotations

import dataclasses
import threading

import pytest

from janus.llm import ChatRequest, LLMClient
from janus.llm.cache import ResponseCache, resolve_cache_dir
from janus.llm.types import Generation
from tests.sections import tiny_section

BASE = ChatRequest(
    messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
    schema={"type": "object", "properties": {"a": {"type": "string"}}},
    temperature=0.7,
    top_p=0.9,
    max_tokens=64,
    sample_index=0,
    tag="row-1",
)

CHANGES = {
    "messages": {"messages": [{"role": "user", "content": "Hi"}]},
    "message role": {
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "assistant", "content": "Hi"},
        ]
    },
    "schema": {"schema": {"type": "object", "properties": {"b": {"type": "string"}}}},
    "no schema": {"schema": None},
    "temperature": {"temperature": 0.0},
    "top_p": {"top_p": 1.0},
    "max_tokens": {"max_tokens": 65},
    "sample_index": {"sample_index": 1},
}


@pytest.fixture()
def local_client(tiny_model_dir):
    with LLMClient(
        tiny_section("llm.teacher", backend="local", model=str(tiny_model_dir))
    ) as client:
        yield client


@pytest.mark.parametrize("field", sorted(CHANGES))
def test_each_determining_field_changes_the_key(local_client, field):
    changed = dataclasses.replace(BASE, **CHANGES[field])
    assert local_client.cache_key(changed) != local_client.cache_key(BASE)


def test_tag_and_message_spelling_do_not_change_the_key(local_client):
    assert local_client.cache_key(dataclasses.replace(BASE, tag="other")) == local_client.cache_key(
        BASE
    )
    as_tuples = dataclasses.replace(BASE, messages=(("system", "Be brief."), ("user", "Hi")))
    assert local_client.cache_key(as_tuples) == local_client.cache_key(BASE)


def test_attempt_changes_the_key(local_client):
    assert local_client.cache_key(BASE, attempt=1) != local_client.cache_key(BASE, attempt=0)


def test_openai_identity_is_the_model_never_the_address_nor_the_key(monkeypatch):
    def key(**overrides):
        config = tiny_section(
            "llm.teacher", backend="openai", model="gpt-x", base_url="http://127.0.0.1:1/v1"
        )
        with LLMClient(config.model_copy(update=overrides)) as client:
            return client.cache_key(BASE)

    monkeypatch.setenv("OPENAI_API_KEY", "sk-first")
    first = key()
    monkeypatch.setenv("OPENAI_API_KEY", "sk-second")
    assert key() == first  # the key never depends on (or contains) the API key
    # a restarted server on another port, localhost for 127.0.0.1, a fleet of replicas: the same
    assert key(base_url="http://127.0.0.1:2/v1") == first
    assert key(base_url="http://localhost:1/v1/") == first
    assert key(base_url=["http://10.0.0.1:8000/v1", "http://10.0.0.2:8000/v1"]) == first
    # the model, its revision, who serves it and the structured-output mode decide the answer
    assert key(model="gpt-y") != first
    assert key(model_revision="2024-04-09") != first
    assert key(provider="azure") != first
    assert key(structured_output="prompt") != first
    assert key(base_url=None) != first  # api.openai.com: provider "openai", not self-hosted


def test_local_and_openai_never_share_keys(local_client):
    config = tiny_section(
        "llm.teacher",
        backend="openai",
        model=local_client.config.model,
        base_url="http://127.0.0.1:1/v1",
    )
    with LLMClient(config) as remote:
        assert remote.cache_key(BASE) != local_client.cache_key(BASE)


def test_cache_dir_env_overrides_params(monkeypatch, tmp_path):
    monkeypatch.setenv("JANUS_CACHE_DIR", str(tmp_path / "elsewhere"))
    assert resolve_cache_dir("~/.cache/janus/llm") == (tmp_path / "elsewhere").resolve()
    monkeypatch.delenv("JANUS_CACHE_DIR")
    assert str(resolve_cache_dir("~/.cache/janus/llm")).endswith(".cache/janus/llm")


def test_relative_cache_dir_is_rejected():
    with pytest.raises(ValueError, match="absolute"):
        tiny_section("llm.teacher", cache_dir="cache/llm")


def test_concurrent_writers_lose_nothing(tmp_path):
    caches = [ResponseCache(tmp_path) for _ in range(3)]  # three connections, like three processes

    def write(cache: ResponseCache, worker: int) -> None:
        for i in range(50):
            cache.put(f"{worker}-{i}", Generation(text=str(i), prompt_tokens=i))

    threads = [threading.Thread(target=write, args=(c, w)) for w, c in enumerate(caches)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    reader = ResponseCache(tmp_path)
    assert len(reader) == 150
    assert reader.get("2-49") == Generation(text="49", prompt_tokens=49)
    assert reader.get("missing") is None
    for cache in [*caches, reader]:
        cache.close()
