"""The `system_messages` section: a system message per preference set."""

from __future__ import annotations

from typing import ClassVar

from pydantic import (
    Field,
)

from janus.config.common import Section
from janus.config.generation import GenerationParams


class SystemMessagesSection(Section):
    params_key: ClassVar[str] = "system_messages"
    examples_path: str
    num_examples: int = Field(ge=0)  # paper: 3 of 50 hand-written examples per request
    # Show the teacher the instruction next to the preference set (the published system
    # messages are specific to their task); the examples then show theirs too.
    with_instruction: bool
    generation: GenerationParams
    # LLM items that may fail (after every retry) before the stage fails: past it the stage
    # exits non-zero, writes nothing, and a rerun pays only for the failed items (all cached).
    max_failed_fraction: float = Field(ge=0, le=1)
    seed: int
