"""The `filter` section: sampling and filtering the source instructions (A.1)."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import (
    Field,
    field_validator,
    model_validator,
)

from janus.config.common import Section
from janus.config.sources import InputSource, SourceConfig

SOURCE_NAMES = (
    "nectar",
    "openhermes_preferences",
    "ultrafeedback_binarized_clean",
    "chatbot_arena_conversations",
    "domain_specific_preference",
)


class FilterSection(Section):
    params_key: ClassVar[str] = "filter"
    sources: dict[str, SourceConfig]
    # Stage `dsp` copies the DSP data (domain-specific preference) from here, validated, to
    # sources.domain_specific_preference.path.
    dsp_source: InputSource
    # A.1: `per_source` from every source (12k; a source with fewer gives all it has and its
    # shortfall is a metric), then `fill_source` tops the sample up to `total` (100k).
    per_source: int = Field(ge=1)
    total: int = Field(ge=1)
    fill_source: str
    # The paper's persona filter (A.1). Its PDF text lost the backslashes and the caret but kept
    # each escaped character, so its `(?!.)` is `(?!\.)`: the phrase must come before the first
    # full stop (and, `.` not crossing newlines, on the first line). The apostrophe of "you're"
    # is the paper's typographic one or a straight one, written as escapes (`\x27`, `\u2019`):
    # with a literal straight one, DVC writes this value to dvc.lock as a double-quoted string
    # that it then misreads (treeverse/dvc#10668), and the stage would never look up to date.
    persona_regex: str
    persona_regex_flags: list[Literal["IGNORECASE", "MULTILINE", "DOTALL"]]
    min_chars: int = Field(ge=1)
    max_chars: int = Field(ge=1)
    # Multi-turn conversations (Nectar, Chatbot Arena): keep the first user turn, or skip the row.
    multi_turn: Literal["first_turn", "skip"]
    seed: int

    @field_validator("sources")
    @classmethod
    def _known_sources(cls, value: dict[str, SourceConfig]) -> dict[str, SourceConfig]:
        unknown = sorted(set(value) - set(SOURCE_NAMES))
        if unknown:
            raise ValueError(f"unknown source(s) {unknown}; known: {list(SOURCE_NAMES)}")
        if not any(source.enabled for source in value.values()):
            raise ValueError("no source is enabled")
        return value

    @field_validator("persona_regex")
    @classmethod
    def _regex_compiles(cls, value: str) -> str:
        import re

        try:
            re.compile(value)
        except re.error as error:
            raise ValueError(f"not a valid regular expression: {error}") from None
        return value

    @model_validator(mode="after")
    def _fill_source_is_enabled(self) -> FilterSection:
        fill = self.sources.get(self.fill_source)
        if fill is None or not fill.enabled:
            raise ValueError(f"fill_source {self.fill_source!r} must be one of the enabled sources")
        if self.min_chars > self.max_chars:
            raise ValueError("min_chars must not exceed max_chars")
        return self
