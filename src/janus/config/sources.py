"""A dataset a stage imports (a local file or `hub:owner/name`): shared by the `filter`,
`published_collection` and `train.rm` sections."""

from __future__ import annotations

from janus.config.common import Section


class SourceConfig(Section):
    # A local JSONL/Parquet file (relative to the repo) or a hub dataset id (`hub:owner/name`).
    path: str
    split: str
    enabled: bool
