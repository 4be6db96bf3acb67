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
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from janus.config.bench import BENCH_SOURCE_NAMES
from janus.config.infer import InferSection
from janus.config.report import ReportSection
from janus.evaluate.diversity import response_diversity
from janus.evaluate.judge.agreement import agreement_markdown, judge_agreements
from janus.evaluate.rows import read_bench
from janus.evaluate.winrate import OUTCOMES
from janus.io import read_json, read_jsonl
from janus.logging_utils import get_logger

log = get_logger(__name__)

SOURCE_TITLES = {
    "alpaca_eval": "mf-AlpacaEval",
    "flask": "mf-FLASK",
    "koala": "mf-Koala",
    "mt_bench": "mf-MT-Bench",
    "self_instruct": "mf-Self-Instruct",
}
MISSING = "–"


def fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return MISSING
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def score_cell(entry: dict[str, Any] | None) -> str:
    """'4.12 ± 0.03' (mean ± std over repeats), '4.12' with one repeat, '–' without scores."""
    if not entry or entry.get("mean") is None:
        return MISSING
    if entry.get("std") is None:
        return fmt(entry["mean"])
    return f"{entry['mean']:.2f} ± {entry['std']:.2f}"


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# tables
# ---------------------------------------------------------------------------------------------


def judged_sources(judge: dict[str, Any]) -> list[str]:
    """The bench sources with scores, in the paper's column order."""
    found = {
        source
        for conditions in judge.get("scores", {}).values()
        for by_source in conditions.values()
        for source in by_source
        if source != "overall"
    }
    return [name for name in BENCH_SOURCE_NAMES if name in found] + sorted(
        found - set(BENCH_SOURCE_NAMES)
    )


def _scores(judge: dict[str, Any], model: str, condition: str) -> dict[str, Any]:
    return judge.get("scores", {}).get(model, {}).get(condition, {})


def _counts(judge: dict[str, Any], model: str, condition: str) -> dict[str, Any]:
    return judge.get("counts", {}).get(model, {}).get(condition, {})


def _left_out(counts: dict[str, Any]) -> str:
    if not counts:
        return "not judged"
    return f"{counts.get('empty_responses', 0)} / {counts.get('unparsed_judgements', 0)}"


def table_scores(judge: dict[str, Any], models: Sequence[str], condition: str = "system") -> str:
    """Table 2: mean score per source and overall, one row per model."""
    sources = judged_sources(judge)
    header = [
        "Model",
        *(SOURCE_TITLES.get(s, s) for s in sources),
        "Average",
        "Items",
        "Empty / unparsed",
    ]
    rows = []
    for model in models:
        scores = _scores(judge, model, condition)
        rows.append(
            [
                model,
                *(score_cell(scores.get(source)) for source in sources),
                score_cell(scores.get("overall")),
                fmt(scores.get("overall", {}).get("items")),
                _left_out(_counts(judge, model, condition)),
            ]
        )
    return markdown_table(header, rows)


def table_system_message(judge: dict[str, Any], models: Sequence[str]) -> str:
    """Table 8: overall score with and without a system message at test time."""
    header = ["Model", "No system message", "Multifaceted system message", "Difference"]
    rows = []
    for model in models:
        without = _scores(judge, model, "no_system").get("overall")
        with_system = _scores(judge, model, "system").get("overall")
        gain = system_message_gain(judge, model)
        rows.append(
            [
                model,
                score_cell(without),
                score_cell(with_system),
                MISSING if gain is None else f"{gain:+.2f}",
            ]
        )
    return markdown_table(header, rows)


def system_message_gain(judge: dict[str, Any], model: str) -> float | None:
    without = _scores(judge, model, "no_system").get("overall", {}).get("mean")
    with_system = _scores(judge, model, "system").get("overall", {}).get("mean")
    if without is None or with_system is None:
        return None
    return with_system - without


@dataclass(frozen=True)
class BestOfNPair:
    name: str  # the best-of-N model
    plain: str | None  # the model that samples the same checkpoint once
    n: int


class ReportParams(Protocol):
    """The sections the report stage reads: `load_sections(...)` of them, or the whole Params."""

    infer: InferSection
    report: ReportSection


def best_of_n_pairs(params: ReportParams) -> list[BestOfNPair]:
    """Each best-of-N entry with the plain model that shares its checkpoint (by path)."""
    pairs = []
    for name, entry in params.infer.best_of_n.items():
        plain = next(
            (
                model
                for model, checkpoint in params.infer.models.items()
                if checkpoint.path == entry.path
            ),
            None,
        )
        pairs.append(BestOfNPair(name, plain, entry.n))
    return pairs


def best_of_n_gain(judge: dict[str, Any], pair: BestOfNPair) -> float | None:
    if pair.plain is None:
        return None
    best = _scores(judge, pair.name, "system").get("overall", {}).get("mean")
    plain = _scores(judge, pair.plain, "system").get("overall", {}).get("mean")
    return None if best is None or plain is None else best - plain


def table_best_of_n(judge: dict[str, Any], pairs: Sequence[BestOfNPair]) -> str:
    """Table 11: plain sampling, then best-of-N of the same checkpoint."""
    sources = judged_sources(judge)
    header = ["Model", *(SOURCE_TITLES.get(s, s) for s in sources), "Average"]
    rows = []
    for pair in pairs:
        for label, model in (
            (pair.plain or MISSING, pair.plain),
            (f"+ Best-of-{pair.n} ({pair.name})", pair.name),
        ):
            scores = _scores(judge, model, "system") if model else {}
            rows.append(
                [
                    label,
                    *(score_cell(scores.get(s)) for s in sources),
                    score_cell(scores.get("overall")),
                ]
            )
    return markdown_table(header, rows)


def table_win_rates(judge: dict[str, Any]) -> str:
    """Figure 3: win / tie / loss of the first model of each pair (rule in janus.evaluate.winrate)."""
    header = [
        "Model vs opponent",
        "Win",
        "Tie",
        "Loss",
        "Win + tie",
        "Decided",
        "Unparsed",
        "Empty",
    ]
    rows = []
    for key, entry in judge.get("pairwise", {}).items():
        rows.append(
            [
                key.replace("_vs_", " vs "),
                *(_percent(entry.get(f"{outcome}_rate")) for outcome in OUTCOMES),
                _percent(entry.get("win_or_tie_rate")),
                entry.get("decided", 0),
                entry.get("unparsed", 0),
                entry.get("empty", 0),
            ]
        )
    return markdown_table(header, rows)


def _percent(value: float | None) -> str:
    return MISSING if value is None else f"{100 * value:.1f}%"


def table_diversity(summary: dict[str, dict[str, Any]], models: Sequence[str]) -> str:
    """Figure 9: ROUGE-L among a model's responses to the system messages of one instruction."""
    header = ["Model", "Mean ROUGE-L", "Max ROUGE-L", "Instructions", "Empty responses left out"]
    rows = []
    for model in models:
        entry = summary.get(model, {})
        rows.append(
            [
                model,
                fmt(entry.get("rouge_l_mean"), 3),
                fmt(entry.get("rouge_l_max"), 3),
                entry.get("instructions", 0),
                entry.get("empty_responses", 0),
            ]
        )
    return markdown_table(header, rows)


def table_train_test(bench: dict[str, Any]) -> str:
    """Figure 5: each bench system message's highest ROUGE-L against the training ones."""
    entry = bench.get("train_test_rouge_l", {})
    header = [
        "Bench system messages",
        "Training system messages",
        "Mean of max ROUGE-L",
        "Max of max ROUGE-L",
    ]
    return markdown_table(
        header,
        [
            [
                entry.get("bench_messages", MISSING),
                entry.get("train_messages", MISSING),
                fmt(entry.get("mean_of_max"), 3),
                fmt(entry.get("max_of_max"), 3),
            ]
        ],
    )


def table_toxicity(toxicity: dict[str, Any], models: Sequence[str]) -> str:
    """Table 4: toxicity (avg max, probability), fluency (output perplexity), diversity."""
    header = [
        "Model",
        "Avg. max toxicity",
        "Toxicity prob.",
        "Output PPL",
        "dist-2",
        "dist-3",
        "Unscored",
    ]
    names = [m for m in models if m in toxicity] + sorted(set(toxicity) - set(models))
    rows = []
    for model in names:
        entry = toxicity[model]
        if not isinstance(entry, dict):
            continue
        rows.append(
            [
                model,
                fmt(entry.get("avg_max_toxicity"), 3),
                fmt(entry.get("toxicity_probability"), 3),
                fmt(entry.get("perplexity")),
                fmt(entry.get("dist_2")),
                fmt(entry.get("dist_3")),
                entry.get("unscored_generations", MISSING),
            ]
        )
    return markdown_table(header, rows)


def _ci_cell(entry: dict[str, Any], key: str) -> str:
    ci = (entry.get("ci95") or {}).get(key)
    return MISSING if not ci else f"[{ci[0]:.3f}, {ci[1]:.3f}]"


def table_toxicity_scorers(toxicity: dict[str, Any], models: Sequence[str]) -> str | None:
    """Table 4's toxicity by every configured scorer on the same generations, with each extra
    scorer's agreement with the primary one (Pearson r; share agreeing at the threshold)."""
    names = [m for m in models if m in toxicity] + sorted(set(toxicity) - set(models))
    rows = []
    for model in names:
        entry = toxicity[model]
        if not isinstance(entry, dict) or not entry.get("by_scorer"):
            continue
        primary = entry.get("scorer")
        for pair, agreement in (entry.get("agreement") or {}).items():
            other = pair.split("_vs_", 1)[1]
            by = entry["by_scorer"]
            rows.append(
                [
                    model,
                    f"{primary} / {other}",
                    f"{fmt(by.get(primary, {}).get('avg_max_toxicity'), 3)} / "
                    f"{fmt(by.get(other, {}).get('avg_max_toxicity'), 3)}",
                    f"{fmt(by.get(primary, {}).get('toxicity_probability'), 3)} / "
                    f"{fmt(by.get(other, {}).get('toxicity_probability'), 3)}",
                    fmt(agreement.get("pearson"), 3),
                    _percent(agreement.get("agreement_at_threshold")),
                    agreement.get("texts", 0),
                ]
            )
    if not rows:
        return None
    header = [
        "Model",
        "Scorers",
        "Avg. max toxicity",
        "Toxicity prob.",
        "Pearson r",
        "Agree at threshold",
        "Texts",
    ]
    return markdown_table(header, rows)


def toxicity_sections(toxicity: dict[str, Any], models: Sequence[str]) -> list[str]:
    """Table 4 (every model in toxicity params, with bootstrap CIs) and, when more than one
    scorer is configured, the scorers side by side with their agreement."""
    names = [m for m in models if m in toxicity] + sorted(set(toxicity) - set(models))
    ci_rows = [
        [
            model,
            toxicity[model].get("scorer", MISSING),
            _ci_cell(toxicity[model], "avg_max_toxicity"),
            _ci_cell(toxicity[model], "toxicity_probability"),
        ]
        for model in names
        if isinstance(toxicity[model], dict)
    ]
    sections = [
        "## Toxicity, fluency and diversity (Table 4)",
        table_toxicity(toxicity, models),
        "95% bootstrap CIs (resampling prompts):",
        markdown_table(
            ["Model", "Scorer", "Avg. max toxicity CI", "Toxicity prob. CI"], ci_rows
        ),
    ]
    scorers = table_toxicity_scorers(toxicity, models)
    if scorers:
        sections += ["### Toxicity scorers compared on the same generations", scorers]
    return sections


def _llm_row(stage: str, llm: dict[str, Any]) -> list[Any]:
    return [
        stage,
        llm.get("items", MISSING),  # requests sent and cache hits are per run: runtime/, not here
        llm.get("invalid_outputs", MISSING),
        llm.get("failed", MISSING),
        llm.get("prompt_tokens", MISSING),
        llm.get("completion_tokens", MISSING),
        fmt(llm.get("cost_usd"), 4),
    ]


# ---------------------------------------------------------------------------------------------
# judge confidence and health (CIs, steerability, position bias, length bias)
# ---------------------------------------------------------------------------------------------


def ci_cell(ci: Sequence[float] | None, digits: int = 2, percent: bool = False) -> str:
    if not ci:
        return MISSING
    if percent:
        return f"[{100 * ci[0]:.1f}%, {100 * ci[1]:.1f}%]"
    return f"[{ci[0]:.{digits}f}, {ci[1]:.{digits}f}]"


def table_confidence(judge: dict[str, Any], models: Sequence[str]) -> str:
    """Overall mean score with its bootstrap 95% CI (bench items resampled), per condition."""
    header = ["Model", "Condition", "Mean", "95% CI", "Items", "Repeats"]
    rows = []
    for model in models:
        for condition in ("system", "no_system"):
            entry = _scores(judge, model, condition).get("overall")
            if not entry:
                continue
            rows.append(
                [
                    model,
                    condition,
                    fmt(entry.get("mean")),
                    ci_cell(entry.get("ci95")),
                    entry.get("items", MISSING),
                    entry.get("repeats", MISSING),
                ]
            )
    return markdown_table(header, rows or [[MISSING] * len(header)])


def table_gap_and_steerability(judge: dict[str, Any], models: Sequence[str]) -> str:
    """Table 8's gap (with minus without a system message) and steerability (own rubrics minus
    another system message's of the same instruction), each paired over items with a 95% CI."""
    health = judge.get("health", {})
    gaps, steer = health.get("system_message_gap", {}), judge.get("steerability", {})
    header = [
        "Model",
        "System-message gap",
        "95% CI",
        "Items",
        "Steerability (matched − mismatched)",
        "95% CI",
        "Matched / mismatched",
        "Items",
    ]
    rows = []
    for model in models:
        gap, entry = gaps.get(model, {}), steer.get(model, {})
        rows.append(
            [
                model,
                MISSING if gap.get("mean") is None else f"{gap['mean']:+.2f}",
                ci_cell(gap.get("ci95")),
                gap.get("items", MISSING),
                MISSING if entry.get("mean") is None else f"{entry['mean']:+.2f}",
                ci_cell(entry.get("ci95")),
                f"{fmt(entry.get('matched_mean'))} / {fmt(entry.get('mismatched_mean'))}",
                entry.get("items", MISSING),
            ]
        )
    return markdown_table(header, rows)


def judge_health_lines(judge: dict[str, Any]) -> list[str]:
    """Unparsed rate per reason, agreement between repeats, position flips, length correlation."""
    health, parse = judge.get("health", {}), judge.get("parse", {})
    agreement = health.get("repeat_agreement", {})
    flips = health.get("position_flip", {})
    length = health.get("length_correlation", {}).get("pooled", {})
    by_reason = parse.get("rate_by_reason", {})
    reasons = ", ".join(f"{k} {_percent(v)}" for k, v in by_reason.items()) or "none"
    seen = "sees" if judge.get("include_system_message") else "does not see (F.2)"
    return [
        f"- The judge {seen} the system message.",
        f"- Unparsed judgements: {_percent(parse.get('unparsed_rate'))} of "
        f"{parse.get('judgements', 0)}; by reason: {reasons}; re-asked: {parse.get('reasked', 0)}.",
        f"- Agreement between repeats (same response and rubric): exact "
        f"{_percent(agreement.get('exact'))}, within one point {_percent(agreement.get('within_one'))}"
        f" over {agreement.get('pairs', 0)} pairs of repeats.",
        f"- Pairwise position flips (verdict changes when the order is swapped): "
        f"{_percent(flips.get('rate'))} of {flips.get('comparisons', 0)} comparisons.",
        f"- Pearson correlation of item score with response length (characters): "
        f"{fmt(length.get('pearson'))} over {length.get('items', 0)} items.",
    ]


def table_win_rate_ci(judge: dict[str, Any]) -> str:
    header = ["Model vs opponent", "Win 95% CI", "Tie 95% CI", "Loss 95% CI", "Win + tie 95% CI"]
    rows = []
    for key, entry in judge.get("pairwise", {}).items():
        ci = entry.get("ci95", {})
        rows.append(
            [
                key.replace("_vs_", " vs "),
                *(ci_cell(ci.get(f"{o}_rate"), percent=True) for o in OUTCOMES),
                ci_cell(ci.get("win_or_tie_rate"), percent=True),
            ]
        )
    return markdown_table(header, rows)


def judge_sections(judge: dict[str, Any], models: Sequence[str]) -> list[str]:
    """The report's judge-confidence sections (owned with the judge, apart from other tables)."""
    sections = [
        "## How much to trust the judge scores",
        "Bootstrap 95% confidence intervals resample bench items (seeded, `judge.bootstrap_*`).",
        table_confidence(judge, models),
        "### System-message gap (Table 8) and steerability",
        "Steerability grades each response against the rubrics of another system message of the "
        "same instruction: how much higher it scores on its own says how much the system "
        "message changed the answer (0: not at all).",
        table_gap_and_steerability(judge, models),
    ]
    if judge.get("pairwise"):
        sections += ["### Win-rate confidence intervals", table_win_rate_ci(judge)]
    sections += ["### Judge health", "\n".join(judge_health_lines(judge))]
    return sections


# ---------------------------------------------------------------------------------------------
# the report
# ---------------------------------------------------------------------------------------------


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
    grouped: dict[tuple[str, str, str, str], list[float]] = defaultdict(list)
    for row in item_scores:
        grouped[(row["model"], row["condition"], row["source"], row["id"])].append(row["score"])
    return [
        {
            "model": model,
            "group": f"{model} ({condition})",
            "condition": condition,
            "source": source,
            "id": item_id,
            "score": sum(scores) / len(scores),
        }
        for (model, condition, source, item_id), scores in sorted(grouped.items())
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
        f"({_percent(parse.get('unparsed_rate'))}), reasons {parse.get('reasons', {}) or 'none'}.",
        markdown_table(
            [
                "Stage",
                "Items",
                "Invalid answers",
                "Failed",
                "Prompt tokens",
                "Completion tokens",
                "Cost (USD)",
            ],
            [_llm_row("bench", bench.get("llm", {})), _llm_row("judge", judge.get("llm", {}))],
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
