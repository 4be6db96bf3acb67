"""The `bench` section: building Multifaceted Bench (C.1) or importing the published one."""

from __future__ import annotations

from typing import ClassVar

from pydantic import (
    Field,
    field_validator,
    model_validator,
)

from janus.config.common import Section
from janus.config.generation import GenerationParams
from janus.config.sources import check_revision

BENCH_SOURCE_NAMES = ("alpaca_eval", "flask", "koala", "mt_bench", "self_instruct")


class BenchSourceConfig(Section):
    # A local .jsonl/.json/.parquet file (relative to the repo) or a hub dataset (`hub:owner/name`).
    path: str
    revision: str | None  # hub datasets: a commit sha; None for a local file
    split: str
    prompt_field: str  # the column with the instruction (a list of turns: the first)
    enabled: bool

    @model_validator(mode="after")
    def _hub_is_pinned(self) -> BenchSourceConfig:
        check_revision(self.path, self.revision)
        return self


class BenchSection(Section):
    """Multifaceted Bench (C.1): held-out instructions, each with N system messages (through a
    preference set, as in the training data), a reference answer per system message and one 1-5
    rubric per preference dimension."""

    params_key: ClassVar[str] = "bench"

    # The published Multifaceted-Bench (`hub:kaist-ai/Multifaceted-Bench`, or a local
    # .parquet/.jsonl/.json in its layout) imported row by row instead of building a bench;
    # None builds one from `sources` as C.1 describes.
    published: str | None
    published_revision: str | None  # hub: a commit sha; None for a local file
    published_split: str
    # Data file mapping each fine-grained `source` to its Table 2 column (a BENCH_SOURCE_NAMES key).
    source_columns_path: str
    sources: dict[str, BenchSourceConfig]
    instructions_per_source: int = Field(ge=1)  # paper: 315 instructions over 5 sources
    # paper: 3 (945 rows); >= 2 because response diversity compares a model's answers to them
    system_messages_per_instruction: int = Field(ge=2)
    num_system_message_examples: int = Field(ge=0)  # hand-written examples shown per request
    preference_set_generation: GenerationParams
    system_message_generation: GenerationParams
    reference_generation: GenerationParams
    rubric_generation: GenerationParams
    # Schema maxLength of the structured texts; small values keep CPU decoding short.
    preference_name_max_chars: int = Field(ge=5)
    preference_description_max_chars: int = Field(ge=20)
    rubric_max_chars: int = Field(ge=10)  # the criteria and each score description
    # Train-test ROUGE-L (Figure 5) compares each bench system message with this many training
    # system messages, sampled; None compares with all of them (quadratic: slow at paper scale).
    train_test_max_train_messages: int | None = Field(ge=1)
    # False: a source with fewer usable instructions than instructions_per_source stops the bench
    # stage before any LLM call (janus.scale); true runs on what is there (logged).
    allow_smaller: bool
    # LLM items that may fail (after every retry) before the stage fails: past it the stage
    # exits non-zero, writes nothing, and a rerun pays only for the failed items (all cached).
    max_failed_fraction: float = Field(ge=0, le=1)
    seed: int

    @field_validator("sources")
    @classmethod
    def _known_sources(cls, value: dict[str, BenchSourceConfig]) -> dict[str, BenchSourceConfig]:
        unknown = sorted(set(value) - set(BENCH_SOURCE_NAMES))
        if unknown:
            raise ValueError(f"unknown bench source(s) {unknown}; known: {list(BENCH_SOURCE_NAMES)}")
        if value and not any(source.enabled for source in value.values()):
            raise ValueError("no bench source is enabled")
        return value

    @model_validator(mode="after")
    def _published_is_pinned(self) -> BenchSection:
        check_revision(self.published, self.published_revision, key="published")
        return self
