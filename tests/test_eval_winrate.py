"""Win/tie/loss from judgements in both orders (the rule in janus.evaluate.winrate)."""

from __future__ import annotations

import pytest

from janus.evaluate.winrate import combine_orders, pair_key, tally

# (verdict with the model shown as A, verdict with the model shown as B) -> the model's outcome
BOTH_ORDERS = [
    ("A", "B", "win"),  # preferred in both positions
    ("B", "A", "loss"),  # the opponent preferred in both positions
    ("TIE", "TIE", "tie"),
    ("A", "A", "tie"),  # always the first response: position bias, not quality
    ("B", "B", "tie"),  # always the second response
    ("A", "TIE", "tie"),  # a win in one order only is not a win
    ("TIE", "B", "tie"),
    ("B", "TIE", "tie"),  # nor is a loss in one order only
    ("TIE", "A", "tie"),
]


@pytest.mark.parametrize(("x_as_a", "x_as_b", "outcome"), BOTH_ORDERS)
def test_a_win_needs_both_orders(x_as_a, x_as_b, outcome):
    assert combine_orders(x_as_a, x_as_b) == outcome


def test_swapping_the_models_swaps_win_and_loss():
    for x_as_a, x_as_b, outcome in BOTH_ORDERS:
        # the opponent is A when the model is B, so its verdict pair is (x_as_b, x_as_a)
        mirrored = combine_orders(x_as_b, x_as_a)
        assert mirrored == {"win": "loss", "loss": "win", "tie": "tie"}[outcome]


def test_an_unknown_verdict_is_an_error():
    with pytest.raises(ValueError, match="A, B or TIE"):
        combine_orders("A", "C")


def test_rates_are_over_decided_comparisons_only():
    outcomes = ["win"] * 5 + ["tie"] * 3 + ["loss"] * 2 + ["unparsed"] * 4 + ["empty"]
    summary = tally(outcomes)
    assert (summary["win"], summary["tie"], summary["loss"]) == (5, 3, 2)
    assert (summary["unparsed"], summary["empty"], summary["decided"]) == (4, 1, 10)
    assert summary["win_rate"] == pytest.approx(0.5)
    assert summary["tie_rate"] == pytest.approx(0.3)
    assert summary["loss_rate"] == pytest.approx(0.2)
    assert summary["win_or_tie_rate"] == pytest.approx(0.8)


def test_no_decided_comparison_gives_no_rate_not_zero():
    summary = tally(["unparsed", "empty"])
    assert summary["decided"] == 0
    assert summary["win_rate"] is None and summary["win_or_tie_rate"] is None
    with pytest.raises(ValueError, match="unknown outcome"):
        tally(["victory"])


def test_pair_key():
    assert pair_key("sft", "base") == "sft_vs_base"


# ---------------------------------------------------------------------------------------------
# how much to trust a number: bootstrap CIs and judge health, on hand-computed cases
# ---------------------------------------------------------------------------------------------


def test_order_outcomes_and_flip_rate_by_hand():
    from janus.evaluate.stats import flip_rate
    from janus.evaluate.winrate import order_outcomes

    assert order_outcomes("A", "B") == ("win", "win")  # same verdict in both orders
    assert order_outcomes("A", "A") == ("win", "loss")  # position bias: a flip
    assert order_outcomes("TIE", "B") == ("tie", "win")  # a tie in one order only: a flip too
    pairs = [order_outcomes(a, b) for a, b in [("A", "B"), ("A", "A"), ("TIE", "TIE"), ("B", "B")]]
    assert flip_rate(pairs) == {"comparisons": 4, "flips": 2, "rate": 0.5}
    assert flip_rate([]) == {"comparisons": 0, "flips": 0, "rate": None}


def test_bootstrap_mean_ci_by_hand():
    from janus.evaluate.stats import bootstrap_mean_ci

    # two items, 0 and 1: a resample's mean is 0 (p=1/4), 0.5 (1/2) or 1 (1/4), so the
    # 2.5th and 97.5th percentiles are 0 and 1
    assert bootstrap_mean_ci([0.0, 1.0], 2000, seed=1) == [0.0, 1.0]
    assert bootstrap_mean_ci([3.0, 3.0, 3.0], 100, seed=1) == [3.0, 3.0]  # no spread, no width
    assert bootstrap_mean_ci([], 100, seed=1) is None
    # seeded: the same interval every time; it narrows as the bench grows
    values = [1.0, 2.0, 3.0, 4.0, 5.0] * 4
    assert bootstrap_mean_ci(values, 500, seed=3) == bootstrap_mean_ci(values, 500, seed=3)
    low, high = bootstrap_mean_ci(values, 500, seed=3)
    wide_low, wide_high = bootstrap_mean_ci(values[:5], 500, seed=3)
    assert wide_low < low < 3.0 < high < wide_high


def test_bootstrap_rate_ci_resamples_items_not_judgements():
    from janus.evaluate.stats import bootstrap_rate_ci

    decided = ("win", "tie", "loss")
    # one item won in 3 repeats, one tied in 3: rates over resampled items are 0, 1/2 or 1
    counts = [{"win": 3}, {"tie": 3}]
    assert bootstrap_rate_ci(counts, "win", decided, 2000, seed=0) == [0.0, 1.0]
    # an undecided item (unparsed) never enters the denominator
    assert bootstrap_rate_ci([{"win": 2}, {"unparsed": 2}], "win", decided, 500, 0) == [1.0, 1.0]
    assert bootstrap_rate_ci([{"unparsed": 1}], "win", decided, 500, 0) is None


def test_agreement_correlation_and_paired_difference_by_hand():
    from janus.evaluate.stats import paired_difference, pearson, repeat_agreement

    # repeats (4, 4, 5): 3 pairs, 1 identical, all within one point; (2, 5): 1 pair, neither
    assert repeat_agreement([[4, 4, 5], [2, 5], [3]]) == {
        "pairs": 4,
        "exact": 0.25,
        "within_one": 0.75,
    }
    assert pearson([10, 20, 30, 40], [1, 2, 3, 4]) == pytest.approx(1.0)
    assert pearson([10, 20, 30, 40], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert pearson([10, 20, 30], [3, 3, 3]) is None  # a constant score: undefined, not 0
    # steerability / Table 8 arithmetic: only items in both count
    diff = paired_difference({"a": 5.0, "b": 4.0, "c": 1.0}, {"a": 2.0, "b": 2.0}, 200, 0)
    assert diff["items"] == 2 and diff["mean"] == pytest.approx(2.5)
    assert diff["ci95"] == [pytest.approx(2.0), pytest.approx(3.0)]
