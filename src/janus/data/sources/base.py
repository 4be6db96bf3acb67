"""What every source adapter shares: reading rows, and turning one row into one user instruction.

A source is a local JSONL/JSON/Parquet file, or a hub dataset named `hub:owner/name`. Reading is
separate from extracting so that a row the adapter cannot use is a counted, logged skip with a
reason, never a silent empty instruction.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from janus.logging_utils import get_logger

log = get_logger(__name__)

HUB_PREFIX = "hub:"
# Table 5 writes a missing original source as "-"; so do we, in the data and the metrics.
UNKNOWN_ORIGINAL_SOURCE = "-"


class SourceError(RuntimeError):
    """A source that cannot be read at all: missing file, unreadable format, no rows."""


class BadRow(ValueError):
    """One row the adapter cannot turn into an instruction; `reason` is the metrics key."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class Extracted:
    """One row's single user instruction, before filtering."""

    instruction: str
    original_source: str
    turns: int = 1  # user turns in the original conversation; only the first one is kept


@dataclass(frozen=True)
class RawRow:
    """A row as read from the source, or the reason it could not be parsed at all."""

    number: int  # 1-based position in the source, for log messages
    data: dict[str, Any] | None
    error: str | None = None


def _read_jsonl(path: Path) -> Iterator[RawRow]:
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
            except json.JSONDecodeError as error:
                yield RawRow(number, None, f"malformed JSON ({error.msg})")
                continue
            if not isinstance(data, dict):
                yield RawRow(number, None, f"expected a JSON object, got {type(data).__name__}")
                continue
            yield RawRow(number, data)


def _read_json_array(path: Path) -> Iterator[RawRow]:
    # The DSP release is one JSON array per split (data/domain_specific_preference.train.json).
    try:
        items = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise SourceError(f"{path}: not valid JSON ({error.msg})") from None
    if not isinstance(items, list):
        raise SourceError(f"{path}: expected a JSON array of objects")
    for number, data in enumerate(items, start=1):
        if isinstance(data, dict):
            yield RawRow(number, data)
        else:
            yield RawRow(number, None, f"expected a JSON object, got {type(data).__name__}")


def _read_parquet(path: Path) -> Iterator[RawRow]:
    import pyarrow.parquet as pq

    for number, data in enumerate(pq.read_table(path).to_pylist(), start=1):
        yield RawRow(number, data)


def _read_hub(name: str, split: str, revision: str | None) -> Iterator[RawRow]:
    from janus.hf_loading import load_hub_dataset

    if revision is None:
        raise SourceError(f"hub dataset {name!r} needs a revision (a commit sha) in params")
    try:
        dataset = load_hub_dataset(name, split, revision)
    except Exception as error:  # the hub raises many types; all mean "this source is unavailable"
        raise SourceError(
            f"hub dataset {name!r} (split {split!r}, revision {revision!r}) could not be loaded:"
            f" {error}"
        ) from error
    for number, data in enumerate(dataset, start=1):
        yield RawRow(number, dict(data))


def read_rows(
    path: str, split: str = "train", root: Path | None = None, revision: str | None = None
) -> Iterator[RawRow]:
    """Rows of a source: `hub:owner/name` at `revision`, or a .jsonl/.json/.parquet file
    relative to `root`."""
    if path.startswith(HUB_PREFIX):
        yield from _read_hub(path[len(HUB_PREFIX) :], split, revision)
        return
    file = Path(path) if root is None or Path(path).is_absolute() else Path(root) / path
    if not file.exists():
        raise SourceError(f"{file}: source file not found")
    suffix = file.suffix.lower()
    if suffix == ".jsonl":
        yield from _read_jsonl(file)
    elif suffix == ".json":
        yield from _read_json_array(file)
    elif suffix == ".parquet":
        yield from _read_parquet(file)
    else:
        raise SourceError(f"{file}: unsupported format {suffix!r} (use .jsonl, .json or .parquet)")


def require_text(value: Any, field: str) -> str:
    """A non-empty string, or a BadRow that says what was wrong with `field`."""
    if value is None:
        raise BadRow("missing_text", f"{field} is missing")
    if not isinstance(value, str):
        raise BadRow("wrong_type", f"{field} is {type(value).__name__}, expected a string")
    text = value.strip()
    if not text:
        raise BadRow("missing_text", f"{field} is empty")
    return text


def optional_label(value: Any) -> str:
    """An original-source label; lists (Nectar's `source`) give their first entry."""
    if isinstance(value, list):
        value = value[0] if value else None
    if value is None or (isinstance(value, str) and not value.strip()):
        return UNKNOWN_ORIGINAL_SOURCE
    if not isinstance(value, str):
        raise BadRow("wrong_type", f"source label is {type(value).__name__}, expected a string")
    return value.strip()


def user_turns(messages: Any, field: str) -> list[str]:
    """The user turns of an OpenAI-style message list ([{role, content}, ...])."""
    if messages is None:
        raise BadRow("missing_text", f"{field} is missing")
    if not isinstance(messages, list):
        raise BadRow(
            "wrong_type", f"{field} is {type(messages).__name__}, expected a list of turns"
        )
    turns = []
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            raise BadRow("wrong_type", f"{field}[{index}] is not a {{role, content}} object")
        if message.get("role") in ("user", "human"):
            turns.append(require_text(message.get("content"), f"{field}[{index}].content"))
    if not turns:
        raise BadRow("missing_text", f"{field} has no user turn")
    return turns


_HH_TURN = re.compile(r"\n\n(Human|Assistant):")


def human_turns(transcript: str) -> list[str]:
    """The Human turns of an Anthropic-HH style transcript ("\\n\\nHuman: ...\\n\\nAssistant: ...")."""
    text = "\n\n" + transcript.lstrip("\n") if not transcript.startswith("\n\n") else transcript
    parts = _HH_TURN.split(text)
    # split() gives [before, speaker, text, speaker, text, ...]
    turns = [parts[i + 1].strip() for i in range(1, len(parts) - 1, 2) if parts[i] == "Human"]
    return [turn for turn in turns if turn]


class SourceAdapter:
    """One source schema: `extract` turns one raw row into one user instruction."""

    key: str  # the params key (filter.sources.<key>)
    main_source: str  # the name the Multifaceted Collection's `main_source` column uses
    columns: tuple[str, ...]  # the dataset columns the adapter reads, for docs and errors

    def extract(self, row: dict[str, Any]) -> Extracted:
        raise NotImplementedError
