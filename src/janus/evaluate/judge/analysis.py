"""What the judgements say, without an LLM call: item scores, per-column means with their std
over repeats and bootstrap CIs, judge health (repeat agreement, position flips, length
correlation, the Table 8 gap), steerability, pairwise win rates, and the parse record. The CIs
resample bench items (`resamples` draws from `seed`: params judge_scores)."""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import Any

from janus.evaluate.judge.responses import Response
from janus.evaluate.stats import (
    bootstrap_mean_ci,
    bootstrap_rate_ci,
    flip_rate,
    paired_difference,
    pearson,
    repeat_agreement,
)
from janus.evaluate.winrate import OUTCOMES, order_outcomes, pair_key, tally

OVERALL = "overall"
# The judge stage's record of its grading run (who graded, counts, parse tallies, LLM usage), a
# file beside its judgement rows in outputs/judge; the judge_scores stage reads it.
GRADING_RECORD = "grading.json"


def item_scores_of(
    rows: list[dict[str, Any]], kind: str = "own"
) -> dict[tuple[str, str, str, int], float]:
    """(model, condition, id, repeat) -> the mean of that item's parsed rubric scores."""
    rubric_scores: dict[tuple[str, str, str, int], list[int]] = defaultdict(list)
    for row in rows:
        if row["kind"] == kind and row["status"] == "ok":
            key = (row["model"], row["condition"], row["id"], row["repeat"])
            rubric_scores[key].append(row["score"])
    return {key: sum(scores) / len(scores) for key, scores in rubric_scores.items()}


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def per_item_means(
    item_scores: dict[tuple[str, str, str, int], float],
) -> dict[tuple[str, str], dict[str, float]]:
    """(model, condition) -> {id: the item's score averaged over its scored repeats}."""
    collected: dict[tuple[str, str], dict[str, list[float]]] = defaultdict(
        lambda: defaultdict(list)
    )
    for (model, condition, item_id, _), score in item_scores.items():
        collected[(model, condition)][item_id].append(score)
    return {
        key: {item_id: sum(v) / len(v) for item_id, v in items.items()}
        for key, items in collected.items()
    }


def summarize_scores(
    item_scores: dict[tuple[str, str, str, int], float],
    column_of: dict[str, str],
    repeats: int,
    resamples: int = 1000,
    seed: int = 0,
) -> dict[str, dict[str, dict[str, dict[str, Any]]]]:
    """{model: {condition: {column | overall: {items, mean, std, repeats, ci95}}}} from
    per-(model, condition, id, repeat) item scores. `mean` is the mean over repeats of each
    repeat's mean over items (the paper's "average of three evaluations"); `std` their sample
    std (None for one repeat); `ci95` the bootstrap interval of the mean over items of each
    item's repeat-averaged score (bench items resampled)."""
    grouped: dict[tuple[str, str, str], dict[int, list[float]]] = defaultdict(
        lambda: defaultdict(list)
    )
    per_item: dict[tuple[str, str, str], dict[str, list[float]]] = defaultdict(
        lambda: defaultdict(list)
    )
    for (model, condition, item_id, repeat), score in item_scores.items():
        for column in (column_of[item_id], OVERALL):
            grouped[(model, condition, column)][repeat].append(score)
            per_item[(model, condition, column)][item_id].append(score)
    summary: dict[str, dict[str, dict[str, dict[str, Any]]]] = {}
    for (model, condition, column), by_repeat in sorted(grouped.items()):
        means = [_mean(by_repeat[k]) for k in range(repeats) if by_repeat.get(k)]
        item_values = [
            sum(v) / len(v) for _, v in sorted(per_item[(model, condition, column)].items())
        ]
        summary.setdefault(model, {}).setdefault(condition, {})[column] = {
            "items": len(item_values),
            "mean": _mean(means),
            "std": statistics.stdev(means) if len(means) >= 2 else None,
            "repeats": len(means),
            "ci95": bootstrap_mean_ci(item_values, resamples, seed),
        }
    return summary


# ---------------------------------------------------------------------------------------------
# judge health and steerability
# ---------------------------------------------------------------------------------------------


def judge_health(
    absolute_rows: list[dict[str, Any]],
    pairwise_rows: list[dict[str, Any]],
    responses: list[Response],
    item_means: dict[tuple[str, str], dict[str, float]],
    resamples: int,
    seed: int,
) -> dict[str, Any]:
    """How far the judge can be trusted: agreement between repeats, position flips in pairwise
    comparisons, correlation of score with response length, and the Table 8 gap with its CI."""
    repeats: dict[tuple[str, str, str, int], list[int]] = defaultdict(list)
    for row in absolute_rows:
        if row["kind"] == "own" and row["status"] == "ok":
            repeats[(row["model"], row["condition"], row["id"], row["rubric_index"])].append(
                row["score"]
            )
    order_pairs = [
        order_outcomes(row["verdict_model_as_a"], row["verdict_model_as_b"])
        for row in pairwise_rows
        if row["verdict_model_as_a"] is not None and row["verdict_model_as_b"] is not None
    ]
    length_of = {(r.model, r.condition, r.id): len(r.text) for r in responses}
    lengths: dict[str, Any] = {}
    pooled_x, pooled_y = [], []
    for (model, condition), items in sorted(item_means.items()):
        xs = [length_of[(model, condition, item_id)] for item_id in sorted(items)]
        ys = [items[item_id] for item_id in sorted(items)]
        pooled_x += xs
        pooled_y += ys
        lengths.setdefault(model, {})[condition] = {"items": len(xs), "pearson": pearson(xs, ys)}
    gaps = {}
    for model in sorted({model for model, _ in item_means}):
        with_system = item_means.get((model, "system"), {})
        without = item_means.get((model, "no_system"), {})
        if with_system and without:
            gaps[model] = paired_difference(with_system, without, resamples, seed)
    return {
        "repeat_agreement": repeat_agreement(list(repeats.values())),
        "position_flip": flip_rate(order_pairs),
        "length_correlation": {
            "pooled": {"items": len(pooled_x), "pearson": pearson(pooled_x, pooled_y)},
            "by_model": lengths,
        },
        # Table 8: with minus without a system message at test time, paired over items
        "system_message_gap": gaps,
    }


def steerability(
    absolute_rows: list[dict[str, Any]],
    item_means: dict[tuple[str, str], dict[str, float]],
    partners: dict[str, str],
    resamples: int,
    seed: int,
) -> dict[str, Any]:
    """Per model: the system-condition score against its own rubrics (matched) minus against
    another system message's of the same instruction (mismatched), paired over items; empty
    when nothing was graded against another's rubrics (judge.steerability_repeats: 0)."""
    mismatched = per_item_means(item_scores_of(absolute_rows, "mismatched"))
    result = {}
    for (model, condition), items in sorted(mismatched.items()):
        matched = {
            item_id: score
            for item_id, score in item_means.get((model, condition), {}).items()
            if item_id in partners
        }
        entry = paired_difference(matched, items, resamples, seed)
        common = set(matched) & set(items)
        entry["matched_mean"] = _mean([matched[i] for i in sorted(common)])
        entry["mismatched_mean"] = _mean([items[i] for i in sorted(common)])
        result[model] = entry
    return result


def steerability_partners(bench: dict[str, dict[str, Any]]) -> dict[str, str]:
    """Each bench row -> another row of the same instruction (the next one by id, cyclically);
    rows whose instruction has a single system message have no partner."""
    by_instruction: dict[str, list[str]] = defaultdict(list)
    for item_id, row in bench.items():
        by_instruction[row["instruction_id"]].append(item_id)
    partners = {}
    for ids in by_instruction.values():
        ids = sorted(ids)
        if len(ids) >= 2:
            for index, item_id in enumerate(ids):
                partners[item_id] = ids[(index + 1) % len(ids)]
    return partners


def pairwise_summary(
    rows: list[dict[str, Any]], pairs: list[tuple[str, str]], resamples: int, seed: int
) -> dict[str, dict[str, Any]]:
    """Per (model, opponent) pair, in `pairs`' order: win/tie/loss of the comparison rows
    (`pairwise.compare_pairs`) with bootstrap 95% CIs of the rates (bench items resampled)."""
    outcomes: dict[str, list[str]] = defaultdict(list)
    per_item: dict[str, dict[str, Counter]] = defaultdict(lambda: defaultdict(Counter))
    for row in rows:
        key = pair_key(row["model"], row["opponent"])
        outcomes[key].append(row["outcome"])
        per_item[key][row["id"]][row["outcome"]] += 1
    rates = {f"{o}_rate": (o,) for o in OUTCOMES} | {"win_or_tie_rate": ("win", "tie")}
    summary = {}
    for model, opponent in pairs:
        key = pair_key(model, opponent)
        entry = tally(outcomes.get(key, []))
        counts = [per_item[key][item_id] for item_id in sorted(per_item[key])]
        entry["ci95"] = {
            name: bootstrap_rate_ci(counts, wanted, OUTCOMES, resamples, seed)
            for name, wanted in rates.items()
        }
        summary[key] = entry
    return summary


def parse_summary(
    absolute_rows: list[dict[str, Any]], pairwise_rows: list[dict[str, Any]]
) -> dict[str, Any]:
    reasons = Counter(r["reason"] for r in absolute_rows if r["status"] != "ok")
    for row in pairwise_rows:
        reasons.update(row["unparsed_reasons"])
    total = len(absolute_rows) + sum(row["judgements"] for row in pairwise_rows)
    unparsed = sum(reasons.values())
    return {
        "judgements": total,
        "unparsed": unparsed,
        "unparsed_rate": unparsed / total if total else None,
        "reasked": sum(r["attempts"] > 1 for r in absolute_rows),
        "reasons": dict(sorted(reasons.items())),
        "rate_by_reason": {k: v / total for k, v in sorted(reasons.items())} if total else {},
    }


def item_score_rows(
    role: str, item_scores: dict[tuple[str, str, str, int], float], bench: dict[str, dict]
) -> list[dict[str, Any]]:
    return [
        {
            "judge": role,
            "model": model,
            "condition": condition,
            "id": item_id,
            "source": bench[item_id]["source"],
            "benchmark": bench[item_id]["benchmark"],
            "repeat": repeat,
            "score": score,
        }
        for (model, condition, item_id, repeat), score in sorted(item_scores.items())
    ]
