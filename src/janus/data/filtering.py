"""Stage `filter` (A.1): instructions from the five source datasets, deduplicated, sampled, and
cleared of instructions that carry their own persona.

Order, as in A.1: every row becomes one user instruction through its source's adapter (bad rows are
counted skips); exact duplicates are removed across all sources; each source gives `per_source`
instructions (A.1: 12k), or all it has when it has fewer (its shortfall is a metric: no other
source shrinks to match it); `fill_source` tops the sample up to `total`; then the persona regex
drops instructions whose first sentence sets a role or a persona.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from janus.config.filter import SOURCE_NAMES, FilterSection
from janus.config.sources import SourceConfig
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
    requested: int = 0  # per_source
    shortfall: int = 0  # requested - what the pool could give (a short source gives all it has)
    fill: int = 0  # extra instructions taken to reach `total` (fill_source only)
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
            "requested": self.requested,
            "shortfall": self.shortfall,
            "fill": self.fill,
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

    for raw in read_rows(source.path, source.split, root=root, revision=source.revision):
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


@dataclass
class Sample:
    """A.1's sample: per source what was asked, what it could give, and the fill."""

    per_source: dict[str, list[dict[str, Any]]]
    requested: int  # per source
    fill: list[dict[str, Any]]
    fill_requested: int

    def shortfall(self, key: str) -> int:
        return self.requested - len(self.per_source[key])


def sample_instructions(pools: dict[str, list[dict[str, Any]]], config: FilterSection) -> Sample:
    """A.1's sampling: `per_source` from every source (all it has when fewer), then more from
    `fill_source` up to `total`. A short source never changes another source's share."""
    if config.per_source * len(pools) > config.total:
        raise ValueError(
            f"filter.total ({config.total}) is smaller than the shares of the {len(pools)} "
            f"sources ({config.per_source} each); raise total or lower per_source"
        )
    sampled: dict[str, list[dict[str, Any]]] = {}
    leftover: list[dict[str, Any]] = []
    for key, pool in pools.items():
        # One generator per source, seeded by its name: adding a source changes no other's sample.
        rng = random.Random(f"{config.seed}:{key}")
        order = rng.sample(range(len(pool)), len(pool))
        sampled[key] = [pool[i] for i in order[: config.per_source]]
        if len(pool) < config.per_source:
            log.warning(
                "%s has %d instructions, fewer than per_source %d: all of them are taken",
                key,
                len(pool),
                config.per_source,
            )
        if key == config.fill_source:
            leftover = [pool[i] for i in order[config.per_source :]]
    fill_requested = config.total - sum(len(rows) for rows in sampled.values())
    fill = leftover[:fill_requested]
    if len(fill) < fill_requested:
        log.warning(
            "fill source %s has only %d more instructions; %d instead of total %d",
            config.fill_source,
            len(fill),
            config.total - fill_requested + len(fill),
            config.total,
        )
    return Sample(sampled, config.per_source, fill, fill_requested)


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

    sample = sample_instructions(pools, config)
    kept: list[dict[str, Any]] = []
    for key, records in sample.per_source.items():
        report = reports[key]
        report.requested = sample.requested
        report.shortfall = sample.shortfall(key)
        if key == config.fill_source:
            report.fill = len(sample.fill)
            records = records + sample.fill
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
        "per_source": sample.requested,
        "sampled": sampled_total,
        # A source with fewer instructions than per_source gives all it has; the fill source
        # tops the sample up to `total`.
        "shortfall": sum(report.shortfall for report in reports.values()),
        "fill": {
            "source": config.fill_source,
            "requested": sample.fill_requested,
            "taken": len(sample.fill),
            "shortfall": sample.fill_requested - len(sample.fill),
        },
        "persona_rate": totals["persona"] / sampled_total if sampled_total else None,
        "removed": dict(sorted(totals.items())),
        "sources": {key: report.as_metrics() for key, report in reports.items()},
        # Per source, as Table 5 reports it: asked for, there to take, kept after the persona
        # filter (the fill included), and how many short of per_source the source was.
        "table5": {
            key: {
                "requested": report.requested,
                "available": report.pool,
                "kept": report.kept,
                "shortfall": report.shortfall,
            }
            for key, report in reports.items()
        },
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
