"""The scorecard's same-judge section on a fake run: paired differences with t intervals and
verdicts computed by hand, per judge, beside the paper's numbers and the judge shift."""

from __future__ import annotations

from pathlib import Path

import pytest

from janus.config.scorecard import ScorecardSection
from janus.evaluate.same_judge import compare, same_judge_markdown
from janus.evaluate.stats import equivalence_verdict, paired_t_difference, t_mean

REPO = Path(__file__).resolve().parents[1]
T_3 = 3.182446305  # t(0.975, 3 degrees of freedom): four items
T_1 = 12.70620474  # t(0.975, 1): two items
COLUMN = {"i1": "koala", "i2": "koala", "i3": "flask", "i4": "flask"}


def _rows(judge: str, model: str, scores: dict[str, list[float]], condition="system"):
    """Item-score rows as the judge stage writes them: one per item and repeat."""
    return [
        {
            "judge": judge,
            "model": model,
            "condition": condition,
            "id": item,
            "source": COLUMN[item],
            "benchmark": COLUMN[item],
            "repeat": repeat,
            "score": score,
        }
        for item, repeats in scores.items()
        for repeat, score in enumerate(repeats)
    ]


def _fake_run() -> list[dict]:
    rows = []
    # judge: sft - pub per item = [1, 0, 0.5, 0.5] (i1 averages two repeats: 3.5 and 4.5 -> 4)
    rows += _rows("judge", "sft", {"i1": [3.5, 4.5], "i2": [3, 3], "i3": [4.5, 4.5], "i4": [3.5, 3.5]})
    rows += _rows("judge", "pub", {"i1": [3, 3], "i2": [3, 3], "i3": [4, 4], "i4": [3, 3]})
    # dpo - pub_dpo = [2, 2, 1.5, 2.5]: wholly outside the margin
    rows += _rows("judge", "dpo", {"i1": [5], "i2": [5], "i3": [4.5], "i4": [5]})
    rows += _rows("judge", "pub_dpo", {"i1": [3], "i2": [3], "i3": [3], "i4": [2.5]})
    # open_judge: sft - pub = 0.1 on every item: a zero-width interval inside the margin
    rows += _rows("open_judge", "sft", {"i1": [2.1], "i2": [3.1], "i3": [4.1], "i4": [5.0]})
    rows += _rows("open_judge", "pub", {"i1": [2.0], "i2": [3.0], "i3": [4.0], "i4": [4.9]})
    # a baseline under the primary judge: items 3, 4, 5, 4
    rows += _rows("judge", "mistral", {"i1": [3], "i2": [4], "i3": [5], "i4": [4]})
    # another condition is never mixed in
    rows += _rows("judge", "sft", {"i1": [1], "i2": [1]}, condition="no_system")
    return rows


JUDGES = [
    {"role": "judge", "primary": True, "label": "gpt-4.1-2025-04-14"},
    {"role": "open_judge", "primary": False, "label": "hub:prometheus-eval/prometheus-7b-v2.0@abc"},
]


def _section(**same_judge) -> ScorecardSection:
    return ScorecardSection(
        paper_numbers=str(REPO / "data/paper/paper_numbers.csv"),
        rows={"Janus 7B": "sft", "Janus+DPO 7B": "dpo", "Mistral 7B Instruct v0.2": "mistral"},
        paper_only={},
        same_judge={
            "pairs": {"sft": "pub", "dpo": "pub_dpo"},
            "baselines": ["mistral"],
            "condition": "system",
            "margin": 0.5,
            **same_judge,
        },
    )


def _pair(result, judge, pair, column="overall"):
    return result.metrics["pairs"][judge][pair][column]


def test_t_interval_of_a_paired_difference_by_hand():
    entry = paired_t_difference({"a": 1, "b": 0, "c": 0.5, "d": 0.5}, dict.fromkeys("abcd", 0.0))
    half = T_3 * (1 / 6) ** 0.5 / 2  # sd = sqrt(1/6), se = sd / sqrt(4)
    assert entry["items"] == 4 and entry["mean"] == pytest.approx(0.5)
    assert entry["ci95"] == pytest.approx([0.5 - half, 0.5 + half])
    assert paired_t_difference({"a": 1.0}, {"a": 0.0})["ci95"] is None  # one item: no interval
    assert t_mean([0.1, 0.1, 0.1])["ci95"] == pytest.approx([0.1, 0.1])
    assert paired_t_difference({"a": 1.0}, {"b": 0.0})["items"] == 0  # paired on common items


def test_the_verdict_is_an_equivalence_test_against_the_margin():
    assert equivalence_verdict([-0.05, 0.08], 0.1) == "reproduced"
    assert equivalence_verdict([-0.1, 0.1], 0.1) == "reproduced"  # the bounds are inside
    assert equivalence_verdict([0.15, 0.3], 0.1) == "differs"
    assert equivalence_verdict([-0.4, -0.2], 0.1) == "differs"
    assert equivalence_verdict([0.05, 0.2], 0.1) == "inconclusive"
    assert equivalence_verdict(None, 0.1) == "inconclusive"


def test_each_pair_is_compared_per_judge_on_the_same_items():
    result = compare(_section(), _fake_run(), JUDGES)
    sft = _pair(result, "judge", "sft_vs_pub")
    half = T_3 * (1 / 6) ** 0.5 / 2
    assert sft["items"] == 4
    assert sft["ours_mean"] == pytest.approx(3.75)  # (4 + 3 + 4.5 + 3.5) / 4
    assert sft["published_mean"] == pytest.approx(3.25)
    assert sft["difference"] == pytest.approx(0.5)
    assert sft["ci95"] == pytest.approx([0.5 - half, 0.5 + half])
    assert sft["verdict"] == "inconclusive"  # [-0.15, 1.15] crosses +0.5
    # the paper's Janus 7B average (4.17, by GPT-4-0125) and the shift on the same weights
    assert sft["paper_row"] == "Janus 7B" and sft["paper"] == pytest.approx(4.17)
    assert sft["judge_shift"] == pytest.approx(3.25 - 4.17)

    dpo = _pair(result, "judge", "dpo_vs_pub_dpo")
    dpo_half = T_3 * (1 / 6) ** 0.5 / 2  # differences 2, 2, 1.5, 2.5: sd sqrt(1/6) again
    assert dpo["difference"] == pytest.approx(2.0)
    assert dpo["ci95"] == pytest.approx([2 - dpo_half, 2 + dpo_half])
    assert dpo["verdict"] == "differs"

    second = _pair(result, "open_judge", "sft_vs_pub")
    assert second["difference"] == pytest.approx(0.1)
    assert second["ci95"] == pytest.approx([0.1, 0.1])
    assert second["verdict"] == "reproduced"
    # pub_dpo was not graded by the open judge: no items, no interval, no verdict either way
    missing = _pair(result, "open_judge", "dpo_vs_pub_dpo")
    assert missing["items"] == 0 and missing["ci95"] is None
    assert missing["verdict"] == "inconclusive"
    assert result.metrics["summary"] == {
        "judge": {"reproduced": 0, "differs": 1, "inconclusive": 1},
        "open_judge": {"reproduced": 1, "differs": 0, "inconclusive": 1},
    }


def test_per_column_differences_use_only_that_columns_items():
    result = compare(_section(), _fake_run(), JUDGES)
    koala = _pair(result, "judge", "sft_vs_pub", "koala")  # items i1, i2: differences 1, 0
    half = T_1 * 0.5**0.5 / 2**0.5
    assert koala["items"] == 2
    assert koala["ci95"] == pytest.approx([0.5 - half, 0.5 + half])
    assert koala["paper"] == pytest.approx(4.41)  # the paper's Janus 7B mf-Koala


def test_baselines_are_rows_of_their_own_beside_the_paper():
    result = compare(_section(), _fake_run(), JUDGES)
    mistral = result.metrics["baselines"]["judge"]["mistral"]["overall"]
    half = T_3 * (2 / 3) ** 0.5 / 2
    assert mistral["mean"] == pytest.approx(4.0)
    assert mistral["ci95"] == pytest.approx([4 - half, 4 + half])
    assert mistral["paper"] == pytest.approx(3.93)
    assert mistral["judge_shift"] == pytest.approx(4.0 - 3.93)
    assert result.metrics["baselines"]["open_judge"]["mistral"]["overall"]["items"] == 0


def test_the_markdown_labels_each_judge_and_the_papers():
    result = compare(_section(), _fake_run(), JUDGES)
    text = same_judge_markdown(result)
    assert "`open_judge` = hub:prometheus-eval/prometheus-7b-v2.0@abc" in text
    assert "GPT-4-0125-preview" in text
    overall = text.split("### Overall", 1)[1].split("###", 1)[0]
    line = next(row for row in overall.splitlines() if "| judge " in row and "pub_dpo" in row)
    assert "differs" in line and "+2.00" in line
    assert "### Open-weight baselines" in text and "3.93" in text


def test_nothing_to_compare_says_so():
    result = compare(_section(pairs={}, baselines=[]), _fake_run(), JUDGES)
    assert "nothing to compare" in same_judge_markdown(result)
    assert result.metrics["pairs"] == {} and result.metrics["baselines"] == {}
