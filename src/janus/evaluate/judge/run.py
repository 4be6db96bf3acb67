"""The judge stage: the primary judge grades (absolute, steerability, pairwise), every other judge
gives a second opinion on its own rubrics. It writes the judgement rows and the grading record
(`analysis.GRADING_RECORD`: who graded, counts, parse tallies, LLM usage); the judge_scores stage
(`janus.evaluate.judge.scores`) makes metrics/judge.json from them, CIs included, without an LLM."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from janus.config.infer import InferSection
from janus.config.judge import JudgeSection
from janus.config.llm import LLMSection
from janus.evaluate.judge.analysis import (
    item_score_rows,
    item_scores_of,
    parse_summary,
    steerability_partners,
)
from janus.evaluate.judge.grading import grade_absolute, judge_label, resolve_format
from janus.evaluate.judge.pairwise import compare_pairs
from janus.evaluate.judge.responses import CONDITIONS, Response, load_responses
from janus.evaluate.rows import read_bench
from janus.logging_utils import get_logger

log = get_logger(__name__)


@dataclass
class JudgeOutputs:
    absolute: list[dict[str, Any]]
    item_scores: list[dict[str, Any]]
    pairwise: list[dict[str, Any]]
    record: dict[str, Any]  # what the scores need from this run (analysis.GRADING_RECORD)


class JudgeParams(Protocol):
    """The sections the judge stage reads: `load_sections(...)` of them, or the whole Params."""

    llm: LLMSection
    infer: InferSection
    judge: JudgeSection


def second_opinion(
    params: JudgeParams,
    role: str,
    position: int,
    responses: list[Response],
    bench: dict[str, dict[str, Any]],
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """A judge other than the primary: its absolute judgements of every response on its own
    rubrics, and its record (format, parse record, LLM usage; judge_scores adds its scores)."""
    from janus.llm import LLMClient

    judge, config = params.judge, getattr(params.llm, role)
    fmt = resolve_format(judge, config)
    log.info("%s (%s format, %s): second opinion", role, fmt, judge_label(config))
    with LLMClient(config, stage=f"judge.{role}") as client:
        rows = grade_absolute(client, responses, bench, judge, fmt, {}, role, position)
    record = {"format": fmt, "parse": parse_summary(rows, []), "llm": client.stats.as_metrics()}
    return rows, record


def run_judge(
    params: JudgeParams, bench_path: Path | str, responses_dir: Path | str
) -> JudgeOutputs:
    from janus.llm import LLMClient

    judge = params.judge
    primary, *others = judge.judges
    primary_config = getattr(params.llm, primary)
    fmt = resolve_format(judge, primary_config)
    bench_rows, bench_dropped = read_bench(bench_path)
    if not bench_rows:
        raise ValueError(f"{bench_path}: no usable bench row ({dict(bench_dropped)})")
    bench = {row["id"]: row for row in bench_rows}
    models = params.infer.model_names()
    for model, opponent in judge.pairwise:
        for name in (model, opponent):
            if name not in models:
                raise ValueError(
                    f"judge.pairwise names {name!r}, which infer does not produce ({models})"
                )
    responses, skipped = load_responses(Path(responses_dir), models, set(bench))
    partners = steerability_partners(bench) if judge.steerability_repeats else {}
    log.info(
        "%s (%s format, %s): %d responses of %d models",
        primary,
        fmt,
        judge_label(primary_config),
        len(responses),
        len(models),
    )

    with LLMClient(primary_config, stage="judge") as client:
        absolute_rows = grade_absolute(client, responses, bench, judge, fmt, partners, primary, 0)
        pairwise_rows = compare_pairs(client, responses, bench, judge, fmt, primary)
    parse = parse_summary(absolute_rows, pairwise_rows)
    second_rows, second_records = [], {}
    for position, role in enumerate(others, start=1):
        rows, second_records[role] = second_opinion(params, role, position, responses, bench)
        second_rows += rows

    item_scores = item_scores_of(absolute_rows)
    counts: dict[str, dict[str, dict[str, Any]]] = {}
    for model in models:
        for condition in CONDITIONS:
            mine = [r for r in responses if r.model == model and r.condition == condition]
            if not mine:
                continue
            judged = [
                r
                for r in absolute_rows
                if r["model"] == model and r["condition"] == condition and r["kind"] == "own"
            ]
            scored = {(k[2], k[3]) for k in item_scores if k[0] == model and k[1] == condition}
            counts.setdefault(model, {})[condition] = {
                "responses": len(mine),
                "empty_responses": sum(r.empty for r in mine),
                "judgements": len(judged),
                "unparsed_judgements": sum(r["status"] != "ok" for r in judged),
                # non-empty responses x repeats without a single parsed rubric score
                "unscored_items": sum(not r.empty for r in mine) * judge.repeats - len(scored),
            }
        counts.setdefault(model, {})["skipped_rows"] = sum(skipped[model].values())
    item_rows = item_score_rows(primary, item_scores, bench)
    for role in others:
        own = [row for row in second_rows if row["judge"] == role]
        item_rows += item_score_rows(role, item_scores_of(own), bench)
    record = {
        "format": fmt,
        "repeats": judge.repeats,
        "include_system_message": judge.include_system_message,
        # who graded: the primary's numbers are the metrics' own; `second_opinions` the others'
        "judges": [
            {
                "role": role,
                "primary": role == primary,
                "backend": getattr(params.llm, role).backend,
                "model": getattr(params.llm, role).model,
                "model_revision": getattr(params.llm, role).model_revision,
                "label": judge_label(getattr(params.llm, role)),
            }
            for role in judge.judges
        ],
        "counts": counts,
        "parse": parse,
        "bench": {"rows": len(bench_rows), "dropped": dict(sorted(bench_dropped.items()))},
        "llm": client.stats.as_metrics(),
        "second_opinions": second_records,
        # what judge_scores reads the rows with: the graded models, the compared pairs in
        # order, and whether responses were graded against other system messages' rubrics
        "models": models,
        "pairs": [list(pair) for pair in judge.pairwise],
        "steerability": bool(judge.steerability_repeats),
    }
    return JudgeOutputs(absolute_rows + second_rows, item_rows, pairwise_rows, record)
