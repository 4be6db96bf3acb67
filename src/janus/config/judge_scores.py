"""The `judge_scores` section: the 95% CIs of the judge's scores (the judge_scores stage, no LLM
call). Its own section so that changing a CI setting recomputes metrics/judge.json from the
judge's outputs without grading again."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from janus.config.common import Section


class JudgeScoresSection(Section):
    params_key: ClassVar[str] = "judge_scores"

    bootstrap_resamples: int = Field(ge=1)  # 95% CIs: resamples of bench items
    bootstrap_seed: int
