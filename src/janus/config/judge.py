"""The `judge` section: absolute grading and pairwise comparison of bench responses."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import (
    Field,
    field_validator,
    model_validator,
)

from janus.config.common import Section
from janus.config.generation import GenerationParams


class JudgeSection(Section):
    """Absolute 1-5 grading per rubric (F.2) and pairwise comparison in both orders."""

    params_key: ClassVar[str] = "judge"

    repeats: int = Field(ge=1)  # paper: three evaluations per model, averaged
    # structured: {feedback, score} under a JSON schema; text: the paper's "Feedback: ...
    # [RESULT] N", parsed strictly; auto: structured unless the judge endpoint has no
    # structured-output mode (llm.judge.structured_output: prompt).
    format: Literal["auto", "structured", "text"]
    # Show the judge the system message too (F.2 and the official script: no; Table 8 compares).
    include_system_message: bool
    # Steerability (beyond the paper): repeats of grading each system-condition response against
    # the rubrics of another system message of the same instruction; 0 turns it off.
    steerability_repeats: int = Field(ge=0)
    # judgements still failed or unparsed after every re-ask that may be left out before the
    # stage fails (non-zero exit, nothing written; a rerun pays only for those, all cached).
    max_failed_fraction: float = Field(ge=0, le=1)
    feedback_max_chars: int = Field(ge=10)  # schema maxLength; keeps CPU judging short
    generation: GenerationParams
    pairwise: list[tuple[str, str]]  # (model, opponent) pairs
    pairwise_condition: Literal["system", "no_system"]
    seed: int  # changes every judge sample (folded into the requests' sample_index)
    # The llm roles that grade, in order. The first is the primary: it grades everything
    # (absolute, steerability, pairwise) and its scores are the report's and the scorecard's;
    # each other judge grades the same responses on their own rubrics (absolute) for the judge
    # agreement and the same-judge scorecard.
    judges: list[Literal["judge", "open_judge", "teacher"]] = Field(min_length=1)

    @field_validator("judges")
    @classmethod
    def _distinct_judges(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError(f"a judge is listed twice: {value}")
        return value

    @field_validator("pairwise")
    @classmethod
    def _distinct_pairs(cls, value: list[tuple[str, str]]) -> list[tuple[str, str]]:
        seen = set()
        for first, second in value:
            if first == second:
                raise ValueError(f"a model cannot be compared with itself ({first!r})")
            if frozenset((first, second)) in seen:
                raise ValueError(f"pair ({first!r}, {second!r}) is listed twice")
            seen.add(frozenset((first, second)))
        return value

    @model_validator(mode="after")
    def _room_for_feedback(self) -> JudgeSection:
        # A JSON answer cut off by max_tokens is invalid; a token is at least ~2 characters.
        needed = self.feedback_max_chars // 2 + 32
        if self.generation.max_tokens < needed:
            raise ValueError(
                f"generation.max_tokens ({self.generation.max_tokens}) is too small for "
                f"feedback_max_chars {self.feedback_max_chars}: needs at least {needed}"
            )
        return self
