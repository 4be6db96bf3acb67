"""Stage `report`: the paper's evaluation tables in `reports/report.md`, plot data for
`dvc plots`, and `metrics/report.json` (response diversity and judge-derived differences).

Tables, each in the shape of the paper's:
- Table 2: mean judge score (1-5) per bench source and overall, one row per model;
- Table 8: with and without a system message at test time;
- Table 11: best-of-N against plain sampling of the same checkpoint;
- Figure 3: pairwise win / tie / loss;
- Figure 9: response diversity across the system messages of one instruction (ROUGE-L);
- Figure 5: train-test ROUGE-L of system messages;
- Table 4: toxicity, fluency and diversity (from `metrics/toxicity.json`, when present);
- the agreement between judges, when more than one graded (`janus.evaluate.judge.agreement`).
Every mean sits next to what it leaves out (empty responses, unparsed judgements).

The tables live in janus.evaluate.report_tables, report_toxicity and report_judge; this module
reads the inputs and puts the sections in order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from janus.evaluate.diversity import response_diversity
from janus.evaluate.judge.agreement import agreement_markdown, judge_agreements
from janus.evaluate.markdown import MISSING, markdown_table, percent
from janus.evaluate.report_judge import judge_sections
from janus.evaluate.report_tables import (
    LLM_HEADER,
    ReportParams,
    best_of_n_gain,
    best_of_n_pairs,
    llm_row,
    system_message_gain,
    table_best_of_n,
    table_diversity,
    table_scores,
    table_system_message,
    table_train_test,
    table_win_rates,
)
from janus.evaluate.report_toxicity import toxicity_sections
from janus.evaluate.rows import read_bench
from janus.evaluate.winrate import OUTCOMES
from janus.io import read_json, read_jsonl
from janus.logging_utils import get_logger

log = get_logger(__name__)


@dataclass
class ReportInputs:
    judge: dict[str, Any]  # metrics/judge.json
    bench: dict[str, Any]  # metrics/bench.json
    bench_rows: list[dict[str, Any]]
    responses: list[dict[str, Any]]  # every model's response rows
    item_scores: list[dict[str, Any]]  # outputs/judge/item_scores.jsonl, the primary judge's
    toxicity: dict[str, Any] | None  # metrics/toxicity.json, when the toxicity stage ran
    # outputs/judge/absolute.jsonl: every judge's judgements (the agreement between judges)
    judgements: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Report:
    markdown: str
    metrics: dict[str, Any]
    plots: dict[str, list[dict[str, Any]]]  # plot file name -> rows


def report_models(params: ReportParams, judge: dict[str, Any]) -> list[str]:
    models = list(params.report.models) or params.infer.model_names()
    missing = [m for m in models if m not in judge.get("scores", {})]
    if missing:
        log.warning("report: no judge scores for %s (shown as not judged)", missing)
    return models


def score_plot_rows(item_scores: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per judged item: its score averaged over repeats (score distributions)."""
    keys = ["model", "condition", "source", "id"]
    if not item_scores:
        return []
    means = pd.DataFrame(item_scores).groupby(keys, sort=True)["score"].mean()
    return [
        {
            "model": model,
            "group": f"{model} ({condition})",
            "condition": condition,
            "source": source,
            "id": item_id,
            "score": float(score),
        }
        for (model, condition, source, item_id), score in means.items()
    ]


def win_rate_plot_rows(judge: dict[str, Any]) -> list[dict[str, Any]]:
    """Stacked bars: one row per (pair, outcome); `outcome_order` keeps win, tie, loss in order."""
    return [
        {
            "pair": key.replace("_vs_", " vs "),
            "outcome": outcome,
            "outcome_order": order,
            "rate": entry.get(f"{outcome}_rate") or 0.0,
        }
        for key, entry in judge.get("pairwise", {}).items()
        for order, outcome in enumerate(OUTCOMES)
    ]


def build_report(params: ReportParams, inputs: ReportInputs) -> Report:
    judge, bench = inputs.judge, inputs.bench
    models = report_models(params, judge)
    instruction_of = {row["id"]: row["instruction_id"] for row in inputs.bench_rows}
    diversity_rows, diversity = response_diversity(inputs.responses, instruction_of)
    pairs = best_of_n_pairs(params)

    parse = judge.get("parse", {})
    sections = [
        "# Janus evaluation report",
        f"Judge: {judge.get('format', MISSING)} format, {judge.get('repeats', MISSING)} repeat(s) "
        "(mean ± sample std over repeats). Bench: "
        f"{bench.get('rows', MISSING)} rows (instructions: {bench.get('instructions', MISSING)}). "
        "Empty model responses are not judged: they are left out of every mean and counted "
        "in *Empty / unparsed* (empty responses / unparsed judgements).",
        "## Multifaceted Bench scores (Table 2)",
        table_scores(judge, models, "system"),
        "## With and without a system message (Table 8)",
        table_system_message(judge, models),
    ]
    if pairs:
        sections += [
            "## Best-of-N against plain sampling (Table 11)",
            table_best_of_n(judge, pairs),
        ]
    if judge.get("pairwise"):
        sections += [
            "## Pairwise win / tie / loss (Figure 3)",
            "Each comparison is judged in both orders; a win counts only when both orders prefer "
            "the same response, anything else is a tie.",
            table_win_rates(judge),
        ]
    sections += [
        "## Response diversity across system messages (Figure 9)",
        "ROUGE-L F1 between a model's responses to the different system messages of one "
        "instruction; lower is more diverse.",
        table_diversity(diversity, models),
        "## Train-test similarity of system messages (Figure 5)",
        table_train_test(bench),
    ]
    if inputs.toxicity:
        sections += toxicity_sections(inputs.toxicity, models)
    sections += judge_sections(judge, models)
    judges = judge.get("judges") or []
    agreements = judge_agreements(
        inputs.judgements,
        [entry["role"] for entry in judges],
        inputs.bench_rows,
        params.report.agreement,
    )
    sections += [
        "### Agreement between judges",
        "Two judges' scores of the same response, rubric and repeat; quadratic-weighted "
        "Cohen's kappa, Pearson, Spearman, exact and within-one agreement, with bootstrap 95% "
        "CIs over bench items.",
        agreement_markdown(agreements, {entry["role"]: entry["label"] for entry in judges}),
    ]
    sections += [
        "## Data health",
        f"- Bench rows dropped: {bench.get('dropped', {}) or 'none'}; judge skipped bench rows: "
        f"{judge.get('bench', {}).get('dropped', {}) or 'none'}.",
        f"- Judgements: {parse.get('judgements', 0)}, unparsed {parse.get('unparsed', 0)} "
        f"({percent(parse.get('unparsed_rate'))}), reasons {parse.get('reasons', {}) or 'none'}.",
        markdown_table(
            LLM_HEADER,
            [llm_row("bench", bench.get("llm", {})), llm_row("judge", judge.get("llm", {}))],
        ),
    ]
    metrics = {
        "diversity": diversity,
        "system_message_gain": {model: system_message_gain(judge, model) for model in models},
        "best_of_n_gain": {pair.name: best_of_n_gain(judge, pair) for pair in pairs},
        "judge_agreement": agreements,
    }
    plots = {
        "judge_scores.json": score_plot_rows(inputs.item_scores),
        "win_rates.json": win_rate_plot_rows(judge),
        "diversity.json": diversity_rows,
    }
    return Report("\n\n".join(sections) + "\n", metrics, plots)


def load_report_inputs(
    judge_metrics: Path,
    bench_metrics: Path,
    bench_path: Path,
    responses_dir: Path,
    item_scores: Path,
    toxicity_metrics: Path,
    models: Sequence[str],
    judgements: Path | None = None,
) -> ReportInputs:
    responses = []
    for model in models:
        path = responses_dir / f"{model}.jsonl"
        if path.exists():
            responses += read_jsonl(path)
    judge = read_json(judge_metrics)
    primary = next((j["role"] for j in judge.get("judges", []) if j["primary"]), None)
    return ReportInputs(
        judge=judge,
        bench=read_json(bench_metrics),
        bench_rows=read_bench(bench_path)[0],
        responses=responses,
        # the report's scores are the primary judge's
        item_scores=[row for row in read_jsonl(item_scores) if row.get("judge") == primary],
        toxicity=read_json(toxicity_metrics) if toxicity_metrics.exists() else None,
        judgements=read_jsonl(judgements) if judgements is not None else [],
    )
