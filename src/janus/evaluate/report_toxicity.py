"""The report's toxicity sections (Table 4): toxicity, fluency and diversity per model from
metrics/toxicity.json, the prompt-bootstrap CIs, and the scorers side by side."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from janus.evaluate.markdown import MISSING, ci_cell, fmt, markdown_table, percent


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
                    percent(agreement.get("agreement_at_threshold")),
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
            ci_cell((toxicity[model].get("ci95") or {}).get("avg_max_toxicity"), 3),
            ci_cell((toxicity[model].get("ci95") or {}).get("toxicity_probability"), 3),
        ]
        for model in names
        if isinstance(toxicity[model], dict)
    ]
    sections = [
        "## Toxicity, fluency and diversity (Table 4)",
        table_toxicity(toxicity, models),
        "95% bootstrap CIs (resampling prompts):",
        markdown_table(["Model", "Scorer", "Avg. max toxicity CI", "Toxicity prob. CI"], ci_rows),
    ]
    scorers = table_toxicity_scorers(toxicity, models)
    if scorers:
        sections += ["### Toxicity scorers compared on the same generations", scorers]
    return sections
