"""The `expand_seeds` section: preference seed sets from the taxonomy."""

from __future__ import annotations

from typing import ClassVar

from pydantic import (
    Field,
)

from janus.config.common import Section
from janus.config.generation import GenerationParams


class ExpandSeedsSection(Section):
    params_key: ClassVar[str] = "expand_seeds"
    taxonomy_path: str
    keywords_per_subdimension: int | None = Field(ge=1)  # None: every keyword (paper: 107)
    num_seed_sets: int = Field(ge=1)
    description_max_chars: int = Field(ge=20)  # longer descriptions are cut at a sentence
    generation: GenerationParams
    # LLM items that may fail (after every retry) before the stage fails: past it the stage
    # exits non-zero, writes nothing, and a rerun pays only for the failed items (all cached).
    max_failed_fraction: float = Field(ge=0, le=1)
    seed: int
