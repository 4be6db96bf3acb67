"""How much to trust a judge number: bootstrap CIs over bench items and judge-health measures.

Every CI resamples bench items (not judgements): an item's repeats and rubrics move together, so
the interval reflects which instructions happened to be in the bench, the dominant uncertainty
at 921 items. Percentile intervals; the generator is seeded from params, so the metrics are a
deterministic function of the judgements.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from itertools import combinations
from typing import Any

import numpy as np

CI_LEVEL = 0.95


def _interval(samples: np.ndarray) -> list[float] | None:
    samples = samples[~np.isnan(samples)]
    if samples.size == 0:
        return None
    tail = 100 * (1 - CI_LEVEL) / 2
    low, high = np.percentile(samples, [tail, 100 - tail])
    return [float(low), float(high)]


def _indices(n: int, resamples: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, n, size=(resamples, n))


def bootstrap_mean_ci(values: Sequence[float], resamples: int, seed: int) -> list[float] | None:
    """95% CI of the mean of per-item values; None without items. One item: [v, v]."""
    data = np.asarray(values, dtype=float)
    if data.size == 0:
        return None
    return _interval(data[_indices(data.size, resamples, seed)].mean(axis=1))


def bootstrap_rate_ci(
    counts: Sequence[Mapping[str, int]],
    outcome: str | tuple[str, ...],
    decided: tuple[str, ...],
    resamples: int,
    seed: int,
) -> list[float] | None:
    """95% CI of sum(outcome) / sum(decided) over items (one count mapping per item)."""
    if not counts:
        return None
    wanted = (outcome,) if isinstance(outcome, str) else outcome
    numerator = np.array([sum(c.get(k, 0) for k in wanted) for c in counts], dtype=float)
    denominator = np.array([sum(c.get(k, 0) for k in decided) for c in counts], dtype=float)
    if denominator.sum() == 0:
        return None
    index = _indices(len(counts), resamples, seed)
    with np.errstate(invalid="ignore", divide="ignore"):
        rates = numerator[index].sum(axis=1) / denominator[index].sum(axis=1)
    return _interval(rates)


def pearson(xs: Sequence[float], ys: Sequence[float]) -> float | None:
    """Pearson's r; None with fewer than 3 points or a constant variable."""
    if len(xs) != len(ys):
        raise ValueError("pearson: sequences differ in length")
    if len(xs) < 3:
        return None
    x, y = np.asarray(xs, dtype=float), np.asarray(ys, dtype=float)
    if x.std() == 0 or y.std() == 0:
        return None
    value = float(np.corrcoef(x, y)[0, 1])
    return None if math.isnan(value) else value


def repeat_agreement(groups: Sequence[Sequence[int]]) -> dict[str, float | int | None]:
    """Over every pair of repeats of one judgement (same response and rubric): the share giving
    the same score, and within one point. Groups with fewer than two parsed repeats add nothing."""
    pairs = exact = within_one = 0
    for scores in groups:
        for a, b in combinations(scores, 2):
            pairs += 1
            exact += a == b
            within_one += abs(a - b) <= 1
    return {
        "pairs": pairs,
        "exact": exact / pairs if pairs else None,
        "within_one": within_one / pairs if pairs else None,
    }


def flip_rate(outcome_pairs: Sequence[tuple[str, str]]) -> dict[str, float | int | None]:
    """Position bias: the share of comparisons whose verdict changes when the order is swapped.
    Each pair is (outcome with the model shown first, outcome with it shown second), both from
    the model's side ("win" / "tie" / "loss"); a TIE in one order and a win in the other is a
    change too."""
    flips = sum(first != second for first, second in outcome_pairs)
    total = len(outcome_pairs)
    return {"comparisons": total, "flips": flips, "rate": flips / total if total else None}


def paired_difference(
    first: Mapping[str, float], second: Mapping[str, float], resamples: int, seed: int
) -> dict[str, float | int | list[float] | None]:
    """mean(first - second) over the items both have, with its bootstrap CI."""
    common = sorted(set(first) & set(second))
    diffs = [first[item] - second[item] for item in common]
    return {
        "items": len(common),
        "mean": sum(diffs) / len(diffs) if diffs else None,
        "ci95": bootstrap_mean_ci(diffs, resamples, seed),
    }


# ---------------------------------------------------------------------------------------------
# paired differences with a t interval (the same-judge scorecard)
# ---------------------------------------------------------------------------------------------


def t_mean(values: Sequence[float]) -> dict[str, float | int | list[float] | None]:
    """The mean of per-item values, their sample std, and the 95% Student t interval of the
    mean (`scipy.stats.ttest_1samp`): mean ± t(0.975, n-1) · sd / sqrt(n), in closed form, so a
    reader can check it by hand. No CI below two items; [v, v] when every value is v."""
    from scipy import stats

    data = np.asarray(values, dtype=float)
    entry: dict[str, float | int | list[float] | None] = {
        "items": int(data.size),
        "mean": float(data.mean()) if data.size else None,
        "std": float(data.std(ddof=1)) if data.size >= 2 else None,
        "ci95": None,
    }
    if data.size >= 2:
        if np.all(data == data[0]):
            entry["ci95"] = [float(data[0]), float(data[0])]
        else:
            interval = stats.ttest_1samp(data, 0.0).confidence_interval(CI_LEVEL)
            entry["ci95"] = [float(interval.low), float(interval.high)]
    return entry


def paired_t_difference(
    first: Mapping[str, float], second: Mapping[str, float]
) -> dict[str, float | int | list[float] | None]:
    """mean(first - second) over the items both have, with its t interval (`t_mean`)."""
    common = sorted(set(first) & set(second))
    return t_mean([first[item] - second[item] for item in common])


def equivalence_verdict(ci: Sequence[float] | None, margin: float) -> str:
    """`reproduced` when the whole CI lies within ±margin, `differs` when it lies wholly
    outside it, `inconclusive` otherwise (or without a CI)."""
    if not ci:
        return "inconclusive"
    low, high = ci
    if -margin <= low and high <= margin:
        return "reproduced"
    if high < -margin or low > margin:
        return "differs"
    return "inconclusive"


# ---------------------------------------------------------------------------------------------
# agreement between two judges grading the same responses
# ---------------------------------------------------------------------------------------------

AGREEMENT_MEASURES = ("kappa_quadratic", "pearson", "spearman", "exact", "within_one")
SCORE_LABELS = [1, 2, 3, 4, 5]


def _defined(value: float) -> float | None:
    return None if math.isnan(value) else float(value)


def agreement_measures(first: Sequence[int], second: Sequence[int]) -> dict[str, float | None]:
    """Two judges' scores of the same judgements (1-5): quadratic-weighted Cohen's kappa
    (scikit-learn), Pearson's r and Spearman's rho (scipy), and the share of exact and of
    within-one-point agreement. A measure that is undefined (no pairs, a constant judge for the
    correlations, kappa 0/0) is None."""
    from scipy import stats
    from sklearn.metrics import cohen_kappa_score

    a, b = np.asarray(first, dtype=float), np.asarray(second, dtype=float)
    if a.shape != b.shape:
        raise ValueError("agreement: the two judges' score lists differ in length")
    if a.size == 0:
        return dict.fromkeys(AGREEMENT_MEASURES)
    with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
        warnings.simplefilter("ignore")  # constant input: the measure is undefined, i.e. None
        kappa = cohen_kappa_score(a, b, labels=SCORE_LABELS, weights="quadratic")
        varied = a.size >= 2 and a.std() > 0 and b.std() > 0
        pearson_r = stats.pearsonr(a, b).statistic if varied else math.nan
        spearman_rho = stats.spearmanr(a, b).statistic if varied else math.nan
    return {
        "kappa_quadratic": _defined(kappa),
        "pearson": _defined(pearson_r),
        "spearman": _defined(spearman_rho),
        "exact": float(np.mean(a == b)),
        "within_one": float(np.mean(np.abs(a - b) <= 1)),
    }


def judge_agreement(
    pairs: Sequence[tuple[str, int, int]], resamples: int, seed: int
) -> dict[str, Any]:
    """Agreement of two judges over `pairs` of (bench item, score of the first judge, score of
    the second): every measure of `agreement_measures`, each with a 95% percentile bootstrap CI
    (`scipy.stats.bootstrap`) that resamples bench items, not judgements, as every CI here does
    (an item's rubrics, repeats and models move together). Resamples where a measure is
    undefined are left out of its interval; no CI below two items."""
    from scipy import stats

    by_item: dict[str, list[tuple[int, int]]] = {}
    for item, first, second in pairs:
        by_item.setdefault(item, []).append((first, second))
    items = sorted(by_item)
    scores = [np.array(by_item[item], dtype=float).reshape(-1, 2) for item in items]
    point = agreement_measures([p[1] for p in pairs], [p[2] for p in pairs])
    entry: dict[str, Any] = {"pairs": len(pairs), "items": len(items), **point}
    entry["ci95"] = dict.fromkeys(AGREEMENT_MEASURES)
    if len(items) < 2:
        return entry

    def statistic(chosen: np.ndarray) -> np.ndarray:
        both = np.concatenate([scores[int(i)] for i in chosen])
        values = agreement_measures(both[:, 0], both[:, 1])
        return np.array([np.nan if values[m] is None else values[m] for m in AGREEMENT_MEASURES])

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # undefined resamples are NaN, dropped by _interval
        result = stats.bootstrap(
            (np.arange(len(items)),),
            statistic,
            vectorized=False,
            n_resamples=resamples,
            method="percentile",
            confidence_level=CI_LEVEL,
            rng=np.random.default_rng(seed),
        )
    for measure, samples in zip(AGREEMENT_MEASURES, result.bootstrap_distribution, strict=True):
        entry["ci95"][measure] = _interval(np.asarray(samples, dtype=float))
    return entry
