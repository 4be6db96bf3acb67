"""Stage `published_collection`: the published Multifaceted Collection (and its DPO / ORPO / RM
variants, where configured) from the hub or a local JSONL/Parquet file, every row checked against
`janus.data.rows`, bad rows counted by reason, so that `build_pairs` and training can start from
the published data instead of regenerating it.

The collection comes out in the columns `gold_responses` writes (the published ones plus our
stable `instruction_id` and `set_index`), so `build_pairs` reads either the same way. The pair
variants come out in the columns of `data/pairs/<variant>/*.jsonl` (system, prompt, chosen,
rejected as text). The folder's layout (`COLLECTION_FILE`, `pairs/<variant>.jsonl`) is defined
here once: `write_published` makes it and `read_published` reads it back for `build_pairs`.
"""

from __future__ import annotations

import hashlib
import shutil
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from janus.config.published_collection import PublishedCollectionSection
from janus.config.sources import SourceConfig
from janus.data.common import PreferenceSetError, validate_preference_set
from janus.data.rows import PAIR_VARIANTS, VARIANT_ROW_TYPES, PublishedPairRow
from janus.data.sources import SourceError, read_rows
from janus.io import read_jsonl, write_jsonl
from janus.logging_utils import get_logger

log = get_logger(__name__)

# The stage's output folder: the collection, and pairs/<variant>.jsonl per imported variant.
COLLECTION_FILE = "multifaceted_collection.jsonl"
PAIRS_FOLDER = "pairs"
# The columns of an imported pair row (those of data/pairs/<variant>/*.jsonl too).
PAIR_COLUMNS = (
    "system",
    "prompt",
    "chosen",
    "rejected",
    "instruction_id",
    "main_source",
    "original_source",
)

# How many bad rows per variant and reason are logged one by one (the rest are only counted).
_LOGGED_BAD_ROWS = 3


def published_instruction_id(prompt: str) -> str:
    """A stable id per instruction text: the published rows carry none."""
    return "published-" + hashlib.sha1(prompt.encode("utf-8")).hexdigest()[:12]


def bad_row_reason(error: ValidationError) -> str:
    """The metrics key of a row's first validation error, e.g. `missing:system`."""
    first = error.errors()[0]
    location = ".".join(str(part) for part in first["loc"] if not isinstance(part, int))
    kind = {
        "missing": "missing",
        "string_too_short": "empty",
        "too_short": "empty",
        "string_type": "wrong_type",
        "list_type": "wrong_type",
        "model_type": "wrong_type",
        "dict_type": "wrong_type",
        "literal_error": "wrong_value",
        "value_error": "invalid",
    }.get(first["type"], first["type"])
    return f"{kind}:{location}" if location else kind


class _Counter:
    """Counts rows and bad rows by reason; logs the first few of each reason."""

    def __init__(self, variant: str, source: SourceConfig):
        self.variant = variant
        self.source = source
        self.rows = 0
        self.bad: Counter = Counter()

    def skip(self, number: int, reason: str, detail: str) -> None:
        self.bad[reason] += 1
        if self.bad[reason] <= _LOGGED_BAD_ROWS:
            log.warning("%s row %d skipped (%s): %s", self.variant, number, reason, detail)

    def metrics(self, valid: int) -> dict[str, Any]:
        return {
            "path": self.source.path,
            "rows": self.rows,
            "valid": valid,
            "bad_rows": dict(sorted(self.bad.items())),
        }


def _validated(variant: str, source: SourceConfig, max_rows: int | None, root, counter):
    """(row number, validated row model) for every row that passes its row type."""
    row_type = VARIANT_ROW_TYPES[variant]
    for raw in read_rows(source.path, source.split, root=root, revision=source.revision):
        if max_rows is not None and counter.rows >= max_rows:
            break
        counter.rows += 1
        if raw.data is None:
            counter.skip(raw.number, "malformed", raw.error or "unreadable row")
            continue
        try:
            yield raw.number, row_type.model_validate(raw.data)
        except ValidationError as error:
            counter.skip(raw.number, bad_row_reason(error), str(error.errors()[0]["msg"]))
    if counter.rows == 0:
        raise SourceError(f"published {variant} ({source.path}) has no rows")


def import_collection(
    source: SourceConfig, dimensions: Sequence[str], max_rows: int | None, root="."
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The published collection as `gold_responses` rows, and its import metrics."""
    counter = _Counter("collection", source)
    rows: list[dict[str, Any]] = []
    seen: set[tuple[str, str]] = set()
    set_counts: Counter = Counter()
    for number, row in _validated("collection", source, max_rows, root, counter):
        try:
            preference_set = validate_preference_set(
                [item.model_dump() for item in row.preference_set], dimensions
            )
        except PreferenceSetError as error:
            counter.skip(number, "invalid:preference_set", str(error))
            continue
        if (row.prompt, row.system) in seen:
            counter.skip(number, "duplicate", "the same prompt and system message again")
            continue
        seen.add((row.prompt, row.system))
        instruction_id = published_instruction_id(row.prompt)
        rows.append(
            {
                "main_source": row.main_source,
                "original_source": row.original_source,
                "preference_set": preference_set,
                "system": row.system,
                "prompt": row.prompt,
                "output": row.output,
                "instruction_id": instruction_id,
                # in the order the published file lists an instruction's system messages
                "set_index": set_counts[instruction_id],
            }
        )
        set_counts[instruction_id] += 1
    if not rows:
        raise SourceError(
            f"published collection ({source.path}): none of its {counter.rows} rows is valid "
            f"(bad rows: {dict(counter.bad)})"
        )
    metrics = counter.metrics(len(rows))
    metrics["instructions"] = len(set_counts)
    metrics["system_messages_per_instruction"] = dict(sorted(Counter(set_counts.values()).items()))
    return rows, metrics


def import_pairs(
    variant: str, source: SourceConfig, max_rows: int | None, root="."
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """A published pair variant in the columns of `data/pairs/<variant>`, and its metrics."""
    counter = _Counter(variant, source)
    rows: list[dict[str, Any]] = []
    for number, row in _validated(variant, source, max_rows, root, counter):
        chosen = PublishedPairRow.response(row.chosen)
        rejected = PublishedPairRow.response(row.rejected)
        if chosen == rejected:
            counter.skip(number, "identical_responses", "chosen and rejected are the same text")
            continue
        values = {
            "system": row.system,
            "prompt": row.prompt,
            "chosen": chosen,
            "rejected": rejected,
            "instruction_id": published_instruction_id(row.prompt),
            "main_source": row.main_source,
            "original_source": row.original_source,
        }
        rows.append({column: values[column] for column in PAIR_COLUMNS})
    if not rows:
        raise SourceError(
            f"published {variant} ({source.path}): none of its {counter.rows} rows is valid "
            f"(bad rows: {dict(counter.bad)})"
        )
    return rows, counter.metrics(len(rows))


def import_published(
    config: PublishedCollectionSection, dimensions: Sequence[str], root="."
) -> tuple[list[dict[str, Any]], dict[str, list[dict[str, Any]]], dict[str, Any]]:
    """(collection rows, {variant: pair rows}, metrics) for everything enabled.

    With the collection disabled nothing is imported (a team generating its own data need not
    download the published one); a disabled variant is left out, so `build_pairs` derives that
    trainer's pairs by E.1's recipe."""
    if not config.collection.enabled:
        log.info("published_collection.collection.enabled is false: nothing imported")
        return [], {}, {"enabled": False}
    collection, collection_metrics = import_collection(
        config.collection, dimensions, config.max_rows, root
    )
    pairs: dict[str, list[dict[str, Any]]] = {}
    metrics: dict[str, Any] = {"enabled": True, "collection": collection_metrics}
    for variant, source in sorted(config.variants.items()):
        if source.enabled:
            pairs[variant], metrics[variant] = import_pairs(variant, source, config.max_rows, root)
    bad = sum(sum(metrics[block]["bad_rows"].values()) for block in ("collection", *pairs))
    metrics["bad_rows"] = bad
    log.info(
        "published collection: %d rows (%d instructions); %s; %d bad rows",
        len(collection),
        collection_metrics["instructions"],
        ", ".join(f"{variant}: {len(rows)} pairs" for variant, rows in pairs.items()) or "no pairs",
        bad,
    )
    return collection, pairs, metrics


def write_published(
    out: Path | str,
    collection: list[dict[str, Any]],
    pairs: dict[str, list[dict[str, Any]]],
) -> None:
    """The stage's folder, written beside it and swapped into place (a variant not imported this
    time leaves no stale file behind). Disabled: an empty folder, which DVC tracks as such."""
    out = Path(out)
    staging = out.with_name(out.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    if collection:
        write_jsonl(staging / COLLECTION_FILE, collection)
    for variant, rows in pairs.items():
        write_jsonl(staging / PAIRS_FOLDER / f"{variant}.jsonl", rows)
    shutil.rmtree(out, ignore_errors=True)
    staging.rename(out)


def read_published(
    folder: Path | str,
) -> tuple[Path, dict[str, list[dict[str, Any]]]]:
    """The collection file of a `published_collection` folder and the pair rows of each variant
    it holds (checked to have every column `build_pairs` writes)."""
    folder = Path(folder)
    collection = folder / COLLECTION_FILE
    if not collection.exists():
        raise FileNotFoundError(
            f"{folder} has no {COLLECTION_FILE}: run the published_collection stage with "
            "published_collection.collection.enabled true"
        )
    pairs: dict[str, list[dict[str, Any]]] = {}
    for variant in PAIR_VARIANTS:
        path = folder / PAIRS_FOLDER / f"{variant}.jsonl"
        if not path.exists():
            continue
        pairs[variant] = read_jsonl(path)
        for number, row in enumerate(pairs[variant], start=1):
            missing = [column for column in PAIR_COLUMNS if not row.get(column)]
            if missing:
                raise ValueError(f"{path}:{number}: missing {missing}")
    return collection, pairs
