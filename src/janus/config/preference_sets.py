"""The `preference_sets` section: preference sets per instruction."""

from __future__ import annotations

from typing import ClassVar

from pydantic import (
    Field,
)

from janus.config.common import Section
from janus.config.generation import GenerationParams


class PreferenceSetsSection(Section):
    params_key: ClassVar[str] = "preference_sets"
    sets_per_instruction: int = Field(ge=2)  # >= 2: pairs need another system message
    max_instructions: int | None = Field(ge=1)  # None: all filtered instructions
    description_max_chars: int = Field(ge=20)
    # Sentences a preference description may have: asked for in the prompt and checked (a
    # description with more is rejected, counted). The published ones have two (~330-370 chars).
    description_max_sentences: int = Field(ge=1)
    name_max_chars: int = Field(ge=5)
    generation: GenerationParams
    # LLM items that may fail (after every retry) before the stage fails: past it the stage
    # exits non-zero, writes nothing, and a rerun pays only for the failed items (all cached).
    max_failed_fraction: float = Field(ge=0, le=1)
    seed: int
