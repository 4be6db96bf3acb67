"""A dataset a stage imports (a local file or `hub:owner/name` at a revision): shared by the
`filter`, `published_collection`, `train.rm`, `bench`, `toxicity` and `helpfulness` sections."""

from __future__ import annotations

from pydantic import model_validator

from janus.config.common import Section

HUB_PREFIX = "hub:"  # as in janus.data.sources.base: `hub:owner/name` names a hub dataset


def check_revision(path: str | None, revision: str | None, key: str = "path") -> None:
    """A hub dataset (`hub:owner/name`) is read at a revision written in params (a commit sha;
    "main" is the marked placeholder that the loader warns about); a local file has none."""
    if path is not None and path.startswith(HUB_PREFIX):
        if revision is None:
            raise ValueError(f"{key} {path!r} is a hub dataset: it needs a revision (a commit sha)")
    elif revision is not None:
        raise ValueError(f"revision {revision!r} is for hub datasets; {key} {path!r} is a local file")


class SourceConfig(Section):
    # A local JSONL/Parquet file (relative to the repo) or a hub dataset id (`hub:owner/name`)
    # read at `revision` (a commit sha; None for a local file).
    path: str
    revision: str | None
    split: str
    enabled: bool

    @model_validator(mode="after")
    def _hub_is_pinned(self) -> SourceConfig:
        check_revision(self.path, self.revision)
        return self


class InputSource(Section):
    """Where an input stage reads a file it makes: a local file (the bundled sample, copied and
    validated) or a hub dataset `hub:owner/name` at `revision` (a commit sha)."""

    path: str
    revision: str | None
    split: str

    @model_validator(mode="after")
    def _hub_is_pinned(self) -> InputSource:
        check_revision(self.path, self.revision)
        return self
