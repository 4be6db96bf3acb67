"""Issue 18: many runs, one cache, one budget.

Real processes against the loopback OpenAI-compatible server (tests/servers/fake_openai.py):
several processes of one LLM stage pay once per item and write the same rows; a `dvc exp run
--queue` of two experiments sharing the stage, run by two workers, pays once and matches serial
runs; `max_usd` / `run_max_usd` hold across 2 and 4 processes; a new cache opened by several
processes at once never crashes; reruns after empty or invalid answers are exact; SIGTERM and kill -9
leave nothing behind.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from sections import tiny_section
from servers.dvc_project import isolated_env, run
from servers.fake_openai import FakeOpenAIServer

from janus.io import atomic_open, remove_stale_temp_files
from janus.llm import ChatRequest, LLMClient, StageFailed
from janus.llm.batch_state import BatchState
from janus.llm.budget import BudgetExceeded
from janus.llm.cache import ResponseCache
from janus.llm.ledger import SpendLedger
from janus.llm.types import Generation

REPO = Path(__file__).resolve().parents[1]
STAGE_OUT = "data/seed_preferences.jsonl"
# $1 a completion token, prompts free: a max_tokens=4 request's worst case is $4, an answer of the
# fake server ("echo: <prompt>", two words) costs $2
DOLLAR_PER_OUTPUT_TOKEN = {
    "input_per_mtok": 0.0,
    "output_per_mtok": 1_000_000.0,
    "cached_input_per_mtok": 0.0,
    "batch_discount": 0.5,
}
SCHEMA = {
    "type": "object",
    "properties": {"answer": {"type": "string"}},
    "required": ["answer"],
    "additionalProperties": False,
}


@pytest.fixture(autouse=True)
def _shared_cache(tmp_path, monkeypatch):
    """In-process clients use the cache the child processes share; runtime/ goes to tmp_path."""
    monkeypatch.setenv("JANUS_CACHE_DIR", str(tmp_path / "shared-cache"))
    monkeypatch.setenv("JANUS_RUN_ID", "test-run")
    monkeypatch.chdir(tmp_path)


def _teacher(base_url: str, **overrides) -> dict:
    return {
        "backend": "openai",
        "model": "fake-teacher",
        "base_url": base_url,
        "max_retries": 1,
        "max_in_flight": 4,
        "timeout_s": 10,
        "max_invalid_retries": 1,
        "cache_dir": "~/unused",  # JANUS_CACHE_DIR wins
        **overrides,
    }


def _stage_params(base_url: str) -> dict:
    """The tiny profile, with the openai teacher and every taxonomy keyword (107 requests)."""
    params = yaml.safe_load((REPO / "profiles/tiny.yaml").read_text())
    params["llm"]["teacher"] = {**params["llm"]["teacher"], **_teacher(base_url)}
    params["expand_seeds"]["keywords_per_subdimension"] = None
    return params


def _stage_dir(root: Path, base_url: str) -> Path:
    """A working directory for `stages/expand_seeds.py`: params.yaml and the taxonomy."""
    (root / "data").mkdir(parents=True)
    (root / "data/taxonomy").symlink_to(REPO / "data/taxonomy")
    (root / "params.yaml").write_text(yaml.safe_dump(_stage_params(base_url), sort_keys=False))
    return root


def _stage_env(tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": str(REPO / "src"),
        "JANUS_CACHE_DIR": str(tmp_path / "shared-cache"),
    }


def _start_stage(work: Path, env: dict[str, str]) -> subprocess.Popen:
    command = [
        sys.executable,
        str(REPO / "stages/expand_seeds.py"),
        "--out",
        STAGE_OUT,
        "--metrics",
        "metrics/expand_seeds.json",
    ]
    return subprocess.Popen(command, cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip


def _finish(child: subprocess.Popen, timeout: float = 180) -> str:
    _, stderr = child.communicate(timeout=timeout)
    assert child.returncode == 0, stderr[-3000:]
    return stderr


def _requests_sent(work: Path) -> int:
    return json.loads((work / "runtime/expand_seeds.llm.json").read_text())["requests"]


def _distinct_prompts(server: FakeOpenAIServer) -> set[str]:
    return {json.dumps(body["messages"], sort_keys=True) for body in server.bodies}


# -- several processes of one stage, one cache --------------------------------------------------------


@pytest.mark.parametrize("processes", [2, 4])
def test_processes_of_one_stage_pay_once_and_write_the_same_rows(tmp_path, processes):
    env = _stage_env(tmp_path)
    with FakeOpenAIServer() as server:
        server.delay_s = 0.1  # each process alone takes ~3 s: they overlap
        server.numbered_answers = True  # every answer differs: a second one would show
        works = [_stage_dir(tmp_path / f"run{i}", server.base_url) for i in range(processes)]
        children = [_start_stage(work, env) for work in works]
        for child in children:
            _finish(child)

        prompts = _distinct_prompts(server)
        assert len(prompts) == 107
        # each item paid once, in all; the processes shared the work (both had requests in
        # flight at once: more than one process's max_in_flight of 4)
        assert server.http_requests == server.answers == len(prompts)
        assert sum(_requests_sent(work) for work in works) == len(prompts)
        assert server.peak_in_flight > 4
        rows = {(work / STAGE_OUT).read_bytes() for work in works}
        assert len(rows) == 1  # the same answers in every process's output
        assert b"echo #" in next(iter(rows))

        # a later warm rerun keeps those first answers: no request, the same bytes
        server.reset_counts()
        again = _stage_dir(tmp_path / "rerun", server.base_url)
        _finish(_start_stage(again, env))
        assert server.http_requests == 0
        assert (again / STAGE_OUT).read_bytes() in rows


def test_the_first_answer_stored_is_kept(tmp_path):
    first, second = ResponseCache(tmp_path), ResponseCache(tmp_path)
    assert first.claim(["k"])["k"].mine
    assert second.claim(["k"])["k"].holder == os.getpid()  # first asks; second waits
    assert first.put("k", Generation("one", 1, 1)).text == "one"
    assert second.put("k", Generation("two", 1, 1)).text == "one"  # paid twice: one answer
    assert second.claim(["k"])["k"].answer.text == "one"
    first.close()
    # a closed client's claims are free to take
    assert second.claim(["other"])["other"].mine
    third = ResponseCache(tmp_path)
    assert third.claim(["other"])["other"].holder == os.getpid()
    second.close()
    assert third.claim(["other"])["other"].mine
    third.close()


# -- dvc exp run --queue with two workers -------------------------------------------------------------


def _dvc_project(work: Path, base_url: str, env: dict[str, str]) -> None:
    """A git + DVC repo with the one LLM stage `expand_seeds` (its code from this checkout, on
    PYTHONPATH), committed, as `dvc exp run --queue` needs."""
    (work / "stages").mkdir(parents=True)
    (work / "stages/expand_seeds.py").write_bytes((REPO / "stages/expand_seeds.py").read_bytes())
    taxonomy = work / "data/taxonomy"
    taxonomy.mkdir(parents=True)
    for source in (REPO / "data/taxonomy").iterdir():
        (taxonomy / source.name).write_bytes(source.read_bytes())
    params = _stage_params(base_url)
    params["expand_seeds"]["keywords_per_subdimension"] = 2  # 30 requests
    # `-S` makes DVC rewrite params.yaml in YAML 1.2, where an unquoted `no` is no longer the
    # string PyYAML (1.1) reads back: a value that survives the round trip
    params["train"]["common"]["save_strategy"] = "steps"
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    stage = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]["expand_seeds"]
    stage["deps"] = ["stages/expand_seeds.py", "data/taxonomy"]
    (work / "dvc.yaml").write_text(yaml.safe_dump({"stages": {"expand_seeds": stage}}))
    (work / ".gitignore").write_text("runtime/\n")
    dvc = [sys.executable, "-m", "dvc"]
    run(["git", "init", "-q"], work, env)
    run([*dvc, "init", "-q"], work, env)
    run(["git", "add", "-A"], work, env)
    run(["git", "commit", "-qm", "one LLM stage"], work, env)


@pytest.mark.slow
def test_a_dvc_queue_with_two_workers_pays_once_and_matches_serial_runs(tmp_path):
    """Two experiments that both rerun the LLM stage (they differ in a param that does not change
    its requests), run by two queue workers at once on one cache."""
    variants = {"sets-3": 3, "sets-5": 5}
    dvc = [sys.executable, "-m", "dvc"]
    with FakeOpenAIServer() as server:
        server.delay_s = 0.4  # 30 requests, 4 in flight: ~3 s of LLM work per experiment
        work = tmp_path / "repo"
        env = isolated_env(
            tmp_path,
            JANUS_CACHE_DIR=str(tmp_path / "shared-cache"),
            PYTHONPATH=str(REPO / "src"),
        )
        _dvc_project(work, server.base_url, env)
        for name, sets in variants.items():
            queue = [
                "exp",
                "run",
                "--queue",
                "-n",
                name,
                "-S",
                f"expand_seeds.num_seed_sets={sets}",
            ]
            run([*dvc, *queue], work, env)
        run([*dvc, "exp", "run", "--run-all", "-j", "2"], work, env, timeout=300)
        status = run([*dvc, "queue", "status"], work, env).stdout
        if status.count("Success") != 2:
            logs = [run([*dvc, "queue", "logs", name], work, env, check=False) for name in variants]
            pytest.fail(status + "".join(log.stdout[-3000:] for log in logs))

        prompts = _distinct_prompts(server)
        assert len(prompts) == 30
        assert server.http_requests == server.answers == len(prompts)  # each paid once
        assert server.peak_in_flight > 4  # the two experiments asked at the same time
        queued = {}
        for name in variants:
            run([*dvc, "exp", "apply", name], work, env)
            queued[name] = (work / STAGE_OUT).read_bytes()

    # serial: each variant alone, on its own cache and a fresh server
    for name, sets in variants.items():
        with FakeOpenAIServer() as server:
            alone = _stage_dir(tmp_path / f"serial-{name}", server.base_url)
            params = yaml.safe_load((alone / "params.yaml").read_text())
            params["expand_seeds"]["keywords_per_subdimension"] = 2
            params["expand_seeds"]["num_seed_sets"] = sets
            (alone / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
            serial_env = {**_stage_env(tmp_path), "JANUS_CACHE_DIR": str(tmp_path / name)}
            _finish(_start_stage(alone, serial_env))
            assert (alone / STAGE_OUT).read_bytes() == queued[name]


# -- one budget across processes ---------------------------------------------------------------------

BUDGET_CHILD = """
import json, sys
from janus.config.llm import LLMSection
from janus.llm import ChatRequest, LLMClient
from janus.llm.budget import BudgetExceeded
section = LLMSection.model_validate(json.loads(sys.argv[1]))
prefix = sys.argv[2]
requests = [ChatRequest(messages=[("user", f"{prefix}-q{i}")], max_tokens=4) for i in range(10)]
try:
    with LLMClient(section.teacher, stage=f"stage-{prefix}") as client:
        client.generate(requests)
except BudgetExceeded as stop:
    print(stop, file=sys.stderr)
    sys.exit(3)
"""


@pytest.mark.parametrize("processes, cap_key", [(2, "max_usd"), (4, "run_max_usd")])
def test_a_cap_holds_across_processes(tmp_path, processes, cap_key):
    """Each process asks 10 different prompts ($2 each, worst case $4) under one $20 cap: alone,
    each would pay $18; together they pay at most $20, and stop only when < $4 is left."""
    cap = 20.0
    with FakeOpenAIServer() as server:
        server.delay_s = 0.2
        teacher = tiny_section(
            "llm.teacher",
            **_teacher(server.base_url, max_in_flight=2),
            prices={"fake-teacher": DOLLAR_PER_OUTPUT_TOKEN},
        ).model_dump()
        if cap_key == "max_usd":
            teacher["max_usd"] = cap
        section = {
            "teacher": teacher,
            "judge": teacher,
            "open_judge": teacher,
            "run_max_usd": cap if cap_key == "run_max_usd" else None,
        }
        env = {**_stage_env(tmp_path), "JANUS_RUN_ID": "shared-run"}
        children = [
            subprocess.Popen(
                [sys.executable, "-c", BUDGET_CHILD, json.dumps(section), f"p{i}"],
                cwd=tmp_path,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )  # fmt: skip
            for i in range(processes)
        ]
        errors = [child.communicate(timeout=120)[1] for child in children]
        answers = server.answers
    codes = [child.returncode for child in children]
    assert set(codes) <= {0, 3} and 3 in codes, [error[-2000:] for error in errors]
    ledger = SpendLedger(tmp_path / "shared-cache")
    spent = ledger.total("shared-run")
    ledger.close()
    assert spent == pytest.approx(2.0 * answers)
    assert cap - 4.0 < spent <= cap  # never over the cap; stopped only when a request can't fit


RESERVING_CHILD = """
import sys, time
from pathlib import Path
from janus.llm.ledger import SpendLedger
ledger = SpendLedger(Path(sys.argv[1]))
count, _, _, _ = ledger.reserve("shared-run", "teacher", "s", {"run": 10.0}, [8.0])
print("reserved" if count == 1 else "refused", flush=True)
time.sleep(120)
"""


def test_a_dead_process_leaves_no_reservation_behind(tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c", RESERVING_CHILD, str(tmp_path / "shared-cache")],
        env=_stage_env(tmp_path), stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert holder.stdout.readline().strip() == "reserved"
    ledger = SpendLedger(tmp_path / "shared-cache")
    count, _, left, others = ledger.reserve("shared-run", "teacher", "s", {"run": 10.0}, [8.0])
    assert count == 0 and others == pytest.approx(8.0)  # held by a live process: wait
    holder.kill()
    holder.wait(timeout=30)
    count, reservation, left, _ = ledger.reserve("shared-run", "teacher", "s", {"run": 10.0}, [8.0])
    assert count == 1 and left == {"run": pytest.approx(10.0)}  # the dead one's $8 is free
    ledger.release(reservation)
    ledger.close()


def test_the_worst_case_counts_the_schema_billed_as_prompt_tokens(tmp_path):
    """Prompt tokens priced, a long schema sent as response_format and billed by the server: the
    budget reserves for it, so spend stays under the cap."""
    schema = {
        **SCHEMA,
        "description": " ".join(f"field{i} explained at length" for i in range(60)),
    }
    dollar_per_prompt_token = {**DOLLAR_PER_OUTPUT_TOKEN, "input_per_mtok": 1_000_000.0}
    dollar_per_prompt_token["output_per_mtok"] = 0.0
    with FakeOpenAIServer() as server:
        server.bill_schema = True
        config = tiny_section(
            "llm.teacher",
            **_teacher(server.base_url, max_usd=500.0),
            prices={"fake-teacher": dollar_per_prompt_token},
        )
        requests = [
            ChatRequest(messages=[("user", f"q{i}")], schema=schema, max_tokens=8)
            for i in range(20)
        ]
        with pytest.raises(BudgetExceeded), LLMClient(config, stage="u") as client:
            client.generate(requests)
        billed = [client.stats.extra["sent_prompt_tokens"], server.answers]
    ledger = SpendLedger(tmp_path / "shared-cache")
    spent = ledger.total("test-run")
    ledger.close()
    assert billed[0] / billed[1] > 100  # the schema, not the 2-word prompt, is what costs
    assert spent <= 500.0


# -- creating a new cache from several processes at once ------------------------------------------------


def _open_everything(directory: str, start_at: float) -> None:
    time.sleep(max(0.0, start_at - time.time()))
    cache = ResponseCache(Path(directory))
    ledger = SpendLedger(Path(directory))
    state = BatchState(Path(directory))
    cache.put("k", Generation("x", 1, 1))
    for store in (cache, ledger, state):
        store.close()


def test_a_new_cache_opened_by_several_processes_at_once_never_crashes(tmp_path):
    context = multiprocessing.get_context("fork")
    rng = random.Random(18)
    for round_ in range(10):
        directory = str(tmp_path / f"cache-{round_}")
        start_at = time.time() + 0.05
        children = [
            context.Process(
                target=_open_everything, args=(directory, start_at + rng.uniform(0, 0.01))
            )
            for _ in range(4)
        ]
        for child in children:
            child.start()
        for child in children:
            child.join(timeout=60)
        assert [child.exitcode for child in children] == [0] * 4, f"round {round_}"


# What the race comes down to: another process is in a write transaction on the new file (creating
# it, in rollback mode) when this one switches it to WAL, which SQLite refuses at once, without
# waiting out its busy timeout ("database is locked").
CREATING_CHILD = """
import sqlite3, sys, time
connection = sqlite3.connect(sys.argv[1], isolation_level=None)
connection.execute("BEGIN")
connection.execute("CREATE TABLE IF NOT EXISTS creating (x)")
print("creating", flush=True)
time.sleep(0.4)
connection.execute("COMMIT")
"""


@pytest.mark.parametrize(
    "store, file",
    [
        (ResponseCache, "responses.sqlite"),
        (SpendLedger, "spend.sqlite"),
        (BatchState, "batches.sqlite"),
    ],
)
def test_opening_waits_while_another_process_is_creating_the_file(tmp_path, store, file):
    creator = subprocess.Popen(
        [sys.executable, "-c", CREATING_CHILD, str(tmp_path / file)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert creator.stdout.readline().strip() == "creating"
    started = time.monotonic()
    opened = store(tmp_path)  # waits for the creator instead of raising
    assert time.monotonic() - started > 0.1
    opened.close()
    assert creator.wait(timeout=30) == 0


# -- exact reruns --------------------------------------------------------------------------------------


def _client_config(server: FakeOpenAIServer, **overrides):
    return tiny_section("llm.teacher", **_teacher(server.base_url, max_retries=0, **overrides))


def test_invalid_then_healthy_a_rerun_asks_the_failed_items_again_and_then_replays(tmp_path):
    requests = [
        ChatRequest(messages=[("user", f"item {i}")], schema=SCHEMA, max_tokens=16)
        for i in range(6)
    ]
    config = _client_config
    with FakeOpenAIServer() as server:
        server.fault_when = lambda text: "invalid" if text in ("item 1", "item 4") else None
        with (
            pytest.raises(StageFailed) as failed,
            LLMClient(config(server), stage="u", max_failed_fraction=0.0) as client,
        ):
            client.generate(requests)
        message = str(failed.value)
        assert "2 of 6 items failed" in message
        assert "takes the 4 items that succeeded from the cache without a request" in message
        assert "asks again for the 2 failed items" in message and "fresh round" in message
        assert server.http_requests == 4 + 2 * 2  # two attempts each for the invalid ones

        server.fault_when = None  # the endpoint is fixed: the rerun does what the message said
        server.reset_counts()
        with LLMClient(config(server), stage="u", max_failed_fraction=0.0) as client:
            fixed = client.generate(requests)
        assert all(result.ok for result in fixed)
        assert server.http_requests == 2  # the failed two only, each a fresh attempt
        assert client.stats.extra["failed_items_asked_again"] == 2
        assert client.stats.requests == 2 and client.stats.cache_hits == 4

        server.reset_counts()
        with LLMClient(config(server), stage="u", max_failed_fraction=0.0) as client:
            again = client.generate(requests)
        assert server.http_requests == 0  # exact: the same rows from the cache
        assert [r.text for r in again] == [r.text for r in fixed]
        assert client.stats.extra["failed_items_asked_again"] == 0


def test_an_answer_that_took_several_attempts_reruns_with_no_request(tmp_path):
    requests = [
        ChatRequest(messages=[("user", "[[invalidx1]] a")], schema=SCHEMA, max_tokens=16),
        ChatRequest(messages=[("user", "[[emptyx1]] b")], max_tokens=16),
    ]
    with FakeOpenAIServer() as server:
        with LLMClient(_client_config(server), stage="u") as client:
            first = client.generate(requests)
            metrics = client.stats.as_metrics()
        assert [r.attempts for r in first] == [2, 2] and all(r.ok for r in first)
        server.reset_counts()
        with LLMClient(_client_config(server), stage="u") as client:
            again = client.generate(requests)
        assert server.http_requests == 0
        assert [r.text for r in again] == [r.text for r in first]
        assert client.stats.as_metrics() == metrics  # invalid and empty counts included


# -- stops leave nothing behind -------------------------------------------------------------------------

STREAM_CHILD = """
import json, sys
from janus.config.llm import LLMConfig
from janus.io import write_jsonl
from janus.llm import ChatRequest, LLMClient
config = LLMConfig.model_validate(json.loads(sys.argv[1]))
with LLMClient(config, stage="unit") as client:
    pairs = client.stream_rows(
        range(40), lambda i: ChatRequest(messages=[("user", f"row {i}")], max_tokens=8)
    )
    write_jsonl("out/rows.jsonl", ({"i": i, "text": r.text} for i, r in pairs))
"""


def _stream_child(tmp_path: Path, server: FakeOpenAIServer) -> subprocess.Popen:
    config = _client_config(server, max_in_flight=2).model_dump()
    return subprocess.Popen(
        [sys.executable, "-c", STREAM_CHILD, json.dumps(config)],
        cwd=tmp_path, env=_stage_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip


def _wait_for_answers(
    tmp_path: Path, child: subprocess.Popen, server: FakeOpenAIServer
) -> list[Path]:
    """Until the child is writing its output and has had a few answers; its temporary files."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        temps = list((tmp_path / "out").glob(".rows.jsonl.*.tmp"))
        if temps and server.answers >= 4:
            return temps
        assert child.poll() is None, child.communicate()[1][-2000:]
        time.sleep(0.05)
    raise AssertionError("the child never started writing")


def test_sigterm_mid_stream_is_handled_like_ctrl_c(tmp_path):
    with FakeOpenAIServer() as server:
        server.delay_s = 0.2  # 40 rows, 2 in flight: ~4 s
        child = _stream_child(tmp_path, server)
        _wait_for_answers(tmp_path, child, server)
        child.send_signal(signal.SIGTERM)
        _, stderr = child.communicate(timeout=60)
    assert child.returncode != 0
    assert "Terminated" in stderr and "SIGTERM" in stderr
    assert list((tmp_path / "out").iterdir()) == []  # no temporary file, no output
    runtime = json.loads((tmp_path / "runtime/unit.llm.json").read_text())
    assert 0 < runtime["requests"] < 40
    # its claims were released: nothing waits for the stopped process
    cache = ResponseCache(tmp_path / "shared-cache")
    assert cache._connection.execute("SELECT COUNT(*) FROM claims").fetchone()[0] == 0
    cache.close()


def test_after_a_kill_9_the_next_run_removes_the_stale_temp_file_and_takes_over(tmp_path):
    with FakeOpenAIServer() as server:
        server.delay_s = 0.2
        child = _stream_child(tmp_path, server)
        [stale] = _wait_for_answers(tmp_path, child, server)
        child.kill()
        child.communicate(timeout=60)
        assert stale.exists()  # what a kill -9 leaves
        server.delay_s = 0.0
        rerun = _stream_child(tmp_path, server)
        _, stderr = rerun.communicate(timeout=120)
    assert rerun.returncode == 0, stderr[-2000:]
    assert not stale.exists()
    assert [path.name for path in (tmp_path / "out").iterdir()] == ["rows.jsonl"]
    assert len((tmp_path / "out/rows.jsonl").read_text().splitlines()) == 40
    # the killed process's claims did not hold the rerun up (it finished); only the answers in
    # flight at the kill (2 at most) were lost and paid again
    assert server.answers <= len(_distinct_prompts(server)) + 2


def test_only_temp_files_of_dead_processes_are_removed(tmp_path):
    target = tmp_path / "out.jsonl"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    dead_pid = int(dead.stdout)
    left_by_dead = tmp_path / f".out.jsonl.{dead_pid}-{int(time.time())}.abc123.tmp"
    left_by_dead.write_text("partial")
    with atomic_open(target) as handle:
        [live] = [p for p in tmp_path.glob(".out.jsonl.*.tmp")]  # ours, being written
        assert remove_stale_temp_files(target) == []  # a live writer's file stays
        handle.write("done\n")
    assert not left_by_dead.exists() and not live.exists()
    assert target.read_text() == "done\n"
