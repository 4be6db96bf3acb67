"""Strict reading of judge answers, in the paper's text format and as structured objects.

Text format (F.2, the Prometheus absolute-grading layout): ``Feedback: <text> [RESULT] <verdict>``.
Only what follows the LAST ``[RESULT]`` marker counts, so a feedback that quotes "[RESULT] 2" or
says "Score 3" on the way does not leak a number. After that marker there must be nothing but
the verdict, in one of the forms the reference parsers accept: ``4``, ``(4)``, ``: 4``, ``4/5``,
``4 out of 5`` (optionally in **bold** and followed by one period). Absolute verdicts are
integers 1..5: "4.5", "4/10", "6", "four" and "4, but ..." are rejected, each with its reason;
pairwise verdicts are A, B or TIE. A rejection raises `JudgeParseError` (a ValueError), which the
LLM client turns into a re-ask; after the last one the judgement is unparsed, counted by reason,
and kept out of every mean.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

RESULT_MARKER = "[RESULT]"
SCORE_MIN, SCORE_MAX = 1, 5
PAIRWISE_VERDICTS = ("A", "B", "TIE")
REJECTION_REASONS = (
    "empty_answer",
    "no_marker",
    "no_score",
    "extra_text",
    "not_an_integer",
    "wrong_scale",
    "out_of_range",
)

_FEEDBACK_PREFIX = re.compile(r"^\s*(?:#+\s*)?feedback\s*:\s*", re.IGNORECASE)
# The tail after the last marker. A signed/decimal number is captured whole so that "4.5" and
# "-1" are rejected as what they are, not read as 4 or 1; "/N" and "out of N" name the scale.
_NUMBER = r"[+-]?\d+(?:[.,]\d+)?"
_SCORE_TAIL = re.compile(
    rf"^[:=]?\s*\(?\s*(?P<score>{_NUMBER})\s*"
    rf"(?:(?:/|out\s+of)\s*(?P<scale>{_NUMBER})\s*)?\)?\s*\.?$",
    re.IGNORECASE,
)
_VERDICT_TAIL = re.compile(r"^[:=]?\s*\(?\s*([A-Za-z]+)\s*\)?\s*\.?$")
_DIGIT = re.compile(r"\d")


class JudgeParseError(ValueError):
    """A judge answer without a usable verdict; `reason` is the metrics key, the message says why."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class Judgement:
    feedback: str
    verdict: int | str  # an int score 1..5 (absolute) or "A" | "B" | "TIE" (pairwise)


def _split_on_last_marker(text: str | None) -> tuple[str, str]:
    if text is None or not text.strip():
        raise JudgeParseError("empty_answer", "the answer is empty")
    position = text.rfind(RESULT_MARKER)
    if position < 0:
        raise JudgeParseError("no_marker", f"no {RESULT_MARKER} marker")
    feedback = _FEEDBACK_PREFIX.sub("", text[:position], count=1).strip()
    return feedback, text[position + len(RESULT_MARKER) :]


def check_score(value: Any) -> int:
    """An integer 1..5, or `JudgeParseError` (booleans and 4.0 are not integers here)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise JudgeParseError("not_an_integer", f"score is not an integer: {value!r}")
    if not SCORE_MIN <= value <= SCORE_MAX:
        raise JudgeParseError("out_of_range", f"score {value} is outside {SCORE_MIN}..{SCORE_MAX}")
    return value


def _clean_tail(tail: str) -> str:
    # Markdown emphasis around a verdict ("**4**") is formatting, not content.
    return tail.replace("*", "").strip()


def parse_absolute_text(text: str | None) -> Judgement:
    feedback, tail = _split_on_last_marker(text)
    tail = _clean_tail(tail)
    match = _SCORE_TAIL.match(tail)
    if match is None:
        preview = tail[:40]
        if _DIGIT.search(tail):
            raise JudgeParseError(
                "extra_text", f"more than a score after the last {RESULT_MARKER}: {preview!r}"
            )
        raise JudgeParseError("no_score", f"no score after the last {RESULT_MARKER}: {preview!r}")
    number, scale = match.group("score"), match.group("scale")
    if not re.fullmatch(r"[+-]?\d+", number):
        raise JudgeParseError("not_an_integer", f"score is not an integer: {number!r}")
    if scale is not None and scale != str(SCORE_MAX):
        raise JudgeParseError("wrong_scale", f"score given out of {scale}, not {SCORE_MAX}")
    return Judgement(feedback=feedback, verdict=check_score(int(number)))


def parse_pairwise_text(text: str | None) -> Judgement:
    feedback, tail = _split_on_last_marker(text)
    tail = _clean_tail(tail)
    match = _VERDICT_TAIL.match(tail)
    verdict = match.group(1).upper() if match else None
    if verdict not in PAIRWISE_VERDICTS:
        raise JudgeParseError(
            "no_verdict",
            f"no verdict ({'/'.join(PAIRWISE_VERDICTS)}) after the last {RESULT_MARKER}: "
            f"{tail[:40]!r}",
        )
    return Judgement(feedback=feedback, verdict=verdict)


def _feedback_of(obj: Any) -> str:
    if not isinstance(obj, dict):
        raise JudgeParseError("not_an_object", f"expected an object, got {type(obj).__name__}")
    feedback = obj.get("feedback", "")
    if not isinstance(feedback, str):
        raise JudgeParseError("bad_feedback", "feedback is not a string")
    return feedback.strip()


def parse_absolute_object(obj: Any) -> Judgement:
    """A structured answer {feedback, score}; checked again even though the schema bounds it,
    because an OpenAI-compatible endpoint in prompt mode is only asked, not constrained."""
    feedback = _feedback_of(obj)
    if "score" not in obj:
        raise JudgeParseError("no_score", "the object has no score")
    return Judgement(feedback=feedback, verdict=check_score(obj["score"]))


def parse_pairwise_object(obj: Any) -> Judgement:
    feedback = _feedback_of(obj)
    verdict = obj.get("winner")
    if not isinstance(verdict, str) or verdict.upper() not in PAIRWISE_VERDICTS:
        raise JudgeParseError(
            "no_verdict", f"winner is not one of {PAIRWISE_VERDICTS}: {verdict!r}"
        )
    return Judgement(feedback=feedback, verdict=verdict.upper())


def absolute_schema(feedback_max_chars: int) -> dict[str, Any]:
    """JSON schema of a structured absolute judgement (from `rows.AbsoluteJudgement`)."""
    from janus.evaluate.rows import AbsoluteJudgement, llm_schema

    return llm_schema(AbsoluteJudgement, feedback_max_chars)


def pairwise_schema(feedback_max_chars: int) -> dict[str, Any]:
    """JSON schema of a structured pairwise judgement (from `rows.PairwiseJudgement`)."""
    from janus.evaluate.rows import PairwiseJudgement, llm_schema

    return llm_schema(PairwiseJudgement, feedback_max_chars)
