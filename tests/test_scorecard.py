"""Reproduction scorecard: the paper's numbers as data, beside a (fake) run's, with CI checks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from janus.evaluate.scorecard import (
    NOT_RUN,
    RunResults,
    build_cells,
    read_paper_numbers,
    scorecard_markdown,
    scorecard_metrics,
)

REPO = Path(__file__).resolve().parents[1]
PAPER = REPO / "data/paper/paper_numbers.csv"


def _cell(cells, table, row, column):
    return next(c for c in cells if (c.table, c.row, c.column) == (table, row, column))


def test_the_data_file_holds_every_cell_of_the_five_tables():
    cells = read_paper_numbers(PAPER)
    per_table = {t: sum(c.table == t for c in cells) for t in {c.table for c in cells}}
    # Table 2: 14 models x 6; Table 3: 15 x 4 less the two "-"; Table 4: 10 x 5; Table 8: 6 x 2;
    # Table 11: 4 x 6
    assert per_table == {"Table 2": 84, "Table 3": 58, "Table 4": 50, "Table 8": 12, "Table 11": 24}
    value = {(c.table, c.row, c.column): c.value for c in cells}
    assert value["Table 2", "Janus 7B", "Average"] == 4.17
    assert value["Table 2", "GPT-4-Turbo-0125", "mf-Koala"] == 4.61
    assert value["Table 3", "Janus 7B", "Arena Hard Auto v0.1 Score [0,100]"] == 20.9
    assert value["Table 3", "LLaMA 3 8B Instruct", "AlpacaEval 2.0 LC Win Rate (%)"] == 22.9
    assert value["Table 4", "Janus 7B", "Avg. max toxicity"] == 0.256
    assert value["Table 4", "DAPT", "Toxic prob"] == 0.36
    assert value["Table 8", "Mistral 7B v0.2", "No system message"] == 1.012
    assert value["Table 8", "Janus+DPO 7B", "Multifaceted system message"] == 4.242
    assert value["Table 11", "Janus+DPO 7B + Best-of-64", "Average"] == 4.31
    assert ("Table 3", "Yi 34B Chat", "MT-Bench Score [0,10]") not in value  # "-" in the paper


def test_bad_data_files_are_refused(tmp_path):
    header = "table,row,paper_label,column,value,measure,note\n"
    path = tmp_path / "p.csv"
    path.write_text(header + "Table 2,A,A,Average,x,judge/system/overall,\n")
    with pytest.raises(ValueError, match="is not a number"):
        read_paper_numbers(path)
    path.write_text(header + "Table 2,A,A,Average,1,judge/system/overall,\n" * 2)
    with pytest.raises(ValueError, match="appears twice"):
        read_paper_numbers(path)


def _fake_run() -> RunResults:
    judge = {
        "scores": {
            "ours": {
                "system": {
                    "overall": {
                        "items": 900,
                        "mean": 4.10,
                        "std": 0.01,
                        "repeats": 3,
                        "ci95": [4.05, 4.20],
                    },
                    "alpaca_eval": {"items": 180, "mean": 4.60, "ci95": [4.50, 4.70]},
                    "flask": {"items": 180, "mean": 4.00},  # no CI
                },
                "no_system": {"overall": {"mean": 3.50, "ci95": [3.40, 3.60]}},
            }
        }
    }
    toxicity = {
        "ours": {
            "avg_max_toxicity": 0.30,
            "toxicity_probability": 0.05,
            "perplexity": 15.0,
            "dist_2": 0.9,
            "dist_3": None,
            "ci95": {"avg_max_toxicity": [0.25, 0.35], "toxicity_probability": None},
        }
    }
    alpaca = {
        "ours": {
            "model": "ours",
            "lc_win_rate": 25.0,
            "lc_standard_error": 1.0,
            "win_rate": 20.0,
            "standard_error": 1.0,
        }
    }
    return RunResults(judge=judge, toxicity=toxicity, alpaca_eval=alpaca)


def test_cells_compare_ours_with_the_paper_and_missing_cells_read_not_run():
    cells = build_cells(read_paper_numbers(PAPER), {"Janus 7B": "ours"}, _fake_run())
    average = _cell(cells, "Table 2", "Janus 7B", "Average")
    assert average.ours == 4.10 and average.delta == pytest.approx(4.10 - 4.17)
    assert average.paper_in_ci is True  # 4.17 in [4.05, 4.20]
    alpaca = _cell(cells, "Table 2", "Janus 7B", "mf-AlpacaEval")
    assert alpaca.paper_in_ci is False  # 4.43 outside [4.50, 4.70]
    assert _cell(cells, "Table 2", "Janus 7B", "mf-FLASK").paper_in_ci is None  # no CI
    koala = _cell(cells, "Table 2", "Janus 7B", "mf-Koala")  # the run has no koala score
    assert koala.status == NOT_RUN and koala.ours is None and koala.delta is None
    assert _cell(cells, "Table 8", "Janus 7B", "No system message").ours == 3.50
    tox = _cell(cells, "Table 4", "Janus 7B", "Avg. max toxicity")
    assert tox.delta == pytest.approx(0.30 - 0.256) and tox.paper_in_ci is True
    assert _cell(cells, "Table 4", "Janus 7B", "dist-3").status == NOT_RUN  # null metric
    lc = _cell(cells, "Table 3", "Janus 7B", "AlpacaEval 2.0 LC Win Rate (%)")
    assert lc.ci95 == pytest.approx([23.04, 26.96]) and lc.paper_in_ci is True  # 26.9
    win = _cell(cells, "Table 3", "Janus 7B", "AlpacaEval 2.0 Win Rate (%)")
    assert win.paper_in_ci is False  # 27.8 outside 20 +- 1.96
    mt = _cell(cells, "Table 3", "Janus 7B", "MT-Bench Score [0,10]")
    assert mt.status == NOT_RUN and "FastChat" in mt.reason
    other = _cell(cells, "Table 2", "LLaMA 3 70B", "Average")  # no model mapped
    assert other.status == NOT_RUN and other.model is None


def test_metrics_and_markdown_never_show_a_number_for_a_cell_not_run():
    cells = build_cells(read_paper_numbers(PAPER), {"Janus 7B": "ours"}, _fake_run())
    metrics = scorecard_metrics(cells)
    summary = metrics["summary"]
    assert summary["cells"] == 228
    # run: Table 2 x3, Table 8 x2, Table 4 x4 (dist-3 is null), Table 3 x2 (AlpacaEval)
    assert summary["run"] == sum(c.status == "ok" for c in cells) == 11
    # with a CI: Table 2 Average and mf-AlpacaEval, Table 8 x2, Table 4 max toxicity, Table 3 x2;
    # inside: Table 2 Average, Table 8 with system (4.171), max toxicity, LC win rate
    assert summary["with_ci"] == 7 and summary["paper_inside_ci"] == 4
    koala = metrics["tables"]["Table 2"]["Janus 7B"]["mf-Koala"]
    assert koala == {
        "paper": 4.41,
        "ours": None,
        "delta": None,
        "paper_in_ci": None,
        "status": NOT_RUN,
    }
    json.dumps(metrics)  # plain JSON for dvc metrics
    markdown = scorecard_markdown(cells, "data/paper/paper_numbers.csv")
    line = next(row for row in markdown.splitlines() if row.startswith("| LLaMA 3 70B | Average"))
    assert "| 3.49 | not run (no model for this paper row" in line
    assert (
        "| Janus 7B | Average | 4.17 | 4.100 | -0.070 | [4.050, 4.200] | yes | ours |" in markdown
    )
    assert "## Table 11" in markdown and "What the scorecard cannot cover" in markdown


def test_an_empty_run_is_all_not_run():
    cells = build_cells(
        read_paper_numbers(PAPER),
        {"Janus 7B": "sft"},
        RunResults(judge={}, toxicity={}, alpaca_eval={}),
    )
    assert all(c.status == NOT_RUN and c.ours is None for c in cells)


def test_paper_only_rows_keep_the_paper_number_and_say_why():
    reason = "paper only: OpenAI shut gpt-4-0613 down on 2026-10-23"
    cells = build_cells(
        read_paper_numbers(PAPER),
        {"Janus 7B": "ours"},
        _fake_run(),
        paper_only={"GPT-4-0613": reason},
    )
    retired = [c for c in cells if c.row == "GPT-4-0613"]
    assert retired and all(c.ours is None and c.reason == reason for c in retired)
    assert all(c.paper is not None for c in retired)
    others = [c for c in cells if c.row == "GPT-3.5-Turbo-0125"]
    assert all(c.reason == "no model for this paper row in scorecard.rows" for c in others)
