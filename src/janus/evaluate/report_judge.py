"""The report's judge-confidence sections: bootstrap CIs of the mean scores and win rates, the
system-message gap and steerability, and the judge's health (unparsed rate, agreement between
repeats, position flips, length correlation), all read from metrics/judge.json."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from janus.evaluate.markdown import MISSING, ci_cell, fmt, markdown_table, percent
from janus.evaluate.report_tables import scores_of
from janus.evaluate.winrate import OUTCOMES


def table_confidence(judge: dict[str, Any], models: Sequence[str]) -> str:
    """Overall mean score with its bootstrap 95% CI (bench items resampled), per condition."""
    header = ["Model", "Condition", "Mean", "95% CI", "Items", "Repeats"]
    rows = []
    for model in models:
        for condition in ("system", "no_system"):
            entry = scores_of(judge, model, condition).get("overall")
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
    reasons = ", ".join(f"{k} {percent(v)}" for k, v in by_reason.items()) or "none"
    seen = "sees" if judge.get("include_system_message") else "does not see (F.2)"
    return [
        f"- The judge {seen} the system message.",
        f"- Unparsed judgements: {percent(parse.get('unparsed_rate'))} of "
        f"{parse.get('judgements', 0)}; by reason: {reasons}; re-asked: {parse.get('reasked', 0)}.",
        f"- Agreement between repeats (same response and rubric): exact "
        f"{percent(agreement.get('exact'))}, within one point {percent(agreement.get('within_one'))}"
        f" over {agreement.get('pairs', 0)} pairs of repeats.",
        f"- Pairwise position flips (verdict changes when the order is swapped): "
        f"{percent(flips.get('rate'))} of {flips.get('comparisons', 0)} comparisons.",
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
                *(ci_cell(ci.get(f"{o}_rate"), as_percent=True) for o in OUTCOMES),
                ci_cell(ci.get("win_or_tie_rate"), as_percent=True),
            ]
        )
    return markdown_table(header, rows)


def judge_sections(judge: dict[str, Any], models: Sequence[str]) -> list[str]:
    """The report's judge-confidence sections (owned with the judge, apart from other tables)."""
    sections = [
        "## How much to trust the judge scores",
        "Bootstrap 95% confidence intervals resample bench items (seeded, `judge_scores.bootstrap_*`).",
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
