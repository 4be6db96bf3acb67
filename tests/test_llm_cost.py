"""Forecast arithmetic, the budget stop and the spend ledger, and `python -m janus forecast`."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from sections import tiny_section
from servers.fake_openai import FakeOpenAIServer

from janus.config.llm import LLMConfig, LLMSection
from janus.config.params import parse_params
from janus.forecast import CacheReader, _stage, backend_identity, forecast, forecast_step
from janus.llm import ChatRequest, LLMClient
from janus.llm.budget import BudgetExceeded, CostGuard
from janus.llm.cache import ResponseCache, cache_key, resolve_cache_dir
from janus.llm.ledger import SpendLedger
from janus.llm.pricing import Rates, TokenEstimator, token_estimator
from janus.llm.types import Generation, UsageStats, request_fields
from janus.steps.base import Step
from janus.steps.registry import Entry, RowPlan

REPO = Path(__file__).parents[1]
# $1 per completion token, prompts free: worst case of a max_tokens=4 request is $4, an answer of
# the fake server ("echo: <prompt>") costs $2
DOLLAR_PER_OUTPUT_TOKEN = {
    "input_per_mtok": 0.0,
    "output_per_mtok": 1_000_000.0,
    "cached_input_per_mtok": 0.0,
    "batch_discount": 0.5,
}


@pytest.fixture(autouse=True)
def _isolated_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # runtime/cost/*.json
    monkeypatch.setenv("JANUS_RUN_ID", "run-a")


@pytest.fixture()
def server():
    fake = FakeOpenAIServer().start()
    yield fake
    fake.stop()


def _config(server, **overrides) -> LLMConfig:
    settings = {
        "backend": "openai",
        "model": "fake-model",
        "base_url": server.base_url,
        "max_in_flight": 2,
        "cache_dir": "~/unused",
        "prices": {"fake-model": DOLLAR_PER_OUTPUT_TOKEN},
    }
    return tiny_section("llm.teacher", **{**settings, **overrides})


def _requests(n: int) -> list[ChatRequest]:
    return [ChatRequest(messages=[("user", f"q{i}")], max_tokens=4) for i in range(n)]


# -- arithmetic ------------------------------------------------------------------------------


def test_rates_cached_and_batch():
    rates = Rates(
        input_per_mtok=10, cached_input_per_mtok=5, output_per_mtok=30, batch_discount=0.5
    )
    # 800 fresh prompt tokens at $10/M, 200 cached at $5/M, 500 output at $30/M
    assert rates.cost(1000, 500, cached_tokens=200) == pytest.approx(0.024)
    assert rates.cost(1000, 500, cached_tokens=200, batch=True) == pytest.approx(0.012)
    assert rates.cost(1000, 500) == pytest.approx(0.025)
    assert rates.cost(10, 0, cached_tokens=50) == pytest.approx(10 * 5 / 1e6)  # capped at prompt


def test_fallback_estimator_counts_openai_overheads():
    estimator = TokenEstimator()
    messages = [{"role": "system", "content": "x" * 10}, {"role": "user", "content": "y" * 4}]
    # 3 per reply + (3 + ceil(10/4)) + (3 + 1)
    assert estimator.prompt_tokens(messages) == 3 + 6 + 4


def test_local_models_are_counted_with_their_own_chat_template(tiny_model_dir):
    from transformers import AutoTokenizer

    config = tiny_section("llm.teacher", backend="local", model=str(tiny_model_dir))
    estimator = token_estimator(config)
    assert estimator.name == f"tokenizer:{tiny_model_dir}"
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi!"}]
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert estimator.prompt_tokens(messages) == len(ids) > TokenEstimator().prompt_tokens(messages)


TINY_BPE_URL = "https://openaipublic.example/encodings/janus_tiny.tiktoken"


@pytest.fixture()
def tiny_tiktoken(tmp_path, monkeypatch):
    """A byte-level tiktoken encoding (one token per byte) known to tiktoken's registry as the
    encoding of model `tiny-gpt`, loaded by tiktoken's own code from a BPE file at a URL; the
    file is put in $TIKTOKEN_CACHE_DIR by `put_in_cache`. Every download attempt is recorded."""
    import base64
    import hashlib

    import requests
    import tiktoken
    import tiktoken.load
    import tiktoken.model
    import tiktoken.registry

    cache = tmp_path / "tiktoken-cache"
    cache.mkdir()
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(cache))
    downloads = []

    def no_network(url, *args, **kwargs):
        downloads.append(url)
        raise requests.ConnectionError(f"no network here: {url}")

    monkeypatch.setattr(requests, "get", no_network)

    def constructor():
        ranks = tiktoken.load.load_tiktoken_bpe(TINY_BPE_URL)
        return {"name": "janus_tiny", "pat_str": r"\S+|\s+", "mergeable_ranks": ranks,
                "special_tokens": {}}  # fmt: skip

    tiktoken.list_encoding_names()  # tiktoken discovers its constructors once; then add ours
    monkeypatch.setitem(tiktoken.registry.ENCODING_CONSTRUCTORS, "janus_tiny", constructor)
    monkeypatch.setattr(tiktoken.registry, "ENCODINGS", {})
    monkeypatch.setitem(tiktoken.model.MODEL_TO_ENCODING, "tiny-gpt", "janus_tiny")
    monkeypatch.setattr("janus.llm.pricing._ESTIMATORS", {})

    def put_in_cache():
        lines = [f"{base64.b64encode(bytes([i])).decode()} {i}" for i in range(256)]
        name = hashlib.sha1(TINY_BPE_URL.encode()).hexdigest()  # tiktoken's cache key
        (cache / name).write_text("\n".join(lines) + "\n")

    return put_in_cache, downloads


def test_openai_models_use_tiktoken_from_its_cache_never_the_network(tiny_tiktoken, server):
    import tiktoken.load

    from janus.llm import pricing

    put_in_cache, downloads = tiny_tiktoken
    fetch = tiktoken.load.read_file
    config = _config(server, model="tiny-gpt")
    # not on disk: the documented fallback, and no download was tried
    assert token_estimator(config).name == "chars/4"
    assert downloads == [] and tiktoken.load.read_file is fetch  # tiktoken left as it was
    # on disk: tiktoken's encoding, exact counts (one token per byte here)
    put_in_cache()
    pricing._ESTIMATORS.clear()  # memoised per (backend, model) for the life of a process
    estimator = token_estimator(config)
    assert estimator.name == "tiktoken:janus_tiny"
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "héllo"}]
    # 3 per reply + (3 + 9 bytes) + (3 + 6 bytes: é is two)
    assert estimator.prompt_tokens(messages) == 3 + 12 + 9
    assert downloads == []


def test_client_metrics_hold_forecast_and_actual(server):
    requests = _requests(3)
    with LLMClient(_config(server), stage="unit") as client:
        client.generate(requests)
        metrics = client.stats.as_metrics()
    estimator = token_estimator(_config(server))
    expected_prompt = sum(estimator.prompt_tokens(r.message_list()) for r in requests)
    assert metrics["forecast"] == {
        "requests": 3,
        "prompt_tokens": expected_prompt,
        "completion_tokens_max": 12,
        "cost_usd_max": 12.0,
        "batch_cost_usd_max": 6.0,
        "estimator": estimator.name,
    }
    assert metrics["completion_tokens"] == 6 and metrics["cost_usd"] == 6.0  # the actual


class _Echo(Step):
    """A step whose rows are its requests."""

    def format_input(self, row):
        return row["request"]


def _entry(rows, count: int, exact: bool) -> Entry:
    return Entry("unit", "teacher", lambda p, u: _Echo(), lambda p, u: RowPlan(rows, count, exact, ""))


def test_forecast_step_scales_samples_and_skips_cached(server):
    config = _config(server)
    identity = backend_identity(config)
    requests = _requests(4)
    cache = ResponseCache(resolve_cache_dir(config.cache_dir))
    cache.put(cache_key(identity, request_fields(requests[0]), 0), Generation("a", 3, 2), "unit")
    cache.close()
    reader = CacheReader(resolve_cache_dir(config.cache_dir))
    rows = [{"request": r} for r in requests]
    exact_part = forecast_step(_entry(rows, 4, True), None, None, config, reader, identity)
    exact = _stage("unit", "teacher", config, [exact_part])
    sampled_part = forecast_step(_entry(rows[:2], 10, False), None, None, config, reader, None)
    sampled = _stage("unit", "teacher", config, [sampled_part])
    reader.close()
    assert exact.covered == 1 and exact.completion_tokens_max == 3 * 4
    assert exact.costs["online_max"] == pytest.approx(12.0)
    assert exact.costs["batch_max"] == pytest.approx(6.0)
    per_request = TokenEstimator().prompt_tokens(requests[0].message_list())
    assert sampled.prompt_tokens == 10 * per_request and sampled.completion_tokens_max == 40


# -- budget ----------------------------------------------------------------------------------


def test_budget_stops_before_the_cap_and_a_higher_cap_continues(server):
    requests = _requests(10)
    with (
        pytest.raises(BudgetExceeded) as stop,
        LLMClient(_config(server, max_usd=10), stage="unit") as client,
    ):
        client.generate(requests)
    message = str(stop.value)
    assert "budget reached (max_usd = $10.00)" in message
    # chunks of worst case $4 under $10: 2 jobs, then 1, then 1; then $2 left < $4
    assert server.answers == 4
    assert "spent $8.00" in message and "$2.00 left" in message and "6 request(s)" in message
    ledger = SpendLedger(resolve_cache_dir("~/unused"))
    assert ledger.total("run-a") == pytest.approx(8.0)
    ledger.close()
    assert len(ResponseCache(resolve_cache_dir("~/unused"))) == 4  # everything paid is kept

    server.reset_counts()
    with LLMClient(_config(server, max_usd=30), stage="unit") as client:
        results = client.generate(requests)
        hits = client.stats.cache_hits
    assert all(r.ok for r in results)
    assert hits == 4 and server.answers == 6  # only the unsent ones
    ledger = SpendLedger(resolve_cache_dir("~/unused"))
    assert ledger.total("run-a") == pytest.approx(20.0)
    ledger.close()


def test_run_cap_counts_every_role_and_a_new_run_starts_at_zero(server, monkeypatch):
    section = LLMSection.model_validate(
        {
            "teacher": _config(server).model_dump(),
            "judge": _config(server).model_dump(),
            "open_judge": _config(server).model_dump(),
            "run_max_usd": 5,
        }
    )
    with LLMClient(section.teacher, stage="teacher_stage") as client:
        client.generate(_requests(1))  # $2 paid, $3 left for the run
    with (
        pytest.raises(BudgetExceeded, match="llm.run_max_usd"),
        LLMClient(section.judge, stage="judge_stage") as client,
    ):
        client.generate([ChatRequest(messages=[("user", "other")], max_tokens=4)])
    assert server.answers == 1
    monkeypatch.setenv("JANUS_RUN_ID", "run-b")
    with LLMClient(section.judge, stage="judge_stage") as client:
        assert client.generate([ChatRequest(messages=[("user", "x")], max_tokens=4)])[0].ok
    rows = SpendLedger(resolve_cache_dir("~/unused")).rows()
    assert {(row["run"], row["role"], row["stage"]) for row in rows} == {
        ("run-a", "teacher", "teacher_stage"),
        ("run-b", "judge", "judge_stage"),
    }


def test_a_free_model_never_stops():
    stats = UsageStats()
    config = tiny_section("llm.teacher", backend="local", max_usd=0)
    guard = CostGuard(config, "unit", stats, Path("unused-never-created"))
    assert guard.ledger is None
    assert list(guard.admit(["job"] * 3)) == [["job"] * 3]  # type: ignore[list-item]


# -- the command -------------------------------------------------------------------------------


def _paper_params() -> dict:
    return yaml.safe_load((REPO / "profiles/paper_regenerate.yaml").read_text())


def test_forecast_paper_profile_from_real_upstream_outputs(tmp_path):
    """With the filter and expand_seeds outputs present, preference_sets is exact."""
    root = tmp_path / "repo"
    shutil.copytree(REPO / "data/taxonomy", root / "data/taxonomy")
    shutil.copy(REPO / "dvc.yaml", root / "dvc.yaml")
    shutil.copy(REPO / "requirements.lock", root / "requirements.lock")
    raw = _paper_params()
    raw["preference_sets"]["max_instructions"] = None
    params = parse_params(raw)
    from janus.data.taxonomy import load_taxonomy
    from janus.io import write_jsonl
    from janus.steps.upstream import stand_in_seed_sets as _stand_in_seed_sets

    taxonomy = load_taxonomy(root / params.expand_seeds.taxonomy_path)
    write_jsonl(
        root / "data/seed_preferences.jsonl", _stand_in_seed_sets(taxonomy, params.expand_seeds)
    )
    instructions = [
        {"instruction_id": f"i{i}", "instruction": f"Write a haiku about {i} cats.",
         "main_source": "x", "original_source": "y"}
        for i in range(5)
    ]  # fmt: skip
    write_jsonl(root / "data/instructions.jsonl", instructions)
    results = {item.stage: item for item in forecast(params, root=root)}
    sets = results["preference_sets"]
    assert sets.exact and sets.requests == 5 * params.preference_sets.sets_per_instruction
    assert sets.covered == 0
    rates = Rates.of(params.llm.teacher)
    assert sets.costs["batch_max"] == pytest.approx(
        rates.cost(sets.prompt_tokens, sets.completion_tokens_max, batch=True)
    )
    assert sets.costs["batch_max"] == pytest.approx(sets.costs["online_max"] / 2)
    assert not results["system_messages"].exact
    assert results["system_messages"].requests == sets.requests


def test_forecast_command_runs_without_a_key(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO / "src"), "HOME": str(tmp_path)}
    for profile in ("params.yaml", "profiles/paper_regenerate.yaml", "profiles/paper.yaml"):
        done = subprocess.run(
            [sys.executable, "-m", "janus", "forecast", "--params", profile, "--json"],
            cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        stages = {item["stage"]: item for item in json.loads(done.stdout)}
        generated = {"expand_seeds", "preference_sets", "system_messages", "gold_responses"}
        paid = sum(item["costs"]["online_max"] for item in stages.values())
        assert (paid == 0) == (profile == "params.yaml")  # the local model is free
        if profile == "profiles/paper.yaml":
            # the published collection and bench: the teacher sends nothing, the judge pays
            teacher = [item for item in stages.values() if item["role"] == "teacher"]
            assert not generated & set(stages) and teacher
            assert all(item["requests"] == 0 and item["costs"]["batch_max"] == 0 for item in teacher)
            assert stages["judge"]["requests"] > 0 and "infer_api@gpt-4-1-2025-04-14" in stages
            continue
        assert set(stages) >= generated
        assert all(item["requests"] > 0 and item["prompt_tokens"] > 0 for item in stages.values()
                   if item["estimator"] != "-")  # "-": a stage its params switch off


def test_forecast_sees_what_a_stage_already_cached(tiny_model_dir):
    """The forecast's requests are the stage's own: after expand_seeds ran, all are covered."""
    from janus.data.seeds import expand_seeds
    from janus.data.taxonomy import load_taxonomy

    raw = yaml.safe_load((REPO / "profiles/tiny.yaml").read_text())
    for role in ("teacher", "judge"):
        raw["llm"][role]["model"] = str(tiny_model_dir)
    params = parse_params(raw)
    before = {item.stage: item for item in forecast(params, root=REPO)}["expand_seeds"]
    assert before.exact and before.covered == 0 and before.requests > 0
    taxonomy = load_taxonomy(REPO / params.expand_seeds.taxonomy_path)
    expand_seeds(taxonomy, params.expand_seeds, params.llm.teacher)
    after = {item.stage: item for item in forecast(params, root=REPO)}
    assert after["expand_seeds"].covered == before.requests
    assert after["expand_seeds"].prompt_tokens == 0  # nothing left to send
    assert after["expand_seeds"].estimator == f"tokenizer:{tiny_model_dir}"
    # judge: models x conditions x rubrics x repeats x rows + pairs x rows x repeats x 2,
    # plus steerability: models x rows x rubrics x its repeats
    judge = params.judge
    rows = (
        sum(s.enabled for s in params.bench.sources.values()) * params.bench.instructions_per_source
    )
    rows *= params.bench.system_messages_per_instruction
    if params.infer.max_items is not None:
        rows = min(rows, params.infer.max_items)
    models = len(params.infer.model_names())
    expected = judge.repeats * rows * (models * 2 * 4 + len(judge.pairwise) * 2)
    expected += judge.steerability_repeats * models * rows * 4  # system responses, other rubrics
    assert after["judge"].requests == expected


def test_batch_mode_budgets_at_the_batch_price(server):
    online = CostGuard(_config(server, max_usd=1), "unit", UsageStats(), Path("ledger"))
    batch = CostGuard(
        _config(server, max_usd=1, mode="batch"), "unit", UsageStats(), Path("ledger")
    )
    from janus.llm.types import Job

    request = _requests(1)[0]
    job = Job(request, request.message_list(), 0, "k", 0, 0)
    assert online.worst_case(job) == pytest.approx(4.0)
    assert batch.worst_case(job) == pytest.approx(2.0)
    online.close(), batch.close()


STOPPED_CHILD = """
import json, sys
from janus.config.llm import LLMConfig
from janus.llm import ChatRequest, LLMClient
config = LLMConfig.model_validate(json.loads(sys.argv[1]))
with LLMClient(config, stage="preference_sets") as client:
    client.generate([ChatRequest(messages=[("user", f"q{i}")], max_tokens=4) for i in range(5)])
"""


def test_a_stopped_stage_exits_non_zero_saying_spent_and_left(server, tmp_path):
    config = _config(server, max_usd=5)
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(REPO / "src"),
        "JANUS_CACHE_DIR": str(tmp_path / "cache"),
        "JANUS_RUN_ID": "child-run",
    }
    done = subprocess.run(
        [sys.executable, "-c", STOPPED_CHILD, json.dumps(config.model_dump())],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode != 0
    assert "BudgetExceeded: preference_sets: budget reached (max_usd = $5.00)" in done.stderr
    # one request (worst case $4) fits under $5; it costs $2, and $3 is too little for the next
    assert "spent $2.00" in done.stderr and "$3.00 left" in done.stderr
    assert "4 request(s) are unsent" in done.stderr
    assert server.answers == 1


def test_forecast_trusts_only_outputs_made_with_the_forecast_params(tmp_path):
    """A workspace built by the laptop profile must not stand in for the paper profile's stages:
    an output counts only where dvc.lock recorded the same params for its stage."""
    from janus.forecast import outputs_made_with

    lock = tmp_path / "dvc.lock"
    lock.write_text(
        yaml.safe_dump(
            {
                "schema": "2.0",
                "stages": {
                    "filter": {"params": {"params.yaml": {"filter": {"total": 5}}}},
                    "expand_seeds": {"params": {"params.yaml": {"expand_seeds.seed": 42}}},
                },
            }
        )
    )
    outputs = {"filter": "data/instructions.jsonl", "expand_seeds": "data/seeds.jsonl"}
    laptop = {"filter": {"total": 5}, "expand_seeds": {"seed": 42}}
    paper = {"filter": {"total": 100000}, "expand_seeds": {"seed": 42}}
    assert outputs_made_with(outputs, lock, laptop) == outputs
    assert outputs_made_with(outputs, lock, paper) == {"expand_seeds": "data/seeds.jsonl"}
    assert outputs_made_with(outputs, tmp_path / "missing.lock", laptop) == {}


def test_every_registered_step_has_a_plan_and_the_forecast_covers_every_llm_stage(tmp_path):
    """The forecast's rows are the stages of dvc.yaml that call an LLM (those whose code deps
    hold the client), each priced from its registered steps' plans."""
    from janus.forecast import BILLED_ON, dvc_stage
    from janus.steps.registry import REGISTRY

    assert all(entry.plan is not None for entry in REGISTRY.values())
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    client = "src/janus/llm/client.py"  # a dep itself, or inside a folder dep
    calling = {
        name
        for name, stage in stages.items()
        if any(
            client == dep or client.startswith(dep.rstrip("/") + "/")
            for dep in stage.get("do", stage).get("deps") or []
        )
    }
    assert {dvc_stage(entry) for entry in REGISTRY.values()} == calling
    # paper_regenerate: the data steps on, the bench published, one API endpoint
    params = parse_params(yaml.safe_load((REPO / "profiles/paper_regenerate.yaml").read_text()))
    rows = forecast(params, root=REPO, dvc_yaml=REPO / "dvc.yaml", raw_params={})
    assert {row.stage.split("@")[0] for row in rows} | set(BILLED_ON) == calling
