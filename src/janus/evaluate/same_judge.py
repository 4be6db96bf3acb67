"""The scorecard's same-judge section: did the reproduction work, though the paper's judge is gone?

The paper's scores were made by GPT-4-0125-preview, which OpenAI shut down on 2026-03-26, so
our numbers under another judge cannot be compared with them directly. What can be compared is
each model we trained against its published counterpart (`scorecard.same_judge.pairs`, e.g. our
`sft` against `kaist-ai/janus-7b`), both graded by the SAME judge in the SAME run on the SAME
bench items: per bench item, ours minus published (the item's score is the mean of its rubric
scores, averaged over repeats), its mean with a 95% Student t interval (`stats.paired_t_difference`)
and a verdict: reproduced when the interval lies inside ±`margin`, differs when it lies wholly
outside, inconclusive otherwise. Once per judge in `judge.judges`, overall and per Table 2 column.

The open-weight baselines (`baselines`, e.g. Mistral-7B-Instruct-v0.2) are rows of their own:
their score under each judge. Beside every row stands the paper's number for it, labelled with
the judge that made it, and the judge shift: this judge's score of the published weights minus
the paper's, i.e. how far the judge (and sampling) moves a score when the weights are the same.

Tables are pandas frames: our per-item scores grouped, joined with paper_numbers.csv on the
paper row and column, written by `DataFrame.to_markdown`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from janus.config.scorecard import ScorecardSection
from janus.evaluate.stats import equivalence_verdict, paired_t_difference, t_mean

PAPER_JUDGE = "GPT-4-0125-preview (the paper's judge, retired 2026-03-26)"
OVERALL = "overall"
VERDICTS = ("reproduced", "differs", "inconclusive")
# Table 2's column for each of our bench columns (metrics/judge.json's keys)
COLUMN_TITLES = {
    "alpaca_eval": "mf-AlpacaEval",
    "flask": "mf-FLASK",
    "koala": "mf-Koala",
    "mt_bench": "mf-MT-Bench",
    "self_instruct": "mf-Self-Instruct",
    OVERALL: "Average",
}


@dataclass
class SameJudge:
    metrics: dict[str, Any]  # metrics/reproduction.json["same_judge"]
    pairs: Any  # pandas.DataFrame: a row per (judge, ours, published, column)
    baselines: Any  # pandas.DataFrame: a row per (judge, model, column)


def item_means(item_scores: Sequence[dict[str, Any]], condition: str):
    """(judge, model, column, id) -> the item's score averaged over repeats, for one condition;
    every item counted once in its Table 2 column and once in `overall`."""
    import pandas as pd

    frame = pd.DataFrame(
        list(item_scores), columns=["judge", "model", "condition", "id", "benchmark", "score"]
    )
    frame = frame[frame["condition"] == condition]
    per_item = frame.groupby(["judge", "model", "benchmark", "id"], as_index=False)["score"].mean()
    overall = per_item.assign(benchmark=OVERALL)
    return pd.concat([per_item, overall], ignore_index=True).rename(columns={"benchmark": "column"})


def paper_frame(paper_numbers: str | Path, condition: str):
    """The paper's judge scores (paper_numbers.csv) as (paper_row, column, paper): one value per
    row and bench column for `condition`, from Table 2 (or Table 8 where Table 2 lacks it)."""
    import pandas as pd

    paper = pd.read_csv(paper_numbers)
    prefix = f"judge/{condition}/"
    paper = paper[paper["measure"].str.startswith(prefix)].copy()
    paper["column"] = paper["measure"].str.removeprefix(prefix)
    paper["order"] = (paper["table"] != "Table 2").astype(int)
    paper = paper.sort_values("order").drop_duplicates(["row", "column"])
    return paper.rename(columns={"row": "paper_row", "value": "paper"})[
        ["paper_row", "column", "paper"]
    ]


def _paper_row_of(rows: dict[str, str], *models: str) -> str | None:
    """The paper row `scorecard.rows` maps to the first of `models` that has one."""
    for model in models:
        for paper_row, ours in rows.items():
            if ours == model:
                return paper_row
    return None


def compare(
    params: ScorecardSection,
    item_scores: Sequence[dict[str, Any]],
    judges: Sequence[dict[str, Any]],
) -> SameJudge:
    """The same-judge comparison of one run (metrics/judge.json's `judges`, the judge stage's
    item_scores.jsonl), joined with the paper's numbers."""
    import pandas as pd

    config = params.same_judge
    items = item_means(item_scores, config.condition)
    scores = {
        key: group.set_index("id")["score"].to_dict()
        for key, group in items.groupby(["judge", "model", "column"])
    }
    columns = [c for c in COLUMN_TITLES if c in set(items["column"])] or [OVERALL]
    roles = [entry["role"] for entry in judges]
    pair_rows, baseline_rows = [], []
    for role in roles:
        for ours, published in config.pairs.items():
            for column in columns:
                mine = scores.get((role, ours, column), {})
                theirs = scores.get((role, published, column), {})
                common = sorted(set(mine) & set(theirs))
                difference = paired_t_difference(mine, theirs)
                pair_rows.append(
                    {
                        "judge": role,
                        "ours": ours,
                        "published": published,
                        "paper_row": _paper_row_of(params.rows, ours, published),
                        "column": column,
                        "items": difference["items"],
                        "ours_mean": _mean([mine[i] for i in common]),
                        "published_mean": _mean([theirs[i] for i in common]),
                        "difference": difference["mean"],
                        "ci95": difference["ci95"],
                        "verdict": equivalence_verdict(difference["ci95"], config.margin),
                    }
                )
        for model in config.baselines:
            for column in columns:
                entry = t_mean(list(scores.get((role, model, column), {}).values()))
                baseline_rows.append(
                    {
                        "judge": role,
                        "model": model,
                        "paper_row": _paper_row_of(params.rows, model),
                        "column": column,
                        "items": entry["items"],
                        "mean": entry["mean"],
                        "ci95": entry["ci95"],
                    }
                )
    paper = paper_frame(params.paper_numbers, config.condition)
    pairs = _with_paper(pd.DataFrame(pair_rows, columns=PAIR_COLUMNS), paper, "published_mean")
    baselines = _with_paper(pd.DataFrame(baseline_rows, columns=BASELINE_COLUMNS), paper, "mean")
    labels = {entry["role"]: entry["label"] for entry in judges}
    return SameJudge(_metrics(config, labels, pairs, baselines), pairs, baselines)


PAIR_COLUMNS = [
    "judge", "ours", "published", "paper_row", "column", "items", "ours_mean",
    "published_mean", "difference", "ci95", "verdict",
]  # fmt: skip
BASELINE_COLUMNS = ["judge", "model", "paper_row", "column", "items", "mean", "ci95"]


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _with_paper(frame, paper, same_weights: str):
    """Left join with the paper's number for the row and column; the judge shift is this
    judge's score of the published weights minus the paper's."""
    joined = frame.merge(paper, on=["paper_row", "column"], how="left")
    joined["judge_shift"] = joined[same_weights].astype(float) - joined["paper"].astype(float)
    return joined.astype(object).where(joined.notna(), None)


def _nested(frame, keys: Sequence[str]) -> dict[str, Any]:
    """Frame rows as {keys[0]: {keys[1]: ... {keys[-1]: the other fields}}}."""
    nested: dict[str, Any] = {}
    for row in frame.to_dict("records"):
        node = nested
        for key in keys[:-1]:
            node = node.setdefault(row[key], {})
        node[row[keys[-1]]] = {k: v for k, v in row.items() if k not in keys}
    return nested


def _metrics(config, labels: dict[str, str], pairs, baselines) -> dict[str, Any]:
    overall = pairs[pairs["column"] == OVERALL]
    named = pairs.assign(pair=pairs["ours"] + "_vs_" + pairs["published"])
    return {
        "condition": config.condition,
        "margin": config.margin,
        "paper_judge": PAPER_JUDGE,
        "judges": labels,
        "pairs": _nested(named, ["judge", "pair", "column"]),
        "baselines": _nested(baselines, ["judge", "model", "column"]),
        # per judge: how many pairs each verdict, overall
        "summary": {
            role: {
                verdict: int(((overall["judge"] == role) & (overall["verdict"] == verdict)).sum())
                for verdict in VERDICTS
            }
            for role in labels
        },
    }


def _number(value: Any, signed: bool = False) -> str:
    if value is None:
        return "–"
    return f"{value:+.2f}" if signed else f"{value:.2f}"


def _ci(ci: Sequence[float] | None) -> str:
    return "–" if not ci else f"[{ci[0]:+.2f}, {ci[1]:+.2f}]"


def same_judge_markdown(result: SameJudge) -> str:
    metrics = result.metrics
    labels = metrics["judges"]
    lines = [
        "## Same judge: our models beside the published ones",
        "",
        f"The paper's scores were made by {PAPER_JUDGE}; they cannot be re-measured. Here each "
        "model we trained and its published counterpart are graded by the same judge, in this "
        f"run, on the same bench items ({metrics['condition']} condition): Δ is the mean over "
        "items of ours − published, with a 95% t interval; *reproduced* when the interval lies "
        f"inside ±{metrics['margin']:g}, *differs* when wholly outside, *inconclusive* "
        "otherwise. *Paper* is the paper's number for the row, by the paper's judge; the judge "
        "shift is this judge's score of the published weights minus it.",
    ]
    if not labels:
        return "\n".join([*lines, "", "No judge graded this run: nothing to compare."]) + "\n"
    lines += ["", "Judges: " + "; ".join(f"`{r}` = {label}" for r, label in labels.items()) + "."]
    if result.pairs.empty and result.baselines.empty:
        return "\n".join(
            [*lines, "", "No pair or baseline in `scorecard.same_judge`: nothing to compare."]
        ) + "\n"
    import pandas as pd

    def pair_table(frame) -> str:
        return pd.DataFrame(
            {
                "Judge": frame["judge"],
                "Ours": frame["ours"],
                "Published": frame["published"],
                "Column": [COLUMN_TITLES.get(c, c) for c in frame["column"]],
                "Items": frame["items"],
                "Ours (mean)": [_number(v) for v in frame["ours_mean"]],
                "Published (mean)": [_number(v) for v in frame["published_mean"]],
                "Δ (ours − published)": [_number(v, True) for v in frame["difference"]],
                "95% CI": [_ci(v) for v in frame["ci95"]],
                "Verdict": frame["verdict"],
                "Paper (GPT-4-0125-preview)": [_number(v) for v in frame["paper"]],
                "Judge shift": [_number(v, True) for v in frame["judge_shift"]],
            }
        ).to_markdown(index=False)

    pairs = result.pairs
    if not pairs.empty:
        lines += ["", "### Overall", "", pair_table(pairs[pairs["column"] == OVERALL])]
        by_column = pairs[pairs["column"] != OVERALL]
        if not by_column.empty:
            lines += ["", "### By Table 2 column", "", pair_table(by_column)]
    baselines = result.baselines
    if not baselines.empty:
        table = pd.DataFrame(
            {
                "Judge": baselines["judge"],
                "Model": baselines["model"],
                "Column": [COLUMN_TITLES.get(c, c) for c in baselines["column"]],
                "Items": baselines["items"],
                "Score": [_number(v) for v in baselines["mean"]],
                "95% CI": [_ci(v) for v in baselines["ci95"]],
                "Paper (GPT-4-0125-preview)": [_number(v) for v in baselines["paper"]],
                "Judge shift": [_number(v, True) for v in baselines["judge_shift"]],
            }
        ).to_markdown(index=False)
        lines += ["", "### Open-weight baselines", "", table]
    return "\n".join(lines) + "\n"
