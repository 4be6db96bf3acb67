"""The `gold_responses` section: the teacher's gold answer per system message."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import (
    Field,
    model_validator,
)

from janus.config.common import Section
from janus.config.generation import GenerationParams


class GoldResponsesSection(Section):
    params_key: ClassVar[str] = "gold_responses"
    generation: GenerationParams
    # A response cut off at generation.max_tokens (finish_reason "length") is asked again once
    # with retry_max_tokens and dropped if cut off again (retry), dropped (drop), or kept with
    # `truncated: true` in its row (keep: for random test models that never stop). All counted.
    on_length: Literal["retry", "drop", "keep"]
    retry_max_tokens: int = Field(ge=1)
    # LLM items that may fail (after every retry) before the stage fails: past it the stage
    # exits non-zero, writes nothing, and a rerun pays only for the failed items (all cached).
    max_failed_fraction: float = Field(ge=0, le=1)
    seed: int

    @model_validator(mode="after")
    def _retry_budget_is_larger(self) -> GoldResponsesSection:
        if self.on_length == "retry" and self.retry_max_tokens <= self.generation.max_tokens:
            raise ValueError(
                f"retry_max_tokens ({self.retry_max_tokens}) must be larger than "
                f"generation.max_tokens ({self.generation.max_tokens}) to be worth a retry"
            )
        return self
