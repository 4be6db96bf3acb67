"""The report's tables, metrics and plot data, from fixture metrics and responses."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from janus.config.params import parse_params
from janus.evaluate.diversity import response_diversity, rouge_l
from janus.evaluate.markdown import markdown_table, score_cell
from janus.evaluate.report import ReportInputs, build_report
from tests.sections import tiny_section

REPO = Path(__file__).resolve().parents[1]


def _entry(mean, std=None, items=4):
    return {"mean": mean, "std": std, "items": items, "repeats": 1 if std is None else 3}


JUDGE = {
    "format": "structured",
    "repeats": 3,
    "scores": {
        "sft": {
            "system": {
                "koala": _entry(4.5, 0.1),
                "flask": _entry(3.5, 0.3),
                "overall": _entry(4.0, 0.2, 8),
            },
            "no_system": {
                "koala": _entry(3.0, 0.1),
                "flask": _entry(3.0, 0.0),
                "overall": _entry(3.0, 0.05, 8),
            },
        },
        "sft-bon": {
            "system": {
                "koala": _entry(4.75, 0.0),
                "flask": _entry(4.25, 0.1),
                "overall": _entry(4.5, 0.05, 8),
            }
        },
    },
    "counts": {
        "sft": {
            "system": {
                "responses": 8,
                "empty_responses": 1,
                "judgements": 84,
                "unparsed_judgements": 2,
                "unscored_items": 0,
            },
            "no_system": {
                "responses": 8,
                "empty_responses": 0,
                "judgements": 96,
                "unparsed_judgements": 0,
                "unscored_items": 0,
            },
        },
        "sft-bon": {
            "system": {
                "responses": 8,
                "empty_responses": 0,
                "judgements": 96,
                "unparsed_judgements": 0,
                "unscored_items": 0,
            }
        },
    },
    "pairwise": {
        "sft_vs_base": {
            "win": 3,
            "tie": 1,
            "loss": 0,
            "unparsed": 1,
            "empty": 2,
            "decided": 4,
            "win_rate": 0.75,
            "tie_rate": 0.25,
            "loss_rate": 0.0,
            "win_or_tie_rate": 1.0,
        }
    },
    "parse": {
        "judgements": 276,
        "unparsed": 2,
        "unparsed_rate": 2 / 276,
        "reasons": {"llm_failed": 2},
    },
    "bench": {"rows": 4, "dropped": {}},
    "llm": {
        "items": 276,
        "invalid_outputs": 0,
        "failed": 2,
        "prompt_tokens": 1000,
        "completion_tokens": 500,
        "cost_usd": 0.0,
    },
}
BENCH = {
    "rows": 4,
    "instructions": 2,
    "dropped": {"missing_score_level": 1},
    "train_test_rouge_l": {
        "mean_of_max": 0.21,
        "max_of_max": 0.33,
        "bench_messages": 4,
        "train_messages": 12,
    },
    "llm": {
        "items": 20,
        "invalid_outputs": 0,
        "failed": 0,
        "prompt_tokens": 10,
        "completion_tokens": 5,
        "cost_usd": 0.5,
    },
}
BENCH_ROWS = [{"id": f"koala-x-{k}", "instruction_id": "koala-x"} for k in range(2)] + [
    {"id": f"flask-y-{k}", "instruction_id": "flask-y"} for k in range(2)
]
RESPONSES = [
    # base answers both system messages of koala-x identically (ROUGE-L 1), flask-y disjointly
    {
        "model": "base",
        "id": "koala-x-0",
        "condition": "system",
        "response": "the cat sat on the mat",
    },
    {
        "model": "base",
        "id": "koala-x-1",
        "condition": "system",
        "response": "the cat sat on the mat",
    },
    {"model": "base", "id": "flask-y-0", "condition": "system", "response": "alpha beta gamma"},
    {"model": "base", "id": "flask-y-1", "condition": "system", "response": "delta epsilon zeta"},
    {"model": "base", "id": "flask-y-1", "condition": "no_system", "response": "alpha beta gamma"},
    {"model": "sft", "id": "koala-x-0", "condition": "system", "response": "one two three four"},
    {"model": "sft", "id": "koala-x-1", "condition": "system", "response": ""},  # left out, counted
]
ITEM_SCORES = [
    {
        "model": "sft",
        "condition": "system",
        "source": "koala",
        "id": "koala-x-0",
        "repeat": r,
        "score": s,
    }
    for r, s in enumerate((4.0, 5.0, 4.5))
]
TOXICITY = {
    "sft": {
        "avg_max_toxicity": 0.256,
        "toxicity_probability": 0.061,
        "perplexity": 14.58,
        "dist_2": 0.93,
        "dist_3": 0.95,
        "unscored_generations": 0,
    },
}


def _params(report_models):
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    raw["infer"] = tiny_section(
        "infer",
        models={"base": {"path": "models/base"}, "sft": {"path": "checkpoints/sft"}},
        best_of_n={"sft-bon": {"path": "checkpoints/sft", "n": 4}},
    ).model_dump(mode="json")
    raw["report"] = {**raw["report"], "models": report_models}
    return parse_params(raw)


def _report(toxicity=None, report_models=("sft", "sft-bon", "base")):
    inputs = ReportInputs(JUDGE, BENCH, BENCH_ROWS, RESPONSES, ITEM_SCORES, toxicity)
    return build_report(_params(list(report_models)), inputs)


def _table_after(markdown: str, heading: str) -> list[list[str]]:
    block = markdown.split(heading, 1)[1].split("\n## ", 1)[0]
    lines = [line for line in block.splitlines() if line.startswith("|")]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines]


def test_table_2_has_a_column_per_source_and_a_row_per_model():
    table = _table_after(_report().markdown, "(Table 2)")
    assert table[0] == ["Model", "mf-FLASK", "mf-Koala", "Average", "Items", "Empty / unparsed"]
    assert table[2] == ["sft", "3.50 ± 0.30", "4.50 ± 0.10", "4.00 ± 0.20", "8", "1 / 2"]
    assert table[3][:4] == ["sft-bon", "4.25 ± 0.10", "4.75 ± 0.00", "4.50 ± 0.05"]
    # a model the judge has no scores for is shown as such, not dropped
    assert table[4] == ["base", "–", "–", "–", "–", "not judged"]


def test_table_8_compares_with_and_without_a_system_message():
    table = _table_after(_report().markdown, "(Table 8)")
    assert table[2] == ["sft", "3.00 ± 0.05", "4.00 ± 0.20", "+1.00"]
    assert table[3][1:] == ["–", "4.50 ± 0.05", "–"]


def test_table_11_pairs_best_of_n_with_the_plain_model_of_its_checkpoint():
    report = _report()
    table = _table_after(report.markdown, "(Table 11)")
    assert table[2][0] == "sft" and table[2][-1] == "4.00 ± 0.20"
    assert table[3][0] == "+ Best-of-4 (sft-bon)" and table[3][-1] == "4.50 ± 0.05"
    assert report.metrics["best_of_n_gain"] == {"sft-bon": pytest.approx(0.5)}
    assert report.metrics["system_message_gain"]["sft"] == pytest.approx(1.0)
    assert report.metrics["system_message_gain"]["base"] is None


def test_win_rates_table_and_plot_rows():
    report = _report()
    table = _table_after(report.markdown, "(Figure 3)")
    assert table[2] == ["sft vs base", "75.0%", "25.0%", "0.0%", "100.0%", "4", "1", "2"]
    rows = report.plots["win_rates.json"]
    assert {(row["outcome"], row["rate"]) for row in rows} == {
        ("win", 0.75),
        ("tie", 0.25),
        ("loss", 0.0),
    }


def test_diversity_is_rouge_l_across_system_messages_of_one_instruction():
    report = _report()
    diversity = report.metrics["diversity"]
    # koala-x: identical answers (1.0); flask-y: no shared word (0.0); the no_system row is ignored
    assert diversity["base"]["rouge_l_mean"] == pytest.approx(0.5)
    assert diversity["base"]["rouge_l_max"] == pytest.approx(1.0)
    assert diversity["base"]["instructions"] == 2
    # sft has one non-empty answer per instruction: nothing to compare, the empty one counted
    assert diversity["sft"]["instructions"] == 0 and diversity["sft"]["rouge_l_mean"] is None
    assert diversity["sft"]["empty_responses"] == 1
    table = _table_after(report.markdown, "(Figure 9)")
    assert ["base", "0.500", "1.000", "2", "0"] in table
    assert {row["instruction_id"] for row in report.plots["diversity.json"]} == {
        "koala-x",
        "flask-y",
    }


def test_rouge_l_is_the_rouge_score_f1():
    assert rouge_l("the cat sat", "the cat sat") == pytest.approx(1.0)
    assert rouge_l("a b c d", "a b x y") == pytest.approx(0.5)
    per_instruction, _ = response_diversity(
        [
            {"model": "m", "id": "i-0", "condition": "system", "response": "a b c d"},
            {"model": "m", "id": "i-1", "condition": "system", "response": "a b x y"},
            {"model": "m", "id": "i-2", "condition": "system", "response": "a b c d"},
        ],
        {"i-0": "i", "i-1": "i", "i-2": "i"},
    )
    assert per_instruction[0]["rouge_l_mean"] == pytest.approx((0.5 + 1.0 + 0.5) / 3)


def test_train_test_similarity_and_health_sections():
    markdown = _report().markdown
    assert _table_after(markdown, "(Figure 5)")[2] == ["4", "12", "0.210", "0.330"]
    assert "missing_score_level" in markdown and "llm_failed" in markdown


def test_toxicity_table_only_when_its_metrics_exist():
    assert "(Table 4)" not in _report().markdown
    table = _table_after(_report(toxicity=TOXICITY).markdown, "(Table 4)")
    assert table[2] == ["sft", "0.256", "0.061", "14.58", "0.93", "0.95", "0"]


def test_score_plot_rows_average_repeats_per_item():
    rows = _report().plots["judge_scores.json"]
    assert rows == [
        {
            "model": "sft",
            "group": "sft (system)",
            "condition": "system",
            "source": "koala",
            "id": "koala-x-0",
            "score": pytest.approx(4.5),
        }
    ]


def test_rows_default_to_every_infer_model():
    table = _table_after(_report(report_models=()).markdown, "(Table 2)")
    assert [row[0] for row in table[2:]] == ["base", "sft", "sft-bon"]


def test_cells():
    assert score_cell(None) == "–" and score_cell({"mean": None}) == "–"
    assert score_cell({"mean": 4.123, "std": None}) == "4.12"
    assert markdown_table(["a", "b"], [[1, 2]]) == "| a | b |\n|---|---|\n| 1 | 2 |"
