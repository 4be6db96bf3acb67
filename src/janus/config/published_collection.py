"""The `published_collection` section: importing the published Multifaceted Collection."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import (
    Field,
)

from janus.config.common import Section
from janus.config.sources import SourceConfig


class PublishedCollectionSection(Section):
    """The published Multifaceted Collection (`hub:kaist-ai/Multifaceted-Collection`) or a local
    JSONL/Parquet file in its layout, and optionally its pair variants (`-DPO`, `-ORPO`, `-RM`)."""

    params_key: ClassVar[str] = "published_collection"

    collection: SourceConfig
    variants: dict[Literal["dpo", "orpo", "rm"], SourceConfig]
    max_rows: int | None = Field(ge=1)  # per file; None: every row
