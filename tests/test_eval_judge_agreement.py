"""Agreement between two judges on small hand-computed cases, and its place in the report."""

from __future__ import annotations

import math

import pytest

from janus.config.report import AgreementParams
from janus.evaluate.judge.agreement import agreement_markdown, judge_agreements, rubric_labels
from janus.evaluate.stats import agreement_measures, judge_agreement


def test_perfect_agreement():
    values = agreement_measures([1, 2, 3, 4, 5], [1, 2, 3, 4, 5])
    assert values == pytest.approx(
        {"kappa_quadratic": 1.0, "pearson": 1.0, "spearman": 1.0, "exact": 1.0, "within_one": 1.0}
    )


def test_a_small_case_by_hand():
    # a = 1, 2, 3 and b = 1, 3, 3 on the 1-5 scale, quadratic weights (i - j)^2 / 16:
    # observed disagreement (1/16) / 3 = 3/144; expected, from the marginals a = (1/3, 1/3, 1/3)
    # on 1, 2, 3 and b = (1/3, 2/3) on 1, 3: 15/144; kappa = 1 - 3/15 = 0.8.
    # Pearson: deviations (-1, 0, 1) and (-4/3, 2/3, 2/3): 2 / sqrt(2 * 8/3) = sqrt(3)/2.
    # Spearman: ranks (1, 2, 3) and (1, 2.5, 2.5): 1.5 / sqrt(2 * 1.5) = sqrt(3)/2.
    values = agreement_measures([1, 2, 3], [1, 3, 3])
    assert values["kappa_quadratic"] == pytest.approx(0.8)
    assert values["pearson"] == pytest.approx(math.sqrt(3) / 2)
    assert values["spearman"] == pytest.approx(math.sqrt(3) / 2)
    assert values["exact"] == pytest.approx(2 / 3)
    assert values["within_one"] == pytest.approx(1.0)


def test_kappa_is_quadratic_weighted_far_misses_cost_more():
    near = agreement_measures([1, 2, 3, 4], [2, 2, 3, 4])["kappa_quadratic"]
    far = agreement_measures([1, 2, 3, 4], [5, 2, 3, 4])["kappa_quadratic"]
    assert near > far


def test_undefined_measures_are_none_not_a_number():
    constant = agreement_measures([3, 3, 3], [3, 3, 3])
    assert constant["pearson"] is None and constant["spearman"] is None
    assert constant["kappa_quadratic"] is None  # 0 / 0: both judges gave one score throughout
    assert constant["exact"] == 1.0
    assert agreement_measures([], [])["exact"] is None
    with pytest.raises(ValueError, match="differ in length"):
        agreement_measures([1, 2], [1])


def test_the_interval_resamples_bench_items_not_judgements():
    # item A: three exact pairs; item B: one pair a point apart. Exact agreement is 3/4 over
    # judgements, but a resample of items is AA (1.0), AB (0.75) or BB (0.0): the interval spans
    # both ends, as it should with two items.
    pairs = [("A", 4, 4), ("A", 3, 3), ("A", 5, 5), ("B", 2, 3)]
    entry = judge_agreement(pairs, resamples=400, seed=0)
    assert entry["pairs"] == 4 and entry["items"] == 2
    assert entry["exact"] == pytest.approx(0.75)
    assert entry["ci95"]["exact"] == pytest.approx([0.0, 1.0])
    assert entry["ci95"]["within_one"] == pytest.approx([1.0, 1.0])
    single = judge_agreement([("A", 4, 4), ("A", 3, 3)], resamples=400, seed=0)
    assert single["ci95"]["exact"] is None  # one item: no interval


def _row(judge, model, item, rubric, score, repeat=0, kind="own", status="ok"):
    return {
        "judge": judge,
        "model": model,
        "condition": "system",
        "id": item,
        "rubric_index": rubric,
        "repeat": repeat,
        "kind": kind,
        "status": status,
        "score": score,
    }


BENCH = [
    {
        "id": "i1",
        "rubrics": [{}, {}],
        "preference_set": [{"dimension": "style"}, {"dimension": "harmlessness"}],
    },
    {"id": "i2", "rubrics": [{}, {}], "preference_set": None},
]


def test_judgements_pair_up_by_response_rubric_and_repeat():
    rows = [
        _row("judge", "m", "i1", 0, 1),
        _row("open_judge", "m", "i1", 0, 1),
        _row("judge", "m", "i1", 1, 2),
        _row("open_judge", "m", "i1", 1, 3),
        _row("judge", "m", "i2", 0, 3),
        _row("open_judge", "m", "i2", 0, 3),
        _row("judge", "m", "i2", 1, 5),  # the open judge could not read this one: no pair
        _row("open_judge", "m", "i2", 1, None, status="unparsed"),
        _row("judge", "m", "i1", 0, 5, kind="mismatched"),  # steerability: not a pair
    ]
    assert rubric_labels(BENCH) == {
        ("i1", 0): "style",
        ("i1", 1): "harmlessness",
        ("i2", 0): "rubric 1",
        ("i2", 1): "rubric 2",
    }
    params = AgreementParams(bootstrap_resamples=100, bootstrap_seed=0)
    result = judge_agreements(rows, ["judge", "open_judge"], BENCH, params)
    entry = result["judge_vs_open_judge"]
    assert entry["judges"] == ["judge", "open_judge"]
    # overall: (1, 1), (2, 3), (3, 3) -> the hand-computed case above
    assert entry["overall"]["pairs"] == 3 and entry["overall"]["items"] == 2
    assert entry["overall"]["kappa_quadratic"] == pytest.approx(0.8)
    assert set(entry["by_rubric"]) == {"style", "harmlessness", "rubric 1"}
    assert entry["by_rubric"]["harmlessness"]["exact"] == 0.0
    text = agreement_markdown(result, {"judge": "gpt-x", "open_judge": "prometheus"})
    assert "**judge** (gpt-x) vs **open_judge** (prometheus)" in text
    assert "| overall " in text and "κ (quadratic)" in text and "0.80" in text
    assert judge_agreements(rows, ["judge"], BENCH, params) == {}
    assert "no agreement" in agreement_markdown({}, {})
