"""How much to trust a number: bootstrap CIs, Pearson's r and judge-health measures, for the
judge and the toxicity evaluation alike (one implementation of each, on scipy.stats).

Every CI resamples items (bench items for the judge: an item's repeats and rubrics move together,
so the interval reflects which instructions happened to be in the bench, the dominant uncertainty
at 921 items; prompts for toxicity). Percentile intervals; the generator is seeded from params,
so the metrics are a deterministic function of their inputs.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from itertools import combinations

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
    """Percentile 95% CI of the mean of per-item values (`scipy.stats.bootstrap`); None without
    items or resamples. One item: [v, v] (scipy asks for two)."""
    from scipy import stats

    data = np.asarray(values, dtype=float)
    if data.size == 0 or resamples < 1:
        return None
    if data.size == 1:
        return [float(data[0]), float(data[0])]
    with warnings.catch_warnings():  # equal values: a zero-width interval, which is the answer
        warnings.simplefilter("ignore", stats.DegenerateDataWarning)
        result = stats.bootstrap(
            (data,),
            np.mean,
            n_resamples=resamples,
            confidence_level=CI_LEVEL,
            method="percentile",
            rng=np.random.default_rng(seed),
        )
    interval = result.confidence_interval
    return [float(interval.low), float(interval.high)]


def bootstrap_rate_ci(
    counts: Sequence[Mapping[str, int]],
    outcome: str | tuple[str, ...],
    decided: tuple[str, ...],
    resamples: int,
    seed: int,
) -> list[float] | None:
    """95% CI of sum(outcome) / sum(decided) over items (one count mapping per item). Resampled
    here, as scipy.stats.bootstrap resamples (the same seeded index draws): a resample whose
    items decided nothing has no rate and is left out, where scipy's interval would be NaN."""
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
    """Pearson's r (`scipy.stats.pearsonr`); None with fewer than 3 points (two points always
    give +-1, which measures nothing) or a constant variable (r is undefined)."""
    from scipy import stats

    if len(xs) != len(ys):
        raise ValueError("pearson: sequences differ in length")
    if len(xs) < 3:
        return None
    x, y = np.asarray(xs, dtype=float), np.asarray(ys, dtype=float)
    if x.std() == 0 or y.std() == 0:
        return None
    value = float(stats.pearsonr(x, y).statistic)
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
