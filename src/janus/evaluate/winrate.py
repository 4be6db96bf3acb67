"""Pairwise win/tie/loss (Figure 3) from judgements made in both orders.

Every comparison of model X with model Y on one bench row is judged twice: once with X's
response as "A" and Y's as "B", once swapped. The rule, from X's side:

- X wins only if BOTH orders prefer X; X loses only if both prefer Y;
- everything else is a tie: both orders say TIE, one says TIE, or the two orders disagree (the
  judge preferred whichever response came first or second, i.e. position bias, not quality).

A comparison where either order has no parseable verdict is "unparsed", and one where either
response is empty is "empty": both are counted and kept out of the rates, never turned into a tie.
The judge adds a bootstrap 95% CI to every rate (`stats.bootstrap_rate_ci`, items resampled).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any, Literal

Verdict = Literal["A", "B", "TIE"]
Outcome = Literal["win", "tie", "loss"]
OUTCOMES: tuple[Outcome, ...] = ("win", "tie", "loss")
NOT_DECIDED = ("unparsed", "empty")

_AS_A = {"A": "win", "B": "loss", "TIE": "tie"}  # X shown as A
_AS_B = {"A": "loss", "B": "win", "TIE": "tie"}  # X shown as B


def order_outcomes(x_as_a: Verdict, x_as_b: Verdict) -> tuple[Outcome, Outcome]:
    """X's outcome in each order: (X shown as A, X shown as B). They differ when swapping the
    order changed the verdict (position bias; `stats.flip_rate`)."""
    try:
        return _AS_A[x_as_a], _AS_B[x_as_b]
    except KeyError as error:
        raise ValueError(f"verdicts must be A, B or TIE, got {x_as_a!r} and {x_as_b!r}") from error


def combine_orders(x_as_a: Verdict, x_as_b: Verdict) -> Outcome:
    """X's outcome from the verdict with X as A and the verdict with X as B."""
    first, second = order_outcomes(x_as_a, x_as_b)
    return first if first == second else "tie"


def tally(outcomes: Iterable[str]) -> dict[str, Any]:
    """Counts of win/tie/loss (plus unparsed, empty) and rates over the decided comparisons."""
    counts = Counter(outcomes)
    unknown = set(counts) - set(OUTCOMES) - set(NOT_DECIDED)
    if unknown:
        raise ValueError(f"unknown outcome(s) {sorted(unknown)}")
    decided = sum(counts[outcome] for outcome in OUTCOMES)
    summary: dict[str, Any] = {outcome: counts[outcome] for outcome in (*OUTCOMES, *NOT_DECIDED)}
    summary["decided"] = decided
    for outcome in OUTCOMES:
        summary[f"{outcome}_rate"] = counts[outcome] / decided if decided else None
    summary["win_or_tie_rate"] = (counts["win"] + counts["tie"]) / decided if decided else None
    return summary


def pair_key(model: str, opponent: str) -> str:
    return f"{model}_vs_{opponent}"
