"""Stage `filter` (A.1): instructions from the five source datasets, deduplicated, sampled, and
cleared of instructions that carry their own persona.

Order, as in A.1: every row becomes one user instruction through its source's adapter (bad rows are
counted skips); exact duplicates are removed across all sources; each source gives an equal share
(`per_source`, at most the size of the smallest source); `fill_source` tops the sample up to
`total`; then the persona regex drops instructions whose first line sets a role or a persona.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from janus.config import SOURCE_NAMES, FilterSection, SourceConfig
from janus.data.sources import ADAPTERS, BadRow, SourceError, read_rows
from janus.logging_utils import get_logger

log = get_logger(__name__)

# How many bad rows per source and reason are logged one by one (the rest are only counted).
_LOGGED_BAD_ROWS = 3


def compile_persona_regex(pattern: str, flags: list[str]) -> re.Pattern[str]:
    value = 0
    for name in flags:
        value |= getattr(re, name)
    return re.compile(pattern, value)


def has_persona(instruction: str, persona_regex: re.Pattern[str]) -> bool:
    """True when the instruction sets its own role or persona (A.1's filter)."""
    return persona_regex.search(instruction) is not None


def instruction_id(source_key: str, instruction: str) -> str:
    """A stable id: the same instruction text from the same source always gets the same id."""
    digest = hashlib.sha1(instruction.encode("utf-8")).hexdigest()[:12]
    return f"{source_key}-{digest}"


@dataclass
class SourceReport:
    """What happened to one source's rows; becomes its block in metrics/filter.json."""

    rows: int = 0
    bad_rows: Counter = field(default_factory=Counter)
    too_short: int = 0
    too_long: int = 0
    multi_turn: int = 0  # rows with more than one user turn (first turn kept, or skipped)
    duplicates: int = 0
    pool: int = 0  # unique instructions available for sampling
    sampled: int = 0
    persona: int = 0
    kept: int = 0

    def as_metrics(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "bad_rows": dict(sorted(self.bad_rows.items())),
            "too_short": self.too_short,
            "too_long": self.too_long,
            "multi_turn": self.multi_turn,
            "duplicates": self.duplicates,
            "pool": self.pool,
            "sampled": self.sampled,
            "persona": self.persona,
            "kept": self.kept,
        }


def load_source(
    key: str, source: SourceConfig, config: FilterSection, report: SourceReport, root: Path
) -> list[dict[str, Any]]:
    """One source's rows as instruction records, with bad and out-of-range rows counted."""
    adapter = ADAPTERS[key]
    records = []
    logged: Counter = Counter()

    def skip(number: int, reason: str, detail: str) -> None:
        report.bad_rows[reason] += 1
        logged[reason] += 1
        if logged[reason] <= _LOGGED_BAD_ROWS:
            log.warning("%s row %d skipped (%s): %s", key, number, reason, detail)

    for raw in read_rows(source.path, source.split, root=root):
        report.rows += 1
        if raw.data is None:
            skip(raw.number, "malformed", raw.error or "unreadable row")
            continue
        try:
            extracted = adapter.extract(raw.data)
        except BadRow as bad:
            skip(raw.number, bad.reason, bad.detail)
            continue
        if extracted.turns > 1:
            report.multi_turn += 1
            if config.multi_turn == "skip":
                continue
        length = len(extracted.instruction)
        if length < config.min_chars:
            report.too_short += 1
            continue
        if length > config.max_chars:
            report.too_long += 1
            continue
        records.append(
            {
                "instruction_id": instruction_id(key, extracted.instruction),
                "main_source": adapter.main_source,
                "original_source": extracted.original_source,
                "instruction": extracted.instruction,
            }
        )
    for reason, count in logged.items():
        if count > _LOGGED_BAD_ROWS:
            log.warning("%s: %d more rows skipped (%s)", key, count - _LOGGED_BAD_ROWS, reason)
    if report.rows == 0:
        raise SourceError(f"source {key!r} ({source.path}) has no rows")
    if not records:
        raise SourceError(
            f"source {key!r} ({source.path}) has no usable instruction in its {report.rows} rows "
            f"(bad rows: {dict(report.bad_rows)}, too short: {report.too_short}, "
            f"too long: {report.too_long})"
        )
    return records


def sample_instructions(
    pools: dict[str, list[dict[str, Any]]], config: FilterSection
) -> tuple[dict[str, list[dict[str, Any]]], int]:
    """A.1's sampling: an equal share from every source, then `fill_source` up to `total`.

    Returns the sample per source (in the pools' order) and the equal share used.
    """
    share = min(config.per_source, min(len(pool) for pool in pools.values()))
    if share * len(pools) > config.total:
        raise ValueError(
            f"filter.total ({config.total}) is smaller than the equal shares of the "
            f"{len(pools)} sources ({share} each); raise total or lower per_source"
        )
    sampled: dict[str, list[dict[str, Any]]] = {}
    leftover: list[dict[str, Any]] = []
    for key, pool in pools.items():
        # One generator per source, seeded by its name: adding a source changes no other's sample.
        rng = random.Random(f"{config.seed}:{key}")
        order = rng.sample(range(len(pool)), len(pool))
        sampled[key] = [pool[i] for i in order[:share]]
        if key == config.fill_source:
            leftover = [pool[i] for i in order[share:]]
    missing = config.total - share * len(pools)
    if missing > 0:
        fill = leftover[:missing]
        if len(fill) < missing:
            log.warning(
                "fill source %s has only %d more instructions; %d instead of total %d",
                config.fill_source,
                len(fill),
                share * len(pools) + len(fill),
                config.total,
            )
        sampled[config.fill_source] = sampled[config.fill_source] + fill
    return sampled, share


def filter_instructions(
    config: FilterSection, root: Path | str = "."
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The filtered instructions and the stage's metrics (counts per source and per rule)."""
    root = Path(root)
    persona_regex = compile_persona_regex(config.persona_regex, config.persona_regex_flags)
    reports: dict[str, SourceReport] = {}
    pools: dict[str, list[dict[str, Any]]] = {}
    seen: set[str] = set()
    # A fixed order (not the params file's) so that which copy of a duplicate survives is stable.
    for key in SOURCE_NAMES:
        source = config.sources.get(key)
        if source is None or not source.enabled:
            continue
        report = reports[key] = SourceReport()
        pool = []
        for record in load_source(key, source, config, report, root):
            if record["instruction"] in seen:
                report.duplicates += 1
                continue
            seen.add(record["instruction"])
            pool.append(record)
        report.pool = len(pool)
        pools[key] = pool
        log.info("%s: %d rows -> %d unique instructions", key, report.rows, report.pool)

    sampled, share = sample_instructions(pools, config)
    kept: list[dict[str, Any]] = []
    for key, records in sampled.items():
        report = reports[key]
        report.sampled = len(records)
        for record in records:
            if has_persona(record["instruction"], persona_regex):
                report.persona += 1
                continue
            kept.append(record)
            report.kept += 1
    if not kept:
        raise ValueError("every sampled instruction was removed by the persona filter")

    table5: dict[str, Counter] = defaultdict(Counter)
    for record in kept:
        table5[record["main_source"]][record["original_source"]] += 1
    totals = Counter()
    for report in reports.values():
        totals.update(report.bad_rows)
        totals["too_short"] += report.too_short
        totals["too_long"] += report.too_long
        totals["duplicates"] += report.duplicates
        totals["not_sampled"] += report.pool - report.sampled
        totals["persona"] += report.persona
    sampled_total = sum(report.sampled for report in reports.values())
    metrics = {
        "instructions": len(kept),
        "rows": sum(report.rows for report in reports.values()),
        "share_per_source": share,
        "sampled": sampled_total,
        "persona_rate": totals["persona"] / sampled_total if sampled_total else None,
        "removed": dict(sorted(totals.items())),
        "sources": {key: report.as_metrics() for key, report in reports.items()},
        # Table 5's shape: main source -> original source -> count, most frequent first.
        "per_original_source": {
            main: dict(counts.most_common()) for main, counts in sorted(table5.items())
        },
    }
    log.info(
        "%d instructions kept (%d sampled, %d with a persona removed)",
        len(kept),
        sampled_total,
        totals["persona"],
    )
    return kept, metrics
