"""Agreement between judges that graded the same responses (no LLM call: it reads judgements).

The judge stage writes every judge's absolute judgements to outputs/judge/absolute.jsonl, one
row per (judge, model, condition, item, rubric, repeat). Two judges' rows of the same response,
rubric and repeat make a pair of scores; over those pairs, per rubric (labelled with the
preference dimension the bench row's rubric stands for, when the bench says) and overall:
quadratic-weighted Cohen's kappa, Pearson, Spearman, exact and within-one agreement, each with a
bootstrap 95% CI over bench items (`stats.judge_agreement`). Computed by the report stage, so a
CI setting (`report.agreement`) never re-runs the grading.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from itertools import combinations
from typing import Any

from janus.config.report import AgreementParams
from janus.evaluate.stats import judge_agreement

OVERALL = "overall"
MEASURE_NAMES = {
    "kappa_quadratic": "κ (quadratic)",
    "pearson": "Pearson r",
    "spearman": "Spearman ρ",
    "exact": "Exact",
    "within_one": "Within one",
}


def rubric_labels(bench_rows: Sequence[dict[str, Any]]) -> dict[tuple[str, int], str]:
    """(bench id, rubric index) -> the preference dimension that rubric grades (the bench row's
    `preference_set`, in rubric order), or "rubric <n>" where the row does not say."""
    labels = {}
    for row in bench_rows:
        facets = row.get("preference_set") or []
        for index in range(len(row.get("rubrics") or [])):
            dimension = facets[index].get("dimension") if index < len(facets) else None
            labels[(row["id"], index)] = dimension or f"rubric {index + 1}"
    return labels


def score_pairs(
    rows: Sequence[dict[str, Any]],
    first: str,
    second: str,
    labels: dict[tuple[str, int], str],
) -> dict[str, list[tuple[str, int, int]]]:
    """Per rubric label and overall: (bench item, first judge's score, second's) for every
    response, rubric and repeat both judges scored on its own rubrics."""
    scores: dict[str, dict[tuple, int]] = {first: {}, second: {}}
    for row in rows:
        if row["judge"] in scores and row["kind"] == "own" and row["status"] == "ok":
            key = (row["model"], row["condition"], row["id"], row["rubric_index"], row["repeat"])
            scores[row["judge"]][key] = row["score"]
    pairs: dict[str, list[tuple[str, int, int]]] = defaultdict(list)
    for key in sorted(set(scores[first]) & set(scores[second])):
        item_id, rubric_index = key[2], key[3]
        pair = (item_id, scores[first][key], scores[second][key])
        pairs[labels.get((item_id, rubric_index), f"rubric {rubric_index + 1}")].append(pair)
        pairs[OVERALL].append(pair)
    return pairs


def judge_agreements(
    rows: Sequence[dict[str, Any]],
    judges: Sequence[str],
    bench_rows: Sequence[dict[str, Any]],
    params: AgreementParams,
) -> dict[str, dict[str, Any]]:
    """{"<a>_vs_<b>": {"judges": [a, b], "overall": {...}, "by_rubric": {label: {...}}}} for
    every two judges in `judges` (judge.judges order); {} with one judge."""
    labels = rubric_labels(bench_rows)
    result = {}
    for first, second in combinations(judges, 2):
        pairs = score_pairs(rows, first, second, labels)
        entries = {
            label: judge_agreement(values, params.bootstrap_resamples, params.bootstrap_seed)
            for label, values in sorted(pairs.items())
        }
        empty = judge_agreement([], params.bootstrap_resamples, params.bootstrap_seed)
        result[f"{first}_vs_{second}"] = {
            "judges": [first, second],
            "overall": entries.pop(OVERALL, empty),
            "by_rubric": entries,
        }
    return result


def _cell(entry: dict[str, Any], measure: str) -> str:
    value, ci = entry.get(measure), (entry.get("ci95") or {}).get(measure)
    if value is None:
        return "–"
    return f"{value:.2f}" + (f" [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else "")


def agreement_markdown(agreements: dict[str, dict[str, Any]], labels: dict[str, str]) -> str:
    """One table per pair of judges: a row per rubric and overall, a column per measure
    (value [95% CI]); `labels` names each judge role (its model)."""
    import pandas as pd

    if not agreements:
        return "One judge graded this run (`judge.judges`): no agreement to report."
    parts = []
    for entry in agreements.values():
        first, second = entry["judges"]
        rows = [(label, stats) for label, stats in entry["by_rubric"].items()]
        rows.append((OVERALL, entry["overall"]))
        frame = pd.DataFrame(
            [
                {
                    "Rubric": label,
                    "Pairs": stats["pairs"],
                    "Items": stats["items"],
                    **{name: _cell(stats, m) for m, name in MEASURE_NAMES.items()},
                }
                for label, stats in rows
            ]
        )
        parts.append(
            f"**{first}** ({labels.get(first, first)}) vs **{second}** "
            f"({labels.get(second, second)}):\n\n" + frame.to_markdown(index=False)
        )
    return "\n\n".join(parts)
