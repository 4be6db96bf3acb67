"""The report's score tables (janus.evaluate.report): Table 2 (scores per bench source), Table 8
(with and without a system message), Table 11 (best-of-N against plain sampling), Figure 3
(pairwise win / tie / loss), Figure 9 (response diversity), Figure 5 (train-test ROUGE-L) and the
LLM bill of the bench and judge stages. Each reads metrics/judge.json or metrics/bench.json and
returns a table written by janus.evaluate.markdown."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from janus.config.bench import BENCH_SOURCE_NAMES
from janus.config.infer import InferSection
from janus.config.report import ReportSection
from janus.evaluate.markdown import MISSING, fmt, markdown_table, percent, score_cell
from janus.evaluate.winrate import OUTCOMES

SOURCE_TITLES = {
    "alpaca_eval": "mf-AlpacaEval",
    "flask": "mf-FLASK",
    "koala": "mf-Koala",
    "mt_bench": "mf-MT-Bench",
    "self_instruct": "mf-Self-Instruct",
}


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


def scores_of(judge: dict[str, Any], model: str, condition: str) -> dict[str, Any]:
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
        scores = scores_of(judge, model, condition)
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
        without = scores_of(judge, model, "no_system").get("overall")
        with_system = scores_of(judge, model, "system").get("overall")
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
    without = scores_of(judge, model, "no_system").get("overall", {}).get("mean")
    with_system = scores_of(judge, model, "system").get("overall", {}).get("mean")
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
    best = scores_of(judge, pair.name, "system").get("overall", {}).get("mean")
    plain = scores_of(judge, pair.plain, "system").get("overall", {}).get("mean")
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
            scores = scores_of(judge, model, "system") if model else {}
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
                *(percent(entry.get(f"{outcome}_rate")) for outcome in OUTCOMES),
                percent(entry.get("win_or_tie_rate")),
                entry.get("decided", 0),
                entry.get("unparsed", 0),
                entry.get("empty", 0),
            ]
        )
    return markdown_table(header, rows)


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


LLM_HEADER = [
    "Stage",
    "Items",
    "Invalid answers",
    "Failed",
    "Prompt tokens",
    "Completion tokens",
    "Cost (USD)",
]


def llm_row(stage: str, llm: dict[str, Any]) -> list[Any]:
    return [
        stage,
        llm.get("items", MISSING),  # requests sent and cache hits are per run: runtime/, not here
        llm.get("invalid_outputs", MISSING),
        llm.get("failed", MISSING),
        llm.get("prompt_tokens", MISSING),
        llm.get("completion_tokens", MISSING),
        fmt(llm.get("cost_usd"), 4),
    ]
