"""Pairwise comparison (`judge.pairwise`): each pair graded in both orders (the judge sees the
system message, as the paper's human raters did in F.1), combined per comparison into one row
(`analysis.pairwise_summary` makes the win rates and their CIs from the rows)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from janus.config.judge import JudgeSection
from janus.evaluate.judge.grading import Format, Verdict, parse_function, sample_index, verdict_of
from janus.evaluate.judge.parser import pairwise_schema
from janus.evaluate.judge.responses import Response
from janus.evaluate.winrate import combine_orders, pair_key
from janus.prompts import render_messages
from janus.steps.base import Step, Tally
from janus.steps.runner import collect_step


def pairwise_request(
    bench_row: dict[str, Any],
    first: str,
    second: str,
    judge: JudgeSection,
    fmt: Format,
    repeat: int,
    tag: str,
):
    from janus.llm import ChatRequest

    return ChatRequest(
        messages=render_messages(
            "judge_pairwise",
            system=bench_row["system"],
            instruction=bench_row["prompt"],
            response_a=first,
            response_b=second,
            reference_answer=bench_row["reference_answer"],
            rubrics=bench_row["rubrics"],
            output_format=fmt,
            feedback_max_chars=judge.feedback_max_chars,
        ),
        schema=pairwise_schema(judge.feedback_max_chars) if fmt == "structured" else None,
        temperature=judge.generation.temperature,
        top_p=judge.generation.top_p,
        max_tokens=judge.generation.max_tokens,
        sample_index=sample_index(judge, repeat),
        tag=tag,
    )


@dataclass(frozen=True)
class Comparison:
    model: str
    opponent: str
    item_id: str
    repeat: int
    x: Response  # the model's response
    y: Response  # the opponent's

    @property
    def empty(self) -> bool:
        return self.x.empty or self.y.empty


# A row of the pairwise grading: the comparison, whether the model's response comes first, and
# the bench row (system message, instruction, reference answer, rubrics).
PairwiseRow = tuple["Comparison", bool, dict[str, Any]]


class PairwiseGrading(Step):
    """The judge comparing two responses in one order (a `PairwiseRow`); the answer is read by
    the strict parser (`parse`: a rejection is re-asked by the client) into a `Verdict`, an
    unreadable one included."""

    name = "judge (pairwise)"
    role = "judge"
    desc = "judge (pairwise)"

    def __init__(self, judge: JudgeSection, fmt: Format):
        self.judge, self.fmt = judge, fmt
        self.max_failed_fraction = judge.max_failed_fraction
        self.parse = parse_function("pairwise", fmt)

    def format_input(self, row: PairwiseRow):
        c, x_first, item = row
        first, second = (c.x.text, c.y.text) if x_first else (c.y.text, c.x.text)
        tag = f"{pair_key(c.model, c.opponent)}/{c.item_id}/k{c.repeat}/{'xy' if x_first else 'yx'}"
        return pairwise_request(item, first, second, self.judge, self.fmt, c.repeat, tag)

    def format_output(self, row: PairwiseRow, result: Any) -> Verdict:
        return verdict_of(result)

    def metrics(self, counts: Tally) -> dict[str, Any]:
        return {}  # the comparison rows and their summary are made from the verdicts


def compare_pairs(
    client: Any,
    responses: list[Response],
    bench: dict[str, dict[str, Any]],
    judge: JudgeSection,
    fmt: Format,
    role: str = "judge",
) -> list[dict[str, Any]]:
    """Comparison rows (one per pair, item and repeat, both orders inside), in `judge.pairwise`'s
    order; `client` is open."""
    by_key = {(r.model, r.condition, r.id): r for r in responses}
    condition = judge.pairwise_condition
    comparisons = []
    for model, opponent in judge.pairwise:
        for item_id in bench:
            x = by_key.get((model, condition, item_id))
            y = by_key.get((opponent, condition, item_id))
            if x is None or y is None:
                continue  # not answered by both (infer.max_items, a skipped row): no comparison
            for repeat in range(judge.repeats):
                comparisons.append(Comparison(model, opponent, item_id, repeat, x, y))
    # Both orders of every comparison with two non-empty responses: (comparison index, x first).
    orders = [
        (index, x_first)
        for index, comparison in enumerate(comparisons)
        if not comparison.empty
        for x_first in (True, False)
    ]
    rows = [(comparisons[i], x_first, bench[comparisons[i].item_id]) for i, x_first in orders]
    answers, _ = collect_step(
        PairwiseGrading(judge, fmt), rows, None, total=len(rows), client=client
    )
    verdicts = dict(zip(orders, answers, strict=True))
    rows = []
    for index, c in enumerate(comparisons):
        x_as_a, x_as_b = verdicts.get((index, True)), verdicts.get((index, False))
        asked = [v for v in (x_as_a, x_as_b) if v is not None]
        if c.empty:
            outcome = "empty"
        elif not (x_as_a.ok and x_as_b.ok):
            outcome = "unparsed"
        else:
            outcome = combine_orders(x_as_a.judgement.verdict, x_as_b.judgement.verdict)
        rows.append(
            {
                "judge": role,
                "model": c.model,
                "opponent": c.opponent,
                "id": c.item_id,
                "source": bench[c.item_id]["source"],
                "benchmark": bench[c.item_id]["benchmark"],
                "condition": condition,
                "repeat": c.repeat,
                "verdict_model_as_a": x_as_a.judgement.verdict if x_as_a and x_as_a.ok else None,
                "verdict_model_as_b": x_as_b.judgement.verdict if x_as_b and x_as_b.ok else None,
                "outcome": outcome,
                "judgements": len(asked),
                "unparsed_reasons": [v.reason for v in asked if not v.ok],
            }
        )
    return rows
