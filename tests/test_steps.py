"""The one LLM-step runner (janus.steps.runner) against a real OpenAI-compatible server on
127.0.0.1 (tests/servers/fake_openai.py): rows keep their order, fanned-out rows are answered
together, rejections are counted by reason, re-asks replace answers in place, and past the failure
threshold StageFailed is raised with nothing written (no partial output)."""

from __future__ import annotations

import pytest
from servers.fake_openai import FakeOpenAIServer

from janus.config.params import load_params
from janus.io import read_jsonl
from janus.llm import ChatRequest, LLMClient, StageFailed
from janus.steps.base import Rejection, Step
from janus.steps.registry import entries
from janus.steps.runner import collect_step, run_step
from janus.steps.upstream import Upstream
from tests.conftest import REPO_ROOT as REPO
from tests.sections import tiny_section


class Echo(Step):
    """One request per row (or `repeats` per row); a row whose answer mentions "drop" is rejected."""

    name = "echo"
    desc = "echo"

    def __init__(self, repeats: int | None = None, max_failed_fraction: float | None = 0.0):
        self.repeats = repeats
        self.max_failed_fraction = max_failed_fraction

    @property
    def fan_out(self) -> int:
        return self.repeats or 1

    def _request(self, row: dict, repeat: int = 0) -> ChatRequest:
        return ChatRequest(
            messages=[{"role": "user", "content": row["prompt"]}],
            max_tokens=16,
            sample_index=repeat,
            tag=f"{row['id']}/{repeat}",
        )

    def format_input(self, row):
        if self.repeats is None:
            return self._request(row)
        return [self._request(row, repeat) for repeat in range(self.repeats)]

    def format_output(self, row, result):
        if isinstance(result, list):
            return {**row, "answers": [r.text for r in result]}
        if not result.ok:
            return Rejection("failed", result.error or "")
        if "drop" in result.text:
            return Rejection("unwanted", "asked to drop it")
        return {**row, "answer": result.text}

    def count(self, output, tally):
        tally.counts["chars"] += len(output.get("answer", ""))

    def metrics(self, tally):
        return {
            "rows": tally.rows,
            "requests": tally.requests,
            "written": tally.written,
            "rejected": dict(tally.rejected),
            "chars": tally.counts["chars"],
        }


@pytest.fixture()
def server(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # the client's runtime file
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-a-secret")
    fake = FakeOpenAIServer().start()
    yield fake
    fake.stop()


def _llm(server: FakeOpenAIServer, **overrides):
    settings = {
        "backend": "openai",
        "model": "fake-model",
        "base_url": server.base_url,
        "timeout_s": 2.0,
        "max_retries": 0,
        "max_in_flight": 4,
        "max_invalid_retries": 0,
        **overrides,
    }
    return tiny_section("llm.teacher", **settings)


def _rows(*prompts: str) -> list[dict]:
    return [{"id": f"r{i}", "prompt": prompt} for i, prompt in enumerate(prompts)]


def test_rows_keep_their_order_across_chunks_and_rejections_are_counted(
    server, tmp_path, caplog
):
    server.delay_s = 0.01  # answers arrive out of order with four in flight
    prompts = [f"question {i}" + (" drop" if i % 5 == 3 else "") for i in range(23)]
    out = tmp_path / "out.jsonl"
    metrics = run_step(Echo(), _rows(*prompts), _llm(server), out, total=23, chunk_size=4)
    written = read_jsonl(out)
    kept = [p for p in prompts if "drop" not in p]
    assert [row["prompt"] for row in written] == kept
    assert all(row["answer"] == f"echo: {row['prompt']}" for row in written)
    assert metrics["rows"] == metrics["requests"] == 23
    assert metrics["written"] == len(kept) == 19
    assert metrics["rejected"] == {"unwanted": 4}
    skipped = [r.getMessage() for r in caplog.records if "no row for" in r.getMessage()]
    assert skipped == [f"echo: no row for r{i}/0: unwanted (asked to drop it)" for i in (3, 8, 13, 18)]
    assert metrics["chars"] == sum(len(f"echo: {p}") for p in kept)
    assert metrics["llm"]["items"] == 23 and metrics["llm"]["failed"] == 0


def test_a_fanned_out_row_gets_all_its_answers_together(server):
    rows = _rows("alpha", "beta", "gamma")
    outputs, metrics = collect_step(Echo(repeats=3), rows, _llm(server), chunk_size=2)
    assert [row["id"] for row in outputs] == ["r0", "r1", "r2"]
    assert all(row["answers"] == [f"echo: {row['prompt']}"] * 3 for row in outputs)
    assert metrics["requests"] == 9 and metrics["rows"] == 3


def test_past_the_threshold_nothing_is_written(server, tmp_path):
    out = tmp_path / "out.jsonl"
    prompts = [f"question {i}" for i in range(10)]
    prompts[7] = "[[500x9]] question 7"  # fails on every attempt
    step = Echo(max_failed_fraction=0.05)
    with pytest.raises(StageFailed, match="echo: 1 of 10 items failed") as failed:
        run_step(step, _rows(*prompts), _llm(server), out, chunk_size=3)
    assert failed.value.by_reason == {"http_500": 1}
    # atomic: no output and no temporary file left behind, although rows had been written
    assert not out.exists() and not list(tmp_path.glob(".out.jsonl.*"))

    # within the threshold the failed row is a counted rejection and the rest are written
    metrics = run_step(step, _rows(*prompts), _llm(server), out, max_failed_fraction=0.1)
    assert len(read_jsonl(out)) == 9 and metrics["rejected"] == {"failed": 1}


class Longer(Echo):
    """Asks again, with a larger budget, every answer to a prompt that says "again"."""

    def reask(self, result, tally):
        if "again" in result.request.messages[0]["content"] and result.request.max_tokens == 16:
            tally.counts["asked_again"] += 1
            return ChatRequest(
                messages=result.request.message_list(), max_tokens=64, tag=result.request.tag
            )
        return None

    def format_output(self, row, result):
        return {**row, "max_tokens": result.request.max_tokens}

    def metrics(self, tally):
        return {"reasked": tally.reasked, "counted": tally.counts["asked_again"]}


def test_reasks_replace_answers_in_place_a_window_at_a_time(server, tmp_path):
    prompts = ["a", "b again", "c", "d again", "e", "f again", "g"]
    out = tmp_path / "out.jsonl"
    metrics = run_step(Longer(), _rows(*prompts), _llm(server), out, chunk_size=2)
    written = read_jsonl(out)
    assert [row["prompt"] for row in written] == prompts
    assert [row["max_tokens"] for row in written] == [16, 64, 16, 64, 16, 64, 16]
    assert metrics["reasked"] == metrics["counted"] == 3


def test_an_injected_client_is_used_and_left_open(server, tmp_path):
    with LLMClient(_llm(server), stage="mine") as client:
        run_step(Echo(), _rows("one"), None, tmp_path / "a.jsonl", client=client)
        run_step(Echo(), _rows("two"), None, tmp_path / "b.jsonl", client=client)
        assert client.stats.succeeded == 2
    assert server.answers == 2


def test_the_registry_builds_the_data_steps_with_their_fan_out():
    """The forecast's view of the data stages: each registered step builds from params, reads
    its planned rows, and makes rows x fan_out requests (preference_sets: one per set)."""
    params = load_params(REPO / "profiles/tiny.yaml")
    upstream = Upstream(params, REPO, outputs={})  # no upstream output: stand-ins
    built = {}
    for entry in entries("generate"):
        step = entry.build(params, upstream)
        plan = entry.plan(params, upstream)
        assert step.name == entry.name and entry.role == "teacher" == step.role
        assert len(step.requests(plan.rows)) == len(plan.rows) * step.fan_out
        built[entry.name] = (step, plan)
    assert list(built) == ["expand_seeds", "preference_sets", "system_messages", "gold_responses"]
    sets_step, instructions = built["preference_sets"]
    assert sets_step.fan_out == params.preference_sets.sets_per_instruction > 1
    # every later stage expects one row per preference set (all assumed valid)
    for later in ("system_messages", "gold_responses"):
        assert built[later][1].count == instructions.count * sets_step.fan_out
    assert built["expand_seeds"][1].exact and not instructions.exact
