"""The judge_scores stage: metrics/judge.json from the judge stage's outputs, without an LLM call.

Scores with their bootstrap CIs, pairwise win rates, judge health and steerability are computed
here from the judgement rows; what only the grading run knew (who graded, counts, parse tallies,
LLM usage) is copied from its record (`analysis.GRADING_RECORD`). So a change to a CI setting
(params judge_scores) reruns this stage alone, never the grading.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from janus.config.judge_scores import JudgeScoresSection
from janus.evaluate.judge.analysis import (
    GRADING_RECORD,
    item_scores_of,
    judge_health,
    pairwise_summary,
    per_item_means,
    steerability,
    steerability_partners,
    summarize_scores,
)
from janus.evaluate.judge.responses import Response, load_responses
from janus.evaluate.rows import read_bench
from janus.io import read_json, read_jsonl


def judge_metrics(
    record: dict[str, Any],
    absolute_rows: list[dict[str, Any]],
    pairwise_rows: list[dict[str, Any]],
    bench: dict[str, dict[str, Any]],
    responses: list[Response],
    ci: JudgeScoresSection,
) -> dict[str, Any]:
    """The judge's metrics: the grading record's entries, with the scores (per judge), win
    rates, health and steerability computed from the judgement rows."""
    resamples, seed = ci.bootstrap_resamples, ci.bootstrap_seed
    (primary,) = [entry["role"] for entry in record["judges"] if entry["primary"]]
    column_of = {item_id: row["benchmark"] for item_id, row in bench.items()}

    def scores_of(role: str) -> dict[str, Any]:
        own = [row for row in absolute_rows if row["judge"] == role]
        return summarize_scores(item_scores_of(own), column_of, record["repeats"], resamples, seed)

    primary_rows = [row for row in absolute_rows if row["judge"] == primary]
    item_means = per_item_means(item_scores_of(primary_rows))
    partners = steerability_partners(bench) if record["steerability"] else {}
    health = judge_health(primary_rows, pairwise_rows, responses, item_means, resamples, seed)
    steered = (
        steerability(primary_rows, item_means, partners, resamples, seed)
        if record["steerability"]
        else {}
    )
    return {
        "format": record["format"],
        "repeats": record["repeats"],
        "include_system_message": record["include_system_message"],
        "judges": record["judges"],
        "scores": scores_of(primary),
        "counts": record["counts"],
        "pairwise": pairwise_summary(pairwise_rows, record["pairs"], resamples, seed),
        "parse": record["parse"],
        "health": health,
        "steerability": steered,
        "bench": record["bench"],
        "llm": record["llm"],
        "second_opinions": {
            role: {
                "format": entry["format"],
                "scores": scores_of(role),
                "parse": entry["parse"],
                "llm": entry["llm"],
            }
            for role, entry in record["second_opinions"].items()
        },
    }


def score_judge_outputs(
    judge_dir: Path | str,
    bench_path: Path | str,
    responses_dir: Path | str,
    ci: JudgeScoresSection,
) -> dict[str, Any]:
    """`judge_metrics` of the judge stage's output directory, read with the bench and the
    responses it graded (their lengths, for the length correlation)."""
    judge_dir = Path(judge_dir)
    record = read_json(judge_dir / GRADING_RECORD)
    bench_rows, _ = read_bench(bench_path)
    bench = {row["id"]: row for row in bench_rows}
    responses, _ = load_responses(Path(responses_dir), record["models"], set(bench))
    return judge_metrics(
        record,
        list(read_jsonl(judge_dir / "absolute.jsonl")),
        list(read_jsonl(judge_dir / "pairwise.jsonl")),
        bench,
        responses,
        ci,
    )
