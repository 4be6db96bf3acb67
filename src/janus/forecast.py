"""`python -m janus forecast`: the bill of the LLM stages before anything is sent.

No key, no network, nothing written. It walks the registry of LLM steps (`janus.steps.registry`):
for each it builds the requests the stage would send (the step's own `format_input`) from the rows
it would read: the upstream outputs when they exist; where an upstream stage has not run yet,
stand-ins (`janus.steps.upstream`) whose mean size is scaled to the count the params imply, times
the step's fan-out. The bench, the judge and the API baselines (not registered steps yet) are
scaled from stand-in bench rows. Each request's prompt tokens come from
`janus.llm.pricing.token_estimator`; completion tokens are bounded by `max_tokens` and, where the
cache already holds answers of the stage, expected at their mean. Requests the cache already
answers (same key) cost nothing and are counted as covered. `janus.forecast_table` prints it.
"""

from __future__ import annotations

import os
import sqlite3
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from janus.config.llm import LLMConfig
from janus.config.params import Params
from janus.llm.cache import CACHE_FILE, cache_key, resolve_cache_dir
from janus.llm.pricing import Rates, token_estimator
from janus.llm.types import ChatRequest, UsageStats
from janus.steps.registry import Entry, entries
from janus.steps.upstream import STAND_IN_RESPONSE, Upstream, stand_in_seed_sets

# expected completion tokens are taken from the cache once it holds this many of the stage's answers
MIN_OBSERVED = 20
# rows of the published Multifaceted-Bench (kaist-ai/Multifaceted-Bench; C.1's 945 after the
# human filtering), counted where bench.published is set and the bench stage has not run
PUBLISHED_BENCH_ROWS = 921


@dataclass
class StageForecast:
    stage: str
    role: str
    model: str
    requests: int
    covered: int  # answered by the cache already (exact requests only)
    prompt_tokens: int  # of the requests still to send
    completion_tokens_max: int
    completion_tokens_expected: int | None  # None: nothing observed, use the max
    exact: bool  # built from the real upstream outputs (else scaled from stand-ins)
    basis: str
    estimator: str
    costs: dict[str, float] = field(default_factory=dict)

    @property
    def completion_tokens(self) -> int:
        expected = self.completion_tokens_expected
        return self.completion_tokens_max if expected is None else expected


def stage_outputs(dvc_yaml: Path) -> dict[str, str]:
    """The first `outs` path of every stage in dvc.yaml (where paths are named)."""
    stages = (yaml.safe_load(dvc_yaml.read_text()) or {}).get("stages", {})
    found = {}
    for name, stage in stages.items():
        outs = stage.get("outs") or []
        if outs:
            first = outs[0]
            found[name] = first if isinstance(first, str) else next(iter(first))
    return found


@contextmanager
def _no_key_needed(config: LLMConfig):
    """Build a backend for its identity only: a placeholder key, nothing is ever sent."""
    had = config.api_key_env in os.environ
    if not had:
        os.environ[config.api_key_env] = "forecast-sends-nothing"
    try:
        yield
    finally:
        if not had:
            os.environ.pop(config.api_key_env, None)


def backend_identity(config: LLMConfig) -> dict[str, Any]:
    from janus.llm.client import make_backend

    online = config.model_copy(update={"mode": "online"})  # batch answers share these keys
    with _no_key_needed(config):
        backend = make_backend(online, UsageStats())
    try:
        return backend.identity()
    finally:
        backend.close()


class CacheReader:
    """Read-only view of the response cache (absent file: empty)."""

    def __init__(self, directory: Path):
        path = directory / CACHE_FILE
        self._db = (
            sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
            if path.exists()
            else None
        )

    def completion_tokens(self, key: str) -> int | None:
        """The cached answer's completion tokens (None: not cached)."""
        if self._db is None:
            return None
        query = "SELECT completion_tokens FROM responses WHERE key = ?"
        row = self._db.execute(query, (key,)).fetchone()
        return None if row is None else int(row[0])

    def has(self, key: str) -> bool:
        return self.completion_tokens(key) is not None

    def close(self) -> None:
        if self._db is not None:
            self._db.close()


def _request_fields(request: ChatRequest) -> dict[str, Any]:
    from janus.llm.client import request_fields

    return request_fields(request)


def forecast_stage(
    stage: str,
    role: str,
    config: LLMConfig,
    requests: list[ChatRequest],
    count: int,
    exact: bool,
    basis: str,
    cache: CacheReader,
    identity: dict[str, Any] | None,
) -> StageForecast:
    """Arithmetic for one stage: `requests` are all of them (exact) or a sample of `count`."""
    estimator = token_estimator(config)
    covered = 0
    to_send = requests
    # Expected output tokens come only from this model's answers to this stage's own requests
    # (exact stages): the cache holds other models' answers too (the laptop judge's, say), and
    # their lengths say nothing about this one's.
    answered: list[int] = []
    if exact and identity is not None:
        to_send = []
        for request in requests:
            tokens = cache.completion_tokens(cache_key(identity, _request_fields(request), 0))
            if tokens is None:
                to_send.append(request)
            else:
                answered.append(tokens)
        covered = len(answered)
    if exact:
        prompt = sum(estimator.prompt_tokens(r.message_list()) for r in to_send)
        completion_max = sum(r.max_tokens for r in to_send)
        remaining = len(to_send)
    else:
        sample = requests or []
        remaining = count
        mean_prompt = (
            sum(estimator.prompt_tokens(r.message_list()) for r in sample) / len(sample)
            if sample
            else 0.0
        )
        mean_max = sum(r.max_tokens for r in sample) / len(sample) if sample else 0.0
        prompt = round(mean_prompt * count)
        completion_max = round(mean_max * count)
    expected = None
    if len(answered) >= MIN_OBSERVED:
        expected = min(round(sum(answered) / len(answered) * remaining), completion_max)
    result = StageForecast(
        stage=stage,
        role=role,
        model=config.model,
        requests=count,
        covered=covered,
        prompt_tokens=prompt,
        completion_tokens_max=completion_max,
        completion_tokens_expected=expected,
        exact=exact,
        basis=basis,
        estimator=estimator.name,
    )
    rates = Rates.of(config)
    for name, completion in (("max", completion_max), ("expected", result.completion_tokens)):
        online = rates.cost(prompt, completion) if rates else 0.0
        batch = rates.cost(prompt, completion, batch=True) if rates else 0.0
        result.costs[f"online_{name}"] = online
        result.costs[f"batch_{name}"] = batch
    return result


# -- the registered steps ----------------------------------------------------------------------


def forecast_step(
    entry: Entry,
    params: Params,
    upstream: Upstream,
    cache: CacheReader,
    identity: dict[str, Any] | None,
) -> StageForecast:
    """One registered step: its requests for the rows it would read, rows x fan-out of them."""
    plan = entry.plan(params, upstream)
    step = entry.build(params, upstream)
    config = getattr(params.llm, entry.role)
    requests = step.requests(plan.rows)
    count = plan.count * step.fan_out
    return forecast_stage(
        entry.name, entry.role, config, requests, count, plan.exact, plan.basis, cache, identity
    )


def bench_requests(params: Params, upstream: Upstream):
    """(stage, requests sample, count, basis) of the bench: preference sets, system messages,
    reference answers and rubrics for every (instruction, system message), made by the data
    steps under the bench's sections."""
    from janus.data.gold_responses import GoldResponsesStep
    from janus.data.preference_sets import PreferenceSetsStep
    from janus.data.system_messages import SystemMessagesStep
    from janus.evaluate.bench import _generation_sections, build_rubric_request

    config, taxonomy = params.bench, upstream.taxonomy
    preference_config, system_config, gold_config = _generation_sections(config, params)
    sample = upstream.stand_in_bench_rows()
    seed_sets = stand_in_seed_sets(taxonomy, params.expand_seeds)
    requests = [
        *PreferenceSetsStep(seed_sets, taxonomy, preference_config).requests(sample),
        *SystemMessagesStep(upstream.examples, system_config).requests(sample),
        *GoldResponsesStep(gold_config).requests(sample),
        *(build_rubric_request(row, taxonomy.keys, config) for row in sample),
    ]
    rows = bench_size(params)
    basis = f"{rows} rows x 4 requests (preference set, system message, reference, rubrics)"
    return "bench", requests, 4 * rows, basis + "; stand-in texts"


def judge_requests(params: Params, upstream: Upstream):
    """(stage, requests sample, count, basis) of the judge: every model's response in both
    conditions, per rubric and repeat, and the pairwise comparisons in both orders."""
    from janus.evaluate.judge import (
        CONDITIONS,
        AbsoluteTask,
        Response,
        absolute_request,
        resolve_format,
    )

    judge = params.judge
    rows, basis = answered_rows(params, upstream)
    models = len(params.infer.model_names())
    sample_rows = upstream.stand_in_bench_rows()
    dimensions = len(sample_rows[0]["rubrics"])
    absolute = judge.repeats * models * len(CONDITIONS) * rows * dimensions
    # steerability: system-condition responses graded against another system message's rubrics
    absolute += judge.steerability_repeats * models * rows * dimensions
    pairwise = len(judge.pairwise) * rows * judge.repeats * 2
    fmt = resolve_format(judge, params.llm.judge)
    requests = [
        absolute_request(
            AbsoluteTask(
                Response("stand-in", "system", row["id"], STAND_IN_RESPONSE), row["id"], 0, 0, "own"
            ),
            row["prompt"],
            row,
            judge,
            fmt,
        )
        for row in sample_rows
    ]
    basis += (
        f"; {models} model(s) x {len(CONDITIONS)} conditions x {dimensions} rubrics x"
        f" {judge.repeats} repeats + {len(judge.pairwise)} pair(s) x 2 orders; stand-in answers"
    )
    return "judge", requests, absolute + pairwise, basis


def bench_size(params: Params) -> int:
    """The bench's rows as its params imply them."""
    config = params.bench
    if config.published is not None:
        return PUBLISHED_BENCH_ROWS
    sources = sum(source.enabled for source in config.sources.values())
    return sources * config.instructions_per_source * config.system_messages_per_instruction


def answered_rows(params: Params, upstream: Upstream) -> tuple[int, str]:
    """The bench rows each model answers (the bench's output, else its params), and whence."""
    path = upstream.existing("bench")
    if path is not None:
        from janus.evaluate.rows import read_bench

        rows, basis = len(read_bench(path)[0]), "bench output"
    elif params.bench.published is not None:
        rows = bench_size(params)
        basis = f"bench not run: the published bench's {PUBLISHED_BENCH_ROWS} rows"
    else:
        rows, basis = bench_size(params), "bench not run: its params"
    if params.infer.max_items is not None:
        rows = min(rows, params.infer.max_items)
    return rows, basis


def _dotted(raw: dict[str, Any], key: str) -> Any:
    node: Any = raw
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def outputs_made_with(
    outputs: dict[str, str], lock_path: Path, raw_params: dict[str, Any]
) -> dict[str, str]:
    """Only the outputs that dvc.lock says were made with these params: a workspace built by
    another profile (the laptop default, say) must not stand in for a paper-scale stage."""
    if not lock_path.exists():
        return {}
    stages = (yaml.safe_load(lock_path.read_text()) or {}).get("stages", {})
    kept = {}
    for stage, path in outputs.items():
        recorded = (stages.get(stage) or {}).get("params", {}).get("params.yaml")
        if recorded is not None and all(
            _dotted(raw_params, key) == value for key, value in recorded.items()
        ):
            kept[stage] = path
    return kept


def forecast(
    params: Params,
    root: Path = Path("."),
    dvc_yaml: Path | None = None,
    raw_params: dict[str, Any] | None = None,
) -> list[StageForecast]:
    """`raw_params` (the params file as read): upstream outputs count only where dvc.lock
    recorded the same values for their stage; None trusts every output in the workspace."""
    outputs = stage_outputs(dvc_yaml or root / "dvc.yaml")
    if raw_params is not None:
        outputs = outputs_made_with(outputs, root / "dvc.lock", raw_params)
    upstream = Upstream(params, root, outputs)
    results = []
    for role in ("teacher", "judge"):
        config = getattr(params.llm, role)
        cache = CacheReader(resolve_cache_dir(config.cache_dir))
        try:
            identity = backend_identity(config)
        except Exception:  # noqa: BLE001 - e.g. the local checkpoint is not built yet
            identity = None
        try:
            if role == "teacher":
                if params.generate.enabled:
                    results += [
                        forecast_step(entry, params, upstream, cache, identity)
                        for entry in entries("generate")
                    ]
                else:
                    results.append(_nothing("expand_seeds .. gold_responses", role, config,
                                            "generate.enabled: false (the published collection)"))
                if params.bench.published is not None:
                    results.append(_nothing("bench", role, config,
                                            f"published bench {params.bench.published}: no teacher call"))
                    continue
                stage, requests, count, basis = bench_requests(params, upstream)
            else:
                stage, requests, count, basis = judge_requests(params, upstream)
            # bench and judge are scaled from stand-ins: their inputs are model outputs
            results.append(
                forecast_stage(stage, role, config, requests, count, False, basis, cache, None)
            )
        finally:
            cache.close()
    results.extend(endpoint_forecasts(params, upstream))
    return results


def _nothing(stage: str, role: str, config: LLMConfig, basis: str) -> StageForecast:
    """A stage these params keep from calling the model: shown, at no cost."""
    costs = {f"{mode}_{bound}": 0.0 for mode in ("online", "batch") for bound in ("max", "expected")}
    return StageForecast(stage, role, config.model, 0, 0, 0, 0, None, True, basis, "-", costs)


def endpoint_forecasts(params: Params, upstream: Upstream) -> list[StageForecast]:
    """The API baseline rows (infer.endpoints) answering the bench in both conditions (stage
    infer_api@<name>) and the helpfulness prompts (helpfulness@<benchmark>), always online."""
    from janus.evaluate.judge import CONDITIONS

    rows, _ = answered_rows(params, upstream)
    sample = upstream.stand_in_bench_rows()
    results = []
    for name, config in params.infer.endpoints.items():
        requests = [
            ChatRequest(
                messages=[{"role": "system", "content": row["system"]},
                          {"role": "user", "content": row["prompt"]}],
                max_tokens=params.infer.sampling.max_tokens,
            )
            for row in sample
        ]
        count = rows * len(CONDITIONS)
        basis = f"{rows} bench rows x {len(CONDITIONS)} conditions; stand-in prompts"
        if name in params.helpfulness.models:
            prompts = sum(b.max_prompts or 0 for b in params.helpfulness.benchmarks.values())
            count += prompts  # MT-Bench's second turns are not counted
            basis += f"; + {prompts} helpfulness prompts"
        online = config.model_copy(update={"mode": "online"})
        item = forecast_stage(f"infer_api@{name}", "baseline", online, requests, count, False,
                              basis + "; online (no batch mode)", CacheReader(Path("/nonexistent")), None)
        for bound in ("max", "expected"):  # sent online: the batch column pays the online price
            item.costs[f"batch_{bound}"] = item.costs[f"online_{bound}"]
        results.append(item)
    return results
