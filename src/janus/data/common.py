"""Shared by the data stages: the preference-set format and its validation, and per-item seeded
random draws.

A preference set has exactly one preference per dimension. The teacher answers under a JSON schema
whose shape makes that structural: an object with one required key per dimension, each holding
{subdimension, preference, description}. `preference_set_from_object` turns that object into the
list format the published Multifaceted Collection uses ([{dimension, subdimension, preference,
description}, ...]); `validate_preference_set` checks any list read back (seeds, examples, the
outputs of earlier stages).
"""

from __future__ import annotations

import itertools
import json
import random
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from janus.io import iter_jsonl

PREFERENCE_FIELDS = ("subdimension", "preference", "description")


class PreferenceSetError(ValueError):
    """A preference set that does not have exactly one well-formed preference per dimension."""


# A sentence ends at . ! or ? (and any closing quote or bracket) followed by whitespace: "3.5",
# "e.g. the" and "Node.js" do not end one.
_SENTENCE_END = re.compile(r"[.!?][\"')\]]*\s+(?=[A-Z0-9\"'(\[])")


def count_sentences(text: str) -> int:
    """Sentences in a short text (at least 1 for a non-empty text)."""
    text = text.strip()
    return len(_SENTENCE_END.findall(text)) + 1 if text else 0


@dataclass(frozen=True)
class Limits:
    """Longest subdimension/preference name and description a preference may have (in characters),
    and the most sentences a description may have (None: no limit)."""

    name_max_chars: int = 60
    description_max_chars: int = 300
    description_max_sentences: int | None = None

    def max_chars(self, field: str) -> int:
        return self.description_max_chars if field == "description" else self.name_max_chars


def preference_set_schema(dimensions: Sequence[str], limits: Limits) -> dict[str, Any]:
    """The JSON schema of one preference set: one required object per dimension, nothing else."""
    preference = {
        "type": "object",
        "properties": {
            field: {"type": "string", "minLength": 1, "maxLength": limits.max_chars(field)}
            for field in PREFERENCE_FIELDS
        },
        "required": list(PREFERENCE_FIELDS),
        "additionalProperties": False,
    }
    return {
        "type": "object",
        "properties": {dimension: preference for dimension in dimensions},
        "required": list(dimensions),
        "additionalProperties": False,
    }


def _checked_preference(value: Any, dimension: str, limits: Limits | None) -> dict[str, str]:
    if not isinstance(value, dict):
        raise PreferenceSetError(f"{dimension}: expected an object, got {type(value).__name__}")
    preference = {"dimension": dimension}
    for field in PREFERENCE_FIELDS:
        text = value.get(field)
        if text is None:
            raise PreferenceSetError(f"{dimension}: {field} is missing")
        if not isinstance(text, str):
            raise PreferenceSetError(
                f"{dimension}: {field} is {type(text).__name__}, expected a string"
            )
        text = " ".join(text.split())
        if not text:
            raise PreferenceSetError(f"{dimension}: {field} is empty")
        if limits is not None and len(text) > limits.max_chars(field):
            raise PreferenceSetError(
                f"{dimension}: {field} has {len(text)} characters, more than {limits.max_chars(field)}"
            )
        if (
            field == "description"
            and limits is not None
            and limits.description_max_sentences is not None
            and count_sentences(text) > limits.description_max_sentences
        ):
            raise PreferenceSetError(
                f"{dimension}: description has {count_sentences(text)} sentences, more than "
                f"{limits.description_max_sentences}"
            )
        preference[field] = text
    extra = sorted(set(value) - set(PREFERENCE_FIELDS) - {"dimension"})
    if extra:
        raise PreferenceSetError(f"{dimension}: unexpected field(s) {extra}")
    return preference


def preference_set_from_object(
    value: Any, dimensions: Sequence[str], limits: Limits | None = None
) -> list[dict[str, str]]:
    """{dimension: {subdimension, preference, description}} -> the published list format."""
    if not isinstance(value, dict):
        raise PreferenceSetError(
            f"expected an object keyed by dimension, got {type(value).__name__}"
        )
    missing = [dimension for dimension in dimensions if dimension not in value]
    if missing:
        raise PreferenceSetError(f"missing dimension(s) {missing}")
    unknown = sorted(set(value) - set(dimensions))
    if unknown:
        raise PreferenceSetError(f"unknown dimension(s) {unknown}; expected {list(dimensions)}")
    return [_checked_preference(value[dimension], dimension, limits) for dimension in dimensions]


def validate_preference_set(
    value: Any, dimensions: Sequence[str], limits: Limits | None = None
) -> list[dict[str, str]]:
    """A list of {dimension, subdimension, preference, description}: exactly one per dimension.

    Returns the preferences in the order of `dimensions`, with whitespace normalised.
    """
    if not isinstance(value, list):
        raise PreferenceSetError(f"expected a list of preferences, got {type(value).__name__}")
    by_dimension: dict[str, Any] = {}
    for index, item in enumerate(value):
        if not isinstance(item, dict):
            raise PreferenceSetError(f"item {index}: expected an object, got {type(item).__name__}")
        dimension = item.get("dimension")
        if not isinstance(dimension, str):
            raise PreferenceSetError(f"item {index}: dimension is missing or not a string")
        if dimension in by_dimension:
            raise PreferenceSetError(f"dimension {dimension!r} appears more than once")
        by_dimension[dimension] = item
    return preference_set_from_object(by_dimension, dimensions, limits)


def preference_set_as_object(preference_set: list[dict[str, str]]) -> dict[str, dict[str, str]]:
    """The list format -> the object format the teacher is asked for (used to show examples)."""
    return {
        item["dimension"]: {field: item[field] for field in PREFERENCE_FIELDS}
        for item in preference_set
    }


def example_json(preference_set: list[dict[str, str]]) -> str:
    # Compact: the example is in every preference-set prompt, and prompt tokens cost time.
    return json.dumps(preference_set_as_object(preference_set), ensure_ascii=False)


def item_rng(seed: int, *parts: Any) -> random.Random:
    """A generator seeded by the item's identity, so one item's draw never shifts another's.

    (Adding an instruction changes no other instruction's example, which keeps the LLM cache warm.)
    """
    return random.Random(":".join(str(part) for part in (seed, *parts)))


def iter_preference_set_rows(
    path: Path | str, dimensions: Sequence[str] | None = None
) -> tuple[Iterator[dict[str, Any]], tuple[str, ...]]:
    """Rows of an earlier stage, read lazily, each checked to hold a valid preference set as it
    is read (else a clear error naming the file and row).

    Without `dimensions`, the first row's dimensions (in its order) are what every row must have,
    so later stages need not read the taxonomy: that first row is read at once. Returns the rows
    (an iterator) and the dimensions.
    """
    rows = iter_jsonl(path)
    if dimensions is None:
        first = next(rows, None)
        if first is None:
            raise ValueError(f"{path}: no rows")
        items = first.get("preference_set")
        if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
            raise ValueError(f"{path}:1: preference_set must be a list of objects")
        dimensions = tuple(str(item.get("dimension")) for item in items)
        rows = itertools.chain([first], rows)
    return _checked_preference_set_rows(path, rows, tuple(dimensions)), tuple(dimensions)


def _checked_preference_set_rows(
    path: Path | str, rows: Iterable[dict[str, Any]], dimensions: tuple[str, ...]
) -> Iterator[dict[str, Any]]:
    for number, row in enumerate(rows, start=1):
        try:
            row["preference_set"] = validate_preference_set(row.get("preference_set"), dimensions)
        except PreferenceSetError as error:
            raise ValueError(f"{path}:{number}: invalid preference_set: {error}") from None
        yield row


def read_preference_set_rows(
    path: Path | str, dimensions: Sequence[str] | None = None
) -> tuple[list[dict[str, Any]], tuple[str, ...]]:
    """`iter_preference_set_rows`, every row read and checked before it returns."""
    rows, dimensions = iter_preference_set_rows(path, dimensions)
    return list(rows), dimensions


def write_not_generated(out: str | Path, metrics: str | Path) -> None:
    """A teacher stage under `generate.enabled: false`: an empty output and a metrics file
    saying why, so the DAG stays whole while the run trains on the published collection."""
    from janus.io import write_json, write_jsonl

    write_jsonl(out, [])
    reason = "generate.enabled: false (build_pairs.collection names the published data)"
    write_json(metrics, {"generated": False, "reason": reason})
