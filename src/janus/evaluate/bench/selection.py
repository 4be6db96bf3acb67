"""C.1's instructions: each benchmark's, minus the training data's and those of more than one
benchmark, then `instructions_per_source` sampled per benchmark."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from janus.config.bench import BENCH_SOURCE_NAMES, BenchSection, BenchSourceConfig
from janus.data.filtering import instruction_id
from janus.data.sources import BadRow, SourceError, read_rows
from janus.io import read_jsonl
from janus.logging_utils import get_logger
from janus.scale import require_rows

log = get_logger(__name__)


def normalize_instruction(text: str) -> str:
    """The form two instructions are compared in: case-folded, whitespace collapsed."""
    return " ".join(text.casefold().split())


def _prompt_of(data: dict[str, Any], field: str) -> tuple[str, bool]:
    """The instruction in `field`; a list of turns (MT-Bench) gives its first. (text, multi_turn)."""
    value = data.get(field)
    multi_turn = False
    if isinstance(value, list):
        multi_turn = len(value) > 1
        value = value[0] if value else None
    if value is None:
        raise BadRow("missing_text", f"{field} is missing")
    if not isinstance(value, str):
        raise BadRow("wrong_type", f"{field} is {type(value).__name__}, expected a string")
    if not value.strip():
        raise BadRow("missing_text", f"{field} is empty")
    return value.strip(), multi_turn


def load_source_instructions(
    name: str, source: BenchSourceConfig, root: Path
) -> tuple[list[str], Counter]:
    """One benchmark's instructions in file order, and its counts (rows, bad rows, multi-turn)."""
    counts: Counter = Counter()
    prompts = []
    for raw in read_rows(source.path, source.split, root=root, revision=source.revision):
        counts["rows"] += 1
        if raw.data is None:
            counts["bad_rows"] += 1
            log.warning("bench source %s row %d skipped: %s", name, raw.number, raw.error)
            continue
        try:
            prompt, multi_turn = _prompt_of(raw.data, source.prompt_field)
        except BadRow as bad:
            counts["bad_rows"] += 1
            log.warning("bench source %s row %d skipped: %s", name, raw.number, bad)
            continue
        counts["multi_turn_first_kept"] += multi_turn
        prompts.append(prompt)
    if not prompts:
        raise SourceError(f"bench source {name!r} ({source.path}) has no usable instruction")
    return prompts, counts


def training_instruction_keys(paths: Sequence[Path]) -> set[str]:
    """Normalised instructions of the training data (`instruction` or `prompt` column)."""
    keys = set()
    for path in paths:
        for row in read_jsonl(path):
            text = row.get("instruction", row.get("prompt"))
            if isinstance(text, str) and text.strip():
                keys.add(normalize_instruction(text))
    return keys


def select_instructions(
    config: BenchSection, training_keys: set[str], root: Path
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """C.1's sampling: drop training overlap and cross-benchmark duplicates, then sample."""
    enabled = [name for name in BENCH_SOURCE_NAMES if name in config.sources]
    enabled = [name for name in enabled if config.sources[name].enabled]
    if not enabled:
        raise ValueError("bench.sources: no enabled source")
    per_source: dict[str, list[str]] = {}
    counts: dict[str, Counter] = {}
    holders: dict[str, set[str]] = {}  # normalised instruction -> benchmarks holding it
    for name in enabled:
        prompts, counts[name] = load_source_instructions(name, config.sources[name], root)
        unique, seen = [], set()
        for prompt in prompts:
            key = normalize_instruction(prompt)
            if key in seen:
                counts[name]["duplicates"] += 1
                continue
            seen.add(key)
            unique.append(prompt)
            holders.setdefault(key, set()).add(name)
        per_source[name] = unique

    selected = []
    for name in enabled:
        pool = []
        for prompt in per_source[name]:
            key = normalize_instruction(prompt)
            if key in training_keys:
                counts[name]["train_overlap"] += 1
            elif len(holders[key]) > 1:
                counts[name]["cross_source_duplicates"] += 1
            else:
                pool.append(prompt)
        counts[name]["pool"] = len(pool)
        # One generator per benchmark: adding a benchmark changes no other's sample.
        rng = random.Random(f"{config.seed}:{name}")
        # Before any LLM call: a sample file must not pass for the benchmark (janus.scale).
        take = require_rows(
            f"{config.sources[name].path} (bench source {name})",
            len(pool),
            config.instructions_per_source,
            what="usable instructions",
            section="bench.instructions_per_source",
            allow_smaller=config.allow_smaller,
        )
        for prompt in rng.sample(pool, take):
            selected.append(
                {
                    "instruction_id": instruction_id(name, prompt),
                    "source": name,
                    "instruction": prompt,
                }
            )
        counts[name]["sampled"] = take
    metrics = {
        name: {
            key: counts[name][key]
            for key in (
                "rows",
                "bad_rows",
                "multi_turn_first_kept",
                "duplicates",
                "train_overlap",
                "cross_source_duplicates",
                "pool",
                "sampled",
            )
        }
        for name in enabled
    }
    return selected, metrics
