"""`python -m janus forecast`: the bill of the LLM stages before anything is sent.

No key, no network, nothing written. For each data stage that calls the teacher it builds the
requests the stage would send (with the stage's own request builders) from the upstream outputs
when they exist; where an upstream stage has not run yet, from stand-ins (seed sets from the
taxonomy's keywords, hand-written system messages, instructions from the filter's output or a
stand-in text) whose mean size is scaled to the count the params imply. Each request's prompt
tokens come from `janus.llm.pricing.token_estimator`; completion tokens are bounded by
`max_tokens` and, where the cache already holds answers of the stage, expected at their mean.
Requests the cache already answers (same key) cost nothing and are counted as covered.
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
from janus.llm.ledger import SpendLedger, current_run_id
from janus.llm.pricing import TIKTOKEN_HINT, Rates, token_estimator
from janus.llm.types import ChatRequest, UsageStats, request_fields

# Used where the filter has not run: an instruction of this text stands in for each of them.
STAND_IN_INSTRUCTION = (
    "Explain, step by step and with a short worked example, how to choose between two "
    "approaches to a common everyday problem, and what trade-offs a beginner should weigh "
    "before deciding."
)
STAND_IN_SAMPLE = 50  # stand-in requests rendered to estimate a mean request size
# what a judged model's answer is taken to be where no responses exist yet (about 300 tokens)
STAND_IN_RESPONSE = " ".join(["A clear, well organised answer that follows the request."] * 25)
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
            tokens = cache.completion_tokens(cache_key(identity, request_fields(request), 0))
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


# -- the data stages ---------------------------------------------------------------------------


def _stand_in_seed_sets(taxonomy, config) -> list[dict[str, Any]]:
    from janus.data.seeds import assemble_seed_sets, select_keywords

    expanded = [
        {**item, "description": f"Prefers {item['preference'].lower()} in the response."}
        for item in select_keywords(taxonomy, config)
    ]
    return assemble_seed_sets(expanded, taxonomy.keys, config.num_seed_sets, config.seed)


def data_stage_requests(params: Params, outputs: dict[str, str], root: Path):
    """Yield (stage, requests, count, exact, basis) for each teacher stage of the data pipeline."""
    from janus.data.common import read_preference_set_rows
    from janus.data.gold_responses import build_gold_requests
    from janus.data.preference_sets import build_preference_set_requests
    from janus.data.seeds import expand_seed_requests, select_keywords
    from janus.data.system_messages import build_system_message_requests, load_examples
    from janus.data.taxonomy import load_taxonomy
    from janus.io import read_jsonl

    def existing(stage: str) -> Path | None:
        path = outputs.get(stage)
        return root / path if path and (root / path).exists() else None

    # expand_seeds: exact from the taxonomy, with the stage's own request builder
    seeds = params.expand_seeds
    taxonomy = load_taxonomy(root / seeds.taxonomy_path)
    requests = expand_seed_requests(select_keywords(taxonomy, seeds), seeds)
    yield "expand_seeds", requests, len(requests), True, "taxonomy keywords"

    # preference_sets: instructions x sets_per_instruction
    config = params.preference_sets
    seed_path = existing("expand_seeds")
    if seed_path:
        seed_sets, _ = read_preference_set_rows(seed_path, taxonomy.keys)
    else:
        seed_sets = _stand_in_seed_sets(taxonomy, seeds)
    instructions_path = existing("filter")
    if instructions_path:
        instructions = read_jsonl(instructions_path)
        if config.max_instructions is not None:
            instructions = instructions[: config.max_instructions]
        exact = seed_path is not None
        basis = "filter output" + ("" if exact else "; seed sets stand in (expand_seeds not run)")
        n_instructions = len(instructions)
        sample = instructions if exact else instructions[:STAND_IN_SAMPLE]
    else:
        n_instructions = params.filter.total
        if config.max_instructions is not None:
            n_instructions = min(n_instructions, config.max_instructions)
        exact = False
        basis = f"filter not run: filter.total={params.filter.total}, stand-in instructions"
        sample = [
            {"instruction_id": f"stand-in-{i}", "instruction": STAND_IN_INSTRUCTION}
            for i in range(STAND_IN_SAMPLE)
        ]
    jobs = build_preference_set_requests(sample, seed_sets, taxonomy, config)
    n_sets = n_instructions * config.sets_per_instruction
    yield "preference_sets", [request for _, request in jobs], n_sets, exact, basis

    # system_messages: one per preference set (all assumed valid)
    messages_config = params.system_messages
    examples = load_examples(root / messages_config.examples_path, taxonomy.keys)
    sets_path = existing("preference_sets")
    if sets_path:
        rows, _ = read_preference_set_rows(sets_path)
        yield (
            "system_messages",
            build_system_message_requests(rows, examples, messages_config),
            len(rows),
            True,
            "preference_sets output",
        )
    else:
        rows = [
            {
                **(sample[i % len(sample)] if sample else {}),
                "instruction_id": f"stand-in-{i}",
                "set_index": i % config.sets_per_instruction,
                "preference_set": seed_sets[i % len(seed_sets)]["preference_set"],
            }
            for i in range(STAND_IN_SAMPLE)
        ]
        yield (
            "system_messages",
            build_system_message_requests(rows, examples, messages_config),
            n_sets,
            False,
            "preference_sets not run: seed sets stand in, one message per set",
        )

    # gold_responses: one per system message
    messages_path = existing("system_messages")
    if messages_path:
        rows = read_jsonl(messages_path)
        yield (
            "gold_responses",
            build_gold_requests(rows, params.gold_responses),
            len(rows),
            True,
            "system_messages output",
        )
    else:
        rows = [
            {
                "instruction_id": f"stand-in-{i}",
                "set_index": 0,
                "instruction": (sample[i % len(sample)] if sample else {}).get(
                    "instruction", STAND_IN_INSTRUCTION
                ),
                "system": examples[i % len(examples)]["system"],
            }
            for i in range(STAND_IN_SAMPLE)
        ]
        yield (
            "gold_responses",
            build_gold_requests(rows, params.gold_responses),
            n_sets,
            False,
            "system_messages not run: hand-written system messages stand in",
        )


def _stand_in_bench_rows(params: Params, root: Path, count: int) -> list[dict[str, Any]]:
    """Bench-shaped rows: hand-written system messages, stand-in instructions and answers."""
    from janus.data.system_messages import load_examples
    from janus.data.taxonomy import load_taxonomy

    taxonomy = load_taxonomy(root / params.expand_seeds.taxonomy_path)
    examples = load_examples(root / params.system_messages.examples_path, taxonomy.keys)
    rubric = {
        "criteria": "Does the response follow the stated preference?",
        "score_descriptions": {
            str(n): "A response that follows the preference to this degree." for n in range(1, 6)
        },
    }
    return [
        {
            "id": f"stand-in-{i}",
            "instruction_id": f"stand-in-{i}",
            "set_index": 0,
            "source": "stand-in",
            "prompt": STAND_IN_INSTRUCTION,
            "instruction": STAND_IN_INSTRUCTION,
            "system": examples[i % len(examples)]["system"],
            "preference_set": examples[i % len(examples)]["preference_set"],
            "reference_answer": STAND_IN_RESPONSE,
            "rubrics": [rubric] * len(taxonomy.keys),
        }
        for i in range(count)
    ]


def _bench_rows(params: Params) -> int:
    config = params.bench
    if config.published is not None:
        return PUBLISHED_BENCH_ROWS
    sources = sum(source.enabled for source in config.sources.values())
    return sources * config.instructions_per_source * config.system_messages_per_instruction


def bench_requests(params: Params, root: Path):
    """(stage, requests sample, count, basis) of the bench: preference sets, system messages,
    reference answers and rubrics for every (instruction, system message)."""
    from janus.data.gold_responses import build_gold_requests
    from janus.data.preference_sets import build_preference_set_requests
    from janus.data.system_messages import build_system_message_requests, load_examples
    from janus.data.taxonomy import load_taxonomy
    from janus.evaluate.bench.generation import _generation_sections, build_rubric_request

    config = params.bench
    taxonomy = load_taxonomy(root / params.expand_seeds.taxonomy_path)
    preference_config, system_config, gold_config = _generation_sections(config, params)
    sample = _stand_in_bench_rows(params, root, STAND_IN_SAMPLE)
    examples = load_examples(root / params.system_messages.examples_path, taxonomy.keys)
    seed_sets = _stand_in_seed_sets(taxonomy, params.expand_seeds)
    preference_jobs = build_preference_set_requests(sample, seed_sets, taxonomy, preference_config)
    requests = [
        *(request for _, request in preference_jobs),
        *build_system_message_requests(sample, examples, system_config),
        *build_gold_requests(sample, gold_config),
        *(build_rubric_request(row, taxonomy.keys, config) for row in sample),
    ]
    basis = (
        f"{_bench_rows(params)} rows x 4 requests (preference set, system message, reference,"
        " rubrics); stand-in texts"
    )
    return "bench", requests, 4 * _bench_rows(params), basis


def judge_requests(params: Params, outputs: dict[str, str], root: Path):
    """(stage, requests sample, count, basis) of the judge: every model's response in both
    conditions, per rubric and repeat, and the pairwise comparisons in both orders."""
    from janus.evaluate.judge.grading import AbsoluteTask, absolute_request, resolve_format
    from janus.evaluate.judge.responses import CONDITIONS, Response
    from janus.evaluate.rows import read_bench

    judge = params.judge
    bench_path = root / outputs["bench"] if "bench" in outputs else None
    if bench_path is not None and bench_path.exists():
        rows, basis = len(read_bench(bench_path)[0]), "bench output"
    elif params.bench.published is not None:
        rows, basis = _bench_rows(params), f"bench not run: the published bench's {PUBLISHED_BENCH_ROWS} rows"
    else:
        rows, basis = _bench_rows(params), "bench not run: its params"
    if params.infer.max_items is not None:
        rows = min(rows, params.infer.max_items)
    models = len(params.infer.model_names())
    sample_rows = _stand_in_bench_rows(params, root, STAND_IN_SAMPLE)
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
                    for stage, requests, count, exact, basis in data_stage_requests(
                        params, outputs, root
                    ):
                        results.append(
                            forecast_stage(
                                stage, role, config, requests, count, exact, basis, cache, identity
                            )
                        )
                else:
                    results.append(_nothing("expand_seeds .. gold_responses", role, config,
                                            "generate.enabled: false (the published collection)"))
                if params.bench.published is not None:
                    results.append(_nothing("bench", role, config,
                                            f"published bench {params.bench.published}: no teacher call"))
                    continue
                stage, requests, count, basis = bench_requests(params, root)
            else:
                stage, requests, count, basis = judge_requests(params, outputs, root)
            # bench and judge are scaled from stand-ins: their inputs are model outputs
            results.append(
                forecast_stage(stage, role, config, requests, count, False, basis, cache, None)
            )
        finally:
            cache.close()
    results.extend(endpoint_forecasts(params, outputs, root))
    return results


def _nothing(stage: str, role: str, config: LLMConfig, basis: str) -> StageForecast:
    """A stage these params keep from calling the model: shown, at no cost."""
    costs = {f"{mode}_{bound}": 0.0 for mode in ("online", "batch") for bound in ("max", "expected")}
    return StageForecast(stage, role, config.model, 0, 0, 0, 0, None, True, basis, "-", costs)


def endpoint_forecasts(params: Params, outputs: dict[str, str], root: Path) -> list[StageForecast]:
    """The API baseline rows (infer.endpoints) answering the bench in both conditions (stage
    infer_api@<name>) and the helpfulness prompts (helpfulness@<benchmark>), always online."""
    from janus.evaluate.judge.responses import CONDITIONS

    bench_path = root / outputs["bench"] if "bench" in outputs else None
    if bench_path is not None and bench_path.exists():
        from janus.evaluate.rows import read_bench

        rows = len(read_bench(bench_path)[0])
    else:
        rows = _bench_rows(params)
    if params.infer.max_items is not None:
        rows = min(rows, params.infer.max_items)
    sample = _stand_in_bench_rows(params, root, STAND_IN_SAMPLE)
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


# -- printing ----------------------------------------------------------------------------------


def _usd(value: float) -> str:
    return f"${value:,.2f}"


def render_table(forecasts: list[StageForecast], params: Params) -> str:
    header = (
        "stage", "role", "model", "requests", "cached", "prompt tok", "output tok",
        "online", "batch", "basis",
    )  # fmt: skip
    rows = []
    for item in forecasts:
        output = (
            f"<={item.completion_tokens_max:,}"
            if item.completion_tokens_expected is None
            else f"~{item.completion_tokens_expected:,}"
        )
        rows.append(
            (
                item.stage,
                item.role,
                item.model,
                f"{item.requests:,}",
                f"{item.covered:,}" if item.exact else "-",
                f"{item.prompt_tokens:,}" + ("" if item.exact else "*"),
                output,
                _usd(item.costs["online_expected"]),
                _usd(item.costs["batch_expected"]),
                item.basis,
            )
        )
    totals = {
        name: sum(item.costs[name] for item in forecasts)
        for name in ("online_expected", "batch_expected", "online_max", "batch_max")
    }
    rows.append(
        (
            "total", "", "", f"{sum(i.requests for i in forecasts):,}",
            f"{sum(i.covered for i in forecasts):,}",
            f"{sum(i.prompt_tokens for i in forecasts):,}",
            f"{sum(i.completion_tokens for i in forecasts):,}",
            _usd(totals["online_expected"]), _usd(totals["batch_expected"]), "",
        )
    )  # fmt: skip
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True))
             for row in [header, *rows]]  # fmt: skip
    lines.insert(1, "  ".join("-" * width for width in widths))
    estimators = sorted({item.estimator for item in forecasts if item.requests})
    lines += [
        "",
        "Costs are for the requests not yet in the cache. Output tokens: <= the max_tokens bound"
        " (no answers of the stage cached yet), ~ the mean of this model's cached answers to the"
        " stage's own requests.",
        f"Worst case (every answer at max_tokens): online {_usd(totals['online_max'])},"
        f" batch {_usd(totals['batch_max'])}.",
        "* scaled from stand-in requests (an upstream stage has not run); counts assume every"
        " earlier answer is valid.",
        f"Prompt tokens estimated with: {', '.join(estimators)}"
        + (
            " (4 characters a token plus 3 per message: for exact counts, "
            + TIKTOKEN_HINT
            + ")"
            if any(name.startswith("chars/") for name in estimators)
            else ""
        ),
    ]
    lines += _budget_lines(params)
    return "\n".join(lines)


def _budget_lines(params: Params) -> list[str]:
    teacher, judge = params.llm.teacher, params.llm.judge
    caps = [
        f"teacher {_cap(teacher.max_usd)}",
        f"judge {_cap(judge.max_usd)}",
        f"run {_cap(params.llm.run_max_usd)}",
    ]
    lines = [f"Budget caps: {', '.join(caps)}; mode: teacher {teacher.mode}, judge {judge.mode}."]
    ledger_dir = resolve_cache_dir(teacher.cache_dir)
    if (ledger_dir / "spend.sqlite").exists():
        ledger = SpendLedger(ledger_dir)
        run = current_run_id()
        lines.append(
            f"Spent so far in run {run[:12]}: {_usd(ledger.total(run))}"
            f" (teacher {_usd(ledger.total(run, 'teacher'))}, judge"
            f" {_usd(ledger.total(run, 'judge'))})."
        )
        ledger.close()
    return lines


def _cap(value: float | None) -> str:
    return "none" if value is None else _usd(value)


def as_json(forecasts: list[StageForecast]) -> list[dict[str, Any]]:
    return [{**item.__dict__, "completion_tokens": item.completion_tokens} for item in forecasts]
