"""Absolute grading: the judge's requests (one per response, rubric and repeat; steerability's
mismatched rubrics too) as the `AbsoluteGrading` step, whose `parse` (the strict parser) makes the
client re-ask a rejected answer, run by `janus.steps.runner` (which holds the unreadable ones to
`judge.max_failed_fraction`); the judgement rows."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from janus.config.judge import JudgeSection
from janus.config.llm import LLMConfig
from janus.evaluate.judge.parser import (
    Judgement,
    JudgeParseError,
    absolute_schema,
    parse_absolute_object,
    parse_absolute_text,
    parse_pairwise_object,
    parse_pairwise_text,
)
from janus.evaluate.judge.responses import Response
from janus.evaluate.rows import JudgementRow
from janus.prompts import render_messages
from janus.steps.base import Step, Tally
from janus.steps.runner import collect_step

# sample_index = seed * SEED_STRIDE + repeat: a new judge.seed or repeat asks for new samples
# (re-asks after an unreadable answer are the client's: a new attempt number in the cache key).
SEED_STRIDE = 1_000_000

Format = Literal["structured", "text"]


def resolve_format(judge: JudgeSection, llm: LLMConfig) -> Format:
    """`auto`: structured, unless the judge endpoint has no structured-output mode at all
    (`structured_output: prompt`, i.e. the schema could only be asked for in words)."""
    if judge.format != "auto":
        return judge.format
    return "text" if llm.backend == "openai" and llm.structured_output == "prompt" else "structured"


# sample_index += judge position * JUDGE_STRIDE: the primary (position 0) keeps its samples.
JUDGE_STRIDE = 1_000


def sample_index(judge: JudgeSection, repeat: int, position: int = 0) -> int:
    if repeat >= JUDGE_STRIDE:
        raise ValueError("judge.repeats is too large")
    return judge.seed * SEED_STRIDE + position * JUDGE_STRIDE + repeat


def judge_label(config: LLMConfig) -> str:
    """How a judge is named in reports: its model, with the revision that pins it."""
    return f"{config.model}@{config.model_revision}" if config.model_revision else config.model


# ---------------------------------------------------------------------------------------------
# reading the judge's answers: `parse` (the strict parser) makes the client re-ask a rejection
# ---------------------------------------------------------------------------------------------


@dataclass
class Verdict:
    judgement: Judgement | None
    error: str | None
    reason: str | None  # the rejection's metrics key
    attempts: int

    @property
    def ok(self) -> bool:
        return self.judgement is not None


def parse_function(kind: Literal["absolute", "pairwise"], fmt: Format) -> Callable[[Any], Any]:
    """What the LLM client calls on each answer: a Judgement, or JudgeParseError (a re-ask)."""
    if fmt == "structured":
        read = parse_absolute_object if kind == "absolute" else parse_pairwise_object
        return lambda result: read(result.parsed)
    read_text = parse_absolute_text if kind == "absolute" else parse_pairwise_text
    return lambda result: read_text(result.text)


def verdict_of(result: Any) -> Verdict:
    if result.ok:
        return Verdict(result.parsed, None, None, result.attempts)
    rejection = getattr(result, "rejection", None)
    if isinstance(rejection, JudgeParseError):
        reason = rejection.reason
    elif rejection is not None:
        reason = "invalid_output"  # not JSON / schema violation in structured mode
    else:
        reason = "llm_failed"
    return Verdict(None, result.error, reason, result.attempts)


# ---------------------------------------------------------------------------------------------
# absolute grading
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AbsoluteTask:
    response: Response
    rubric_of: str  # the bench row whose rubric and reference answer are used
    rubric_index: int
    repeat: int
    kind: Literal["own", "mismatched"]


def absolute_request(
    task: AbsoluteTask,
    prompt: str,
    graded_against: dict[str, Any],
    judge: JudgeSection,
    fmt: Format,
    position: int = 0,
):
    from janus.llm import ChatRequest

    rubric = graded_against["rubrics"][task.rubric_index]
    return ChatRequest(
        messages=render_messages(
            "judge_absolute",
            system=graded_against["system"] if judge.include_system_message else None,
            instruction=prompt,
            response=task.response.text,
            reference_answer=graded_against["reference_answer"],
            criteria=rubric["criteria"],
            score_descriptions=rubric["score_descriptions"],
            output_format=fmt,
            feedback_max_chars=judge.feedback_max_chars,
        ),
        schema=absolute_schema(judge.feedback_max_chars) if fmt == "structured" else None,
        temperature=judge.generation.temperature,
        top_p=judge.generation.top_p,
        max_tokens=judge.generation.max_tokens,
        sample_index=sample_index(judge, task.repeat, position),
        tag=(
            f"{task.response.model}/{task.response.condition}/{task.response.id}/{task.kind}/"
            f"r{task.rubric_index}/k{task.repeat}"
        ),
    )


def absolute_tasks(
    responses: list[Response],
    bench: dict[str, dict[str, Any]],
    judge: JudgeSection,
    partners: dict[str, str],
) -> list[AbsoluteTask]:
    tasks = [
        AbsoluteTask(response, response.id, rubric_index, repeat, "own")
        for repeat in range(judge.repeats)
        for response in responses
        if not response.empty
        for rubric_index in range(len(bench[response.id]["rubrics"]))
    ]
    tasks += [
        AbsoluteTask(response, partners[response.id], rubric_index, repeat, "mismatched")
        for repeat in range(judge.steerability_repeats)
        for response in responses
        if not response.empty and response.condition == "system" and response.id in partners
        for rubric_index in range(len(bench[partners[response.id]]["rubrics"]))
    ]
    return tasks


# A row of the absolute grading: the task, the bench row of the graded response, and the bench
# row whose rubric and reference answer are used (the same row unless steerability's).
GradingRow = tuple[AbsoluteTask, dict[str, Any], dict[str, Any]]


class AbsoluteGrading(Step):
    """Judge `role` grading responses on rubrics: one request per `GradingRow`, its answer read
    by the strict parser (`parse`: a rejection is re-asked by the client), one judgement row
    (`rows.JudgementRow`) per task, an unreadable answer included as "unparsed"."""

    name = "judge"
    role = "judge"

    def __init__(self, judge: JudgeSection, fmt: Format, role: str = "judge", position: int = 0):
        self.judge, self.fmt, self.position = judge, fmt, position
        self.role = role  # type: ignore[misc]  # which judge: a role in params.llm
        self.name = "judge" if position == 0 else f"judge ({role})"  # type: ignore[misc]
        self.desc = f"{role} (absolute)"
        self.max_failed_fraction = judge.max_failed_fraction
        self.parse = parse_function("absolute", fmt)

    def format_input(self, row: GradingRow):
        task, item, graded_against = row
        return absolute_request(
            task, item["prompt"], graded_against, self.judge, self.fmt, self.position
        )

    def format_output(self, row: GradingRow, result: Any) -> dict[str, Any]:
        verdict = verdict_of(result)
        task, item, _ = row
        response = task.response
        return JudgementRow(
            judge=self.role,
            model=response.model,
            condition=response.condition,
            id=response.id,
            source=item["source"],
            benchmark=item["benchmark"],
            kind=task.kind,
            rubric_of=task.rubric_of,
            rubric_index=task.rubric_index,
            repeat=task.repeat,
            score=verdict.judgement.verdict if verdict.ok else None,
            feedback=verdict.judgement.feedback if verdict.ok else None,
            status="ok" if verdict.ok else "unparsed",
            reason=verdict.reason,
            error=verdict.error,
            attempts=verdict.attempts,
        ).model_dump()

    def metrics(self, tally: Tally) -> dict[str, Any]:
        return {}  # the judge's metrics come from its rows (`analysis`)


def grade_absolute(
    client: Any,
    responses: list[Response],
    bench: dict[str, dict[str, Any]],
    judge: JudgeSection,
    fmt: Format,
    partners: dict[str, str] | None = None,
    role: str = "judge",
    position: int = 0,
) -> list[dict[str, Any]]:
    """Judgement rows of judge `role` through the open `client`: one per response, rubric and
    repeat, own rubrics first, then (steerability) another system message's."""
    tasks = absolute_tasks(responses, bench, judge, partners or {})
    rows = [(task, bench[task.response.id], bench[task.rubric_of]) for task in tasks]
    step = AbsoluteGrading(judge, fmt, role, position)
    judgements, _ = collect_step(step, rows, None, total=len(rows), client=client)
    return judgements
