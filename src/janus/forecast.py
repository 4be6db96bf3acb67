"""`python -m janus forecast`: the bill of the LLM stages before anything is sent.

No key, no network, nothing written. It walks the registry of LLM steps (`janus.steps.registry`):
for each it builds the requests the stage would send (the step's own `format_input`) from the rows
it would read: the upstream outputs when they exist; where an upstream stage has not run yet,
stand-ins (`janus.steps.upstream`) whose mean size is scaled to the count the params imply, times
the step's fan-out (the evaluation steps' inputs are model outputs: always stand-ins), summed
per stage of dvc.yaml. Each request's prompt tokens come from
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
from janus.llm.types import UsageStats, request_fields
from janus.steps.registry import REGISTRY, Entry
from janus.steps.upstream import Upstream

# expected completion tokens are taken from the cache once it holds this many of the stage's answers
MIN_OBSERVED = 20


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
    from janus.llm.backends import make_backend

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


@dataclass
class _Part:
    """One registered step's share of a stage: requests, tokens, cached answers."""

    requests: int
    covered: int
    prompt: int
    completion_max: int
    expected: int | None  # None: too few of its answers cached, use the max
    exact: bool
    basis: str


def forecast_step(
    entry: Entry,
    params: Params,
    upstream: Upstream,
    config: LLMConfig,
    cache: CacheReader,
    identity: dict[str, Any] | None,
    **build: Any,
) -> _Part:
    """One registered step: its own requests for the rows it would read (`entry.plan`), all of
    them (exact) or a sample scaled to rows x fan-out; requests the cache answers cost nothing.
    `build`: the factory's keywords (an endpoint's `key`)."""
    plan = entry.plan(params, upstream)  # type: ignore[misc]  # every entry has one
    step = entry.build(params, upstream, **build)
    requests = step.requests(plan.rows)
    count = plan.count * step.fan_out
    estimator = token_estimator(config)
    to_send, answered = requests, []
    # Expected output tokens come only from this model's answers to this step's own requests
    # (exact plans): the cache holds other models' answers too (the laptop judge's, say), and
    # their lengths say nothing about this one's.
    if plan.exact and identity is not None:
        to_send = []
        for request in requests:
            tokens = cache.completion_tokens(cache_key(identity, request_fields(request), 0))
            if tokens is None:
                to_send.append(request)
            else:
                answered.append(tokens)
    if plan.exact:
        prompt = sum(estimator.prompt_tokens(r.message_list()) for r in to_send)
        completion_max = sum(r.max_tokens for r in to_send)
    else:
        sample = len(requests) or 1
        prompt = round(sum(estimator.prompt_tokens(r.message_list()) for r in requests) / sample * count)
        completion_max = round(sum(r.max_tokens for r in requests) / sample * count)
    expected = None
    if len(answered) >= MIN_OBSERVED:
        mean = sum(answered) / len(answered)
        expected = min(round(mean * len(to_send)), completion_max)
    return _Part(count, len(answered), prompt, completion_max, expected, plan.exact, plan.basis)


def _stage(stage: str, role: str, config: LLMConfig, parts: list[_Part]) -> StageForecast:
    """A stage of dvc.yaml: the sum of its steps' parts, priced at `config`'s rates."""
    prompt = sum(part.prompt for part in parts)
    completion_max = sum(part.completion_max for part in parts)
    expected = None
    if any(part.expected is not None for part in parts):  # the others at their max
        expected = sum(p.completion_max if p.expected is None else p.expected for p in parts)
    result = StageForecast(
        stage=stage,
        role=role,
        model=config.model,
        requests=sum(part.requests for part in parts),
        covered=sum(part.covered for part in parts),
        prompt_tokens=prompt,
        completion_tokens_max=completion_max,
        completion_tokens_expected=expected,
        exact=all(part.exact for part in parts),
        basis="; ".join(part.basis for part in parts),
        estimator=token_estimator(config).name,
    )
    rates = Rates.of(config)
    for name, completion in (("max", completion_max), ("expected", result.completion_tokens)):
        online = rates.cost(prompt, completion) if rates else 0.0
        batch = rates.cost(prompt, completion, batch=True) if rates else 0.0
        result.costs[f"online_{name}"] = online
        result.costs[f"batch_{name}"] = batch
    return result


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


# stages of dvc.yaml billed on another's row: an endpoint's helpfulness answers on its
# infer_api@<name> row
BILLED_ON = {"helpfulness": "infer_api"}


def dvc_stage(entry: Entry) -> str:
    """The stage of dvc.yaml a registered step runs in ("judge.pairwise" -> "judge")."""
    return entry.name.split(".")[0]


def stage_of(entry: Entry) -> str:
    """The forecast row a registered step is billed on."""
    return BILLED_ON.get(dvc_stage(entry), dvc_stage(entry))


# the row of a group of stages switched off together
OFF_ROWS = {"generate": "expand_seeds .. gold_responses"}


def _switched_off(params: Params) -> dict[str, str]:
    """Stages (or groups) these params keep from calling the model (shown at $0), and why."""
    off = {}
    if not params.generate.enabled:
        off["generate"] = "generate.enabled: false (the published collection)"
    if params.bench.published is not None:
        off["bench"] = f"published bench {params.bench.published}: no teacher call"
    toxicity = params.toxicity
    if "llm" not in (toxicity.scorer, *toxicity.extra_scorers):
        off["toxicity"] = f"toxicity.scorer: {toxicity.scorer} (no LLM scorer)"
    return off


def forecast(
    params: Params,
    root: Path = Path("."),
    dvc_yaml: Path | None = None,
    raw_params: dict[str, Any] | None = None,
) -> list[StageForecast]:
    """Every registered step priced by `forecast_step`, summed per stage of dvc.yaml.
    `raw_params` (the params file as read): upstream outputs count only where dvc.lock
    recorded the same values for their stage; None trusts every output in the workspace."""
    outputs = stage_outputs(dvc_yaml or root / "dvc.yaml")
    if raw_params is not None:
        outputs = outputs_made_with(outputs, root / "dvc.lock", raw_params)
    upstream = Upstream(params, root, outputs)
    off = _switched_off(params)
    stages: dict[str, list[Entry]] = {}
    for entry in REGISTRY.values():
        stages.setdefault(stage_of(entry), []).append(entry)
    results, shown = [], set()
    for stage, group in stages.items():
        role = group[0].role
        if role == "endpoint":
            results += _endpoint_forecasts(stage, group, params, upstream)
            continue
        config = getattr(params.llm, role)
        why = off.get(group[0].group) or off.get(stage)
        if why:  # one row for a switched-off group
            label = OFF_ROWS.get(group[0].group, stage)
            if label not in shown:
                shown.add(label)
                results.append(_nothing(label, role, config, why))
            continue
        cache = CacheReader(resolve_cache_dir(config.cache_dir))
        try:
            identity = backend_identity(config)
        except Exception:  # noqa: BLE001 - e.g. the local checkpoint is not built yet
            identity = None
        try:
            parts = [forecast_step(e, params, upstream, config, cache, identity) for e in group]
        finally:
            cache.close()
        results.append(_stage(stage, role, config, parts))
    return results


def _nothing(stage: str, role: str, config: LLMConfig, basis: str) -> StageForecast:
    """A stage these params keep from calling the model: shown, at no cost."""
    costs = {f"{mode}_{bound}": 0.0 for mode in ("online", "batch") for bound in ("max", "expected")}
    return StageForecast(stage, role, config.model, 0, 0, 0, 0, None, True, basis, "-", costs)


def _endpoint_forecasts(
    stage: str, group: list[Entry], params: Params, upstream: Upstream
) -> list[StageForecast]:
    """The API baseline rows (infer.endpoints): each endpoint's steps (`key`: the endpoint),
    its helpfulness answers only where helpfulness.models names it; always online."""
    results = []
    nowhere = CacheReader(Path("/nonexistent"))
    for name, config in params.infer.endpoints.items():
        online = config.model_copy(update={"mode": "online"})
        parts = []
        for entry in group:
            if entry.name == "helpfulness.endpoint":
                if name in params.helpfulness.models:
                    parts.append(forecast_step(entry, params, upstream, online, nowhere, None))
            else:
                parts.append(
                    forecast_step(entry, params, upstream, online, nowhere, None, key=name)
                )
        item = _stage(f"{stage}@{name}", "baseline", online, parts)
        item.basis += "; online (no batch mode)"
        for bound in ("max", "expected"):  # sent online: the batch column pays the online price
            item.costs[f"batch_{bound}"] = item.costs[f"online_{bound}"]
        results.append(item)
    return results
