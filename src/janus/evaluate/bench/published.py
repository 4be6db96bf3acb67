"""The published Multifaceted-Bench (`bench.published`, hub or a local file) as bench rows:
validated row by row (`rows.PublishedBenchRow`), a stable content-derived id, bad rows counted
by reason."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from janus.config.bench import BenchSection
from janus.data.sources import read_rows
from janus.evaluate.bench.columns import UNMAPPED, SourceColumns
from janus.evaluate.rows import (
    BenchRow,
    PublishedBenchRow,
    content_id,
    instruction_key,
    validate_rows,
)
from janus.logging_utils import get_logger

log = get_logger(__name__)


def import_published(
    config: BenchSection, columns: SourceColumns, root: Path
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The published Multifaceted-Bench as bench rows, and the import's counts."""
    assert config.published is not None
    raw_rows, unreadable = [], 0
    for raw in read_rows(
        config.published, config.published_split, root=root, revision=config.published_revision
    ):
        if raw.data is None:
            unreadable += 1
            log.warning("published bench row %d unreadable: %s", raw.number, raw.error)
            continue
        raw_rows.append(raw.data)
    valid, dropped, messages = validate_rows(PublishedBenchRow, raw_rows)
    for message in messages[:20]:
        log.warning("published bench %s (dropped)", message)
    if unreadable:
        dropped["unreadable"] += unreadable
    rows, seen = [], set()
    unmapped: Counter = Counter()
    for row in valid:
        row_id = content_id(row.source, row.system, row.prompt)
        if row_id in seen:
            dropped["duplicate_row"] += 1
            continue
        seen.add(row_id)
        benchmark = columns.column(row.source)
        if benchmark == UNMAPPED:
            unmapped[row.source] += 1
        bench_row = BenchRow(
            id=row_id,
            instruction_id=instruction_key(row.prompt),
            source=row.source,
            benchmark=benchmark,
            system=row.system,
            prompt=row.prompt,
            reference_answer=row.reference_answer,
            rubrics=row.rubrics,
            preference_set=row.preference_set,
        )
        rows.append(bench_row.dump())
    if unmapped:
        log.warning(
            "published bench: %d rows of %d source label(s) have no Table 2 column in %s",
            sum(unmapped.values()),
            len(unmapped),
            config.source_columns_path,
        )
    metrics = {
        "published": config.published,
        "published_rows": len(raw_rows) + unreadable,
        "dropped": dict(sorted(dropped.items())),
        "unmapped_sources": dict(sorted(unmapped.items())),
    }
    return rows, metrics
