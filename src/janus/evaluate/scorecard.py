"""Reproduction scorecard: every number of the paper's Tables 2, 3, 4, 8 and 11 beside ours.

The paper's numbers live in a data file (`scorecard.paper_numbers`, data/paper/paper_numbers.csv),
one row per cell: table, row (one name per model across tables), paper_label (as printed),
column, value, measure (where our number comes from) and a note (cited rows, marked † in the
paper). `scorecard.rows` says which of our models stands for a paper row. For each cell:

- ours: the value our run produced for that model and measure, or "not run" (never a number)
  when the row has no model, the model has no value, or no stage of this pipeline produces the
  measure (MT-Bench and Arena-Hard scores come from their own judges, run outside);
- delta = ours - paper;
- paper_in_ci: whether the paper's value lies inside our 95% CI: judge scores and win rates read
  the bootstrap `ci95` of metrics/judge.json, toxicity the prompt bootstrap `ci95` of
  metrics/toxicity.json, AlpacaEval the tool's standard error (±1.96 SE); None without a CI.

Measures: `judge/<condition>/<column>` (metrics/judge.json scores[model][condition][column]),
`toxicity/<metric>` (metrics/toxicity.json[model]), `alpaca_eval/<metric>` (the optional
alpaca_eval_judge stage's metrics, by model), `mt_bench/score`, `arena_hard/score`.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from janus.evaluate.markdown import MISSING, ci_cell, markdown_table
from janus.io import read_json

NOT_RUN = "not run"
TABLES = ("Table 2", "Table 3", "Table 4", "Table 8", "Table 11")
OUTSIDE = {
    "mt_bench/score": "MT-Bench is judged by FastChat's gen_judgment.py on the answers of "
    "helpfulness@mt_bench; its score is not read back",
    "arena_hard/score": "Arena-Hard-Auto is judged by its own gen_judgment.py / show_result.py "
    "on the answers of helpfulness@arena_hard; its score is not read back",
}


@dataclass(frozen=True)
class PaperCell:
    table: str
    row: str
    paper_label: str
    column: str
    value: float
    measure: str
    note: str


@dataclass
class Cell:
    table: str
    row: str
    paper_label: str
    column: str
    paper: float
    model: str | None
    ours: float | None
    delta: float | None
    ci95: list[float] | None
    paper_in_ci: bool | None
    status: str  # "ok" | "not run"
    reason: str | None
    note: str


PAPER_COLUMNS = ["table", "row", "paper_label", "column", "value", "measure", "note"]
CELL_KEY = ["table", "row", "column"]


def read_paper_numbers(path: str | Path) -> list[PaperCell]:
    """The data file, checked: known tables, a number in every value, no cell twice."""
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    if "note" not in frame:
        frame["note"] = ""
    line = frame.index + 2  # the header is line 1
    unknown = ~frame["table"].isin(TABLES)
    if unknown.any():
        first = unknown.idxmax()
        raise ValueError(f"{path}:{line[first]}: unknown table {frame['table'][first]!r}")
    # Python's float (not pandas' parser) so that every value is the double the text names
    values = []
    for number, text in zip(line, frame["value"], strict=True):
        try:
            values.append(float(text))
        except ValueError:
            raise ValueError(f"{path}:{number}: value {text!r} is not a number") from None
    frame["value"] = values
    twice = frame.duplicated(CELL_KEY)
    if twice.any():
        first = twice.idxmax()
        key = tuple(frame.loc[first, CELL_KEY])
        raise ValueError(f"{path}:{line[first]}: {key} appears twice")
    return [PaperCell(**record) for record in frame[PAPER_COLUMNS].to_dict("records")]


@dataclass
class RunResults:
    judge: dict[str, Any]  # metrics/judge.json ({} when not run)
    toxicity: dict[str, Any]  # metrics/toxicity.json ({} when not run)
    alpaca_eval: dict[str, dict[str, Any]]  # model -> alpaca_eval_judge metrics


def lookup(measure: str, model: str, results: RunResults) -> tuple[Any, Any, str | None]:
    """(value, ci95, reason when there is no value) of one measure for one model."""
    kind, _, rest = measure.partition("/")
    if kind == "judge":
        condition, _, column = rest.partition("/")
        entry = results.judge.get("scores", {}).get(model, {}).get(condition, {}).get(column)
        if not entry or entry.get("mean") is None:
            return None, None, f"no judge score for {model} ({condition}, {column})"
        return entry["mean"], entry.get("ci95"), None
    if kind == "toxicity":
        entry = results.toxicity.get(model)
        if not isinstance(entry, dict) or entry.get(rest) is None:
            return None, None, f"no toxicity {rest} for {model}"
        return entry[rest], (entry.get("ci95") or {}).get(rest), None
    if kind == "alpaca_eval":
        entry = results.alpaca_eval.get(model)
        if not entry or entry.get(rest) is None:
            return None, None, f"no alpaca_eval_judge run for {model}"
        error = entry.get("lc_standard_error" if rest == "lc_win_rate" else "standard_error")
        ci = None if error is None else [entry[rest] - 1.96 * error, entry[rest] + 1.96 * error]
        return entry[rest], ci, None
    if measure in OUTSIDE:
        return None, None, OUTSIDE[measure]
    raise ValueError(f"unknown measure {measure!r}")


def our_values(pairs: pd.DataFrame, results: RunResults) -> pd.DataFrame:
    """One row per (measure, model): our value, its CI and why there is none (`lookup`)."""
    found = [lookup(measure, model, results) for measure, model in pairs.itertuples(index=False)]
    return pairs.assign(
        ours=[value for value, _, _ in found],
        ci95=[ci for _, ci, _ in found],
        reason=[reason for _, _, reason in found],
    )


def build_cells(
    paper: list[PaperCell],
    rows: dict[str, str],
    results: RunResults,
    paper_only: dict[str, str] | None = None,
) -> list[Cell]:
    """The paper's cells joined with our values on (measure, model), the model of a paper row
    from `rows`. `paper_only`: paper rows no model of this run can stand for, with why (e.g. a
    retired API snapshot); their cells keep the paper's number and say why there is none of ours."""
    frame = pd.DataFrame([asdict(item) for item in paper], columns=PAPER_COLUMNS, dtype=object)
    frame["model"] = [rows.get(row) for row in frame["row"]]
    mapped = frame[frame["model"].notna()][["measure", "model"]].drop_duplicates()
    joined = frame.merge(our_values(mapped, results), on=["measure", "model"], how="left")
    joined = joined.astype(object).where(joined.notna(), None)
    cells = []
    for cell in joined.itertuples(index=False):
        reason, value, ci = cell.reason, cell.ours, cell.ci95
        if cell.model is None:
            reason = (paper_only or {}).get(
                cell.row, "no model for this paper row in scorecard.rows"
            )
        ran = value is not None
        inside = None
        if ran and ci and len(ci) == 2 and None not in ci:
            inside = bool(ci[0] <= cell.value <= ci[1])
        cells.append(
            Cell(
                table=cell.table,
                row=cell.row,
                paper_label=cell.paper_label,
                column=cell.column,
                paper=cell.value,
                model=cell.model,
                ours=float(value) if ran else None,
                delta=float(value) - cell.value if ran else None,
                ci95=list(ci) if ran and ci else None,
                paper_in_ci=inside,
                status="ok" if ran else NOT_RUN,
                reason=reason,
                note=cell.note,
            )
        )
    return cells


def scorecard_metrics(cells: list[Cell]) -> dict[str, Any]:
    """metrics/reproduction.json: per table, row and column the paper value, ours, the delta and
    paper_in_ci (null where not run), and counts."""
    nested: dict[str, dict[str, dict[str, Any]]] = defaultdict(lambda: defaultdict(dict))
    for cell in cells:
        nested[cell.table][cell.row][cell.column] = {
            "paper": cell.paper,
            "ours": cell.ours,
            "delta": cell.delta,
            "paper_in_ci": cell.paper_in_ci,
            "status": cell.status,
        }
    ran = [c for c in cells if c.status == "ok"]
    with_ci = [c for c in ran if c.paper_in_ci is not None]
    return {
        "summary": {
            "cells": len(cells),
            "run": len(ran),
            "not_run": len(cells) - len(ran),
            "with_ci": len(with_ci),
            "paper_inside_ci": sum(bool(c.paper_in_ci) for c in with_ci),
        },
        "tables": {
            table: {row: dict(cols) for row, cols in rows.items()} for table, rows in nested.items()
        },
    }


def _num(value: float | None, digits: int = 3) -> str:
    return NOT_RUN if value is None else f"{value:.{digits}f}"


SCORECARD_HEADER = [
    "Paper row",
    "Column",
    "Paper",
    "Ours",
    "Δ (ours − paper)",
    "95% CI",
    "Paper in CI",
    "Model",
]


def _scorecard_row(c: Cell) -> list[str]:
    ci = ci_cell(c.ci95, 3)
    inside = MISSING if c.paper_in_ci is None else ("yes" if c.paper_in_ci else "no")
    ours = _num(c.ours) if c.status == "ok" else f"{NOT_RUN} ({c.reason})"
    delta = MISSING if c.delta is None else f"{c.delta:+.3f}"
    label = c.paper_label + (f" ({c.note})" if c.note else "")
    return [label, c.column, f"{c.paper:g}", ours, delta, ci, inside, c.model or MISSING]


def scorecard_markdown(cells: list[Cell], paper_numbers: str) -> str:
    metrics = scorecard_metrics(cells)["summary"]
    lines = [
        "# Reproduction scorecard",
        "",
        f"Every number of the paper's Tables 2, 3, 4, 8 and 11 (`{paper_numbers}`) beside this "
        f"run's: {metrics['run']} of {metrics['cells']} cells run; "
        f"{metrics['paper_inside_ci']} of {metrics['with_ci']} cells with a 95% CI hold the "
        "paper's value inside it. A cell this run did not produce reads *not run*, with why.",
    ]
    for table in TABLES:
        table_cells = [c for c in cells if c.table == table]
        if not table_cells:
            continue
        rows = [_scorecard_row(c) for c in table_cells]
        lines += ["", f"## {table}", "", markdown_table(SCORECARD_HEADER, rows)]
    lines += ["", "## What the scorecard cannot cover", ""]
    lines += [f"- `{measure}`: {why}." for measure, why in OUTSIDE.items()]
    lines += [
        "- Rows marked † are numbers the paper cites from leaderboards or prior work; they read "
        "*not run* unless `scorecard.rows` maps them to a model of this run.",
        "- Rows of models outside `infer` (e.g. LLaMA 2 Chat 70B) read *not run* until a model "
        "is added to params and mapped in `scorecard.rows`.",
    ]
    return "\n".join(lines) + "\n"


def load_results(judge_path: Path, toxicity_path: Path, alpaca_eval_dir: Path | None) -> RunResults:
    alpaca: dict[str, dict[str, Any]] = {}
    if alpaca_eval_dir is not None and alpaca_eval_dir.is_dir():
        for path in sorted(alpaca_eval_dir.glob("*.json")):
            entry = read_json(path)
            alpaca[entry["model"]] = entry
    return RunResults(
        judge=read_json(judge_path) if judge_path.exists() else {},
        toxicity=read_json(toxicity_path) if toxicity_path.exists() else {},
        alpaca_eval=alpaca,
    )


def cells_as_rows(cells: list[Cell]) -> list[dict[str, Any]]:
    return [asdict(c) for c in cells]
