"""Stage `bench` (C.1): the Multifaceted Bench.

Instructions come from the held-out benchmarks (AlpacaEval 2.0, FLASK, Koala, MT-Bench,
Self-Instruct; local files or hub datasets). Any instruction that the training data also holds
(normalised exact match) or that more than one benchmark holds is excluded, then
`instructions_per_source` are sampled per benchmark. Each instruction gets N system messages made
exactly as the training ones are (a preference set, then a system message written from it, with
the data stage's own functions and templates), one reference answer per system message (the gold
response step), and one 1-5 score rubric per preference dimension (one structured call returns
all of them).

Or, with `bench.published` set, the published Multifaceted-Bench (hub or a local file) is
imported instead: validated row by row (`rows.PublishedBenchRow`), given a stable content-derived
id, bad rows counted by reason.

Either way rows are written in the published layout (`rows.BenchRow`: `rubrics` as
``{criteria, score_descriptions: {"1".."5"}}``) plus `id`, `instruction_id` and `benchmark`, the
Table 2 column its fine-grained `source` counts in (the mapping is a data file,
`bench.source_columns_path`). A row that misses a field, or a rubric that misses a score level,
is counted and dropped, never passed on half-made. The train-test ROUGE-L of system messages
(Figure 5) is measured here.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import yaml

from janus.config.bench import BENCH_SOURCE_NAMES, BenchSection, BenchSourceConfig
from janus.config.gold_responses import GoldResponsesSection
from janus.config.llm import LLMSection
from janus.config.preference_sets import PreferenceSetsSection
from janus.config.system_messages import SystemMessagesSection
from janus.data.common import (
    Limits,
    PreferenceSetError,
    preference_set_from_object,
    read_preference_set_rows,
)
from janus.data.filtering import instruction_id
from janus.data.gold_responses import build_gold_requests
from janus.data.preference_sets import build_preference_set_requests
from janus.data.sources import BadRow, SourceError, read_rows
from janus.data.system_messages import (
    build_system_message_requests,
    clean_system_message,
    load_examples,
)
from janus.data.taxonomy import Taxonomy, load_taxonomy
from janus.evaluate.diversity import max_rouge_l_each
from janus.evaluate.rows import (
    BenchRow,
    PublishedBenchRow,
    Rubric,
    content_id,
    instruction_key,
    llm_schema,
    rubric_set_model,
    validate_rows,
)
from janus.io import read_jsonl
from janus.logging_utils import get_logger
from janus.prompts import render_messages
from janus.scale import require_rows

log = get_logger(__name__)


UNMAPPED = "unmapped"  # the column of a source the mapping file does not name


def normalize_instruction(text: str) -> str:
    """The form two instructions are compared in: case-folded, whitespace collapsed."""
    return " ".join(text.casefold().split())


# ---------------------------------------------------------------------------------------------
# rows in the published layout (also used by the judge and report on whatever file they get)
# ---------------------------------------------------------------------------------------------


def read_bench(path: Path | str) -> tuple[list[dict[str, Any]], Counter]:
    """The valid rows of a bench file (as dicts), and the count of dropped rows by reason."""
    rows, dropped = [], Counter()
    seen_ids: set[str] = set()
    valid, reasons, messages = validate_rows(BenchRow, list(read_jsonl(path)))
    dropped.update(reasons)
    for message in messages:
        log.warning("%s: bench %s (dropped)", path, message)
    for row in valid:
        if row.id in seen_ids:
            dropped["duplicate_id"] += 1
            log.warning("%s: bench id %r appears more than once (dropped)", path, row.id)
            continue
        seen_ids.add(row.id)
        rows.append(row.dump())
    return rows, dropped


def _label_key(label: str) -> str:
    return re.sub(r"[^0-9a-z]", "", label.casefold())


@dataclass(frozen=True)
class SourceColumns:
    """Fine-grained `source` -> Table 2 column (a BENCH_SOURCE_NAMES key), from the data file."""

    columns: dict[str, str]  # normalised label -> column
    default: str | None

    @classmethod
    def load(cls, path: Path | str) -> SourceColumns:
        data = yaml.safe_load(Path(path).read_text())
        if not isinstance(data, dict) or not isinstance(data.get("columns"), dict):
            raise ValueError(f"{path}: expected `columns: {{benchmark: [labels]}}` and `default`")
        default = data.get("default")
        columns: dict[str, str] = {}
        for column, labels in data["columns"].items():
            if column not in BENCH_SOURCE_NAMES:
                raise ValueError(f"{path}: unknown column {column!r} ({list(BENCH_SOURCE_NAMES)})")
            for label in [column, *labels]:
                key = _label_key(str(label))
                if columns.get(key, column) != column:
                    raise ValueError(f"{path}: {label!r} is listed under two columns")
                columns[key] = column
        if default is not None and default not in BENCH_SOURCE_NAMES:
            raise ValueError(
                f"{path}: default {default!r} is not one of {list(BENCH_SOURCE_NAMES)}"
            )
        return cls(columns, default)

    def column(self, source: str) -> str:
        return self.columns.get(_label_key(source), self.default or UNMAPPED)


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


# ---------------------------------------------------------------------------------------------
# instructions: load, exclude, sample
# ---------------------------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------------------------
# rubrics
# ---------------------------------------------------------------------------------------------


def rubric_schema(dimensions: Sequence[str], max_chars: int) -> dict[str, Any]:
    """One structured answer holding every dimension's rubric (`rows.Rubric`), all five levels."""
    return llm_schema(rubric_set_model(tuple(dimensions)), max_chars)


def rubrics_from_object(
    value: Any, dimensions: Sequence[str]
) -> tuple[list[dict[str, Any]], list[str]]:
    """{dimension: rubric} -> rubrics in dimension order (whitespace collapsed), and the
    problems found (e.g. a level that is only whitespace, which a schema's minLength lets
    through), each prefixed by its metrics key."""
    if not isinstance(value, dict):
        return [], [f"not_an_object: rubrics answer is {type(value).__name__}"]
    rubrics, problems = [], []
    for dimension in dimensions:
        rubric = value.get(dimension)
        if isinstance(rubric, dict):
            rubric = {
                "criteria": _collapse(rubric.get("criteria")),
                "score_descriptions": {
                    key: _collapse(text)
                    for key, text in (rubric.get("score_descriptions") or {}).items()
                }
                if isinstance(rubric.get("score_descriptions"), dict)
                else rubric.get("score_descriptions"),
            }
        valid, reasons, messages = validate_rows(Rubric, [rubric])
        if reasons:
            problems += [f"{next(iter(reasons))}: rubric {dimension}: {messages[0]}"]
            continue
        rubrics.append(valid[0].model_dump(by_alias=True))
    return rubrics, problems


def _collapse(text: Any) -> Any:
    return " ".join(text.split()) if isinstance(text, str) else text


def build_rubric_request(row: dict[str, Any], dimensions: Sequence[str], config: BenchSection):
    from janus.llm import ChatRequest

    return ChatRequest(
        messages=render_messages(
            "bench_rubric",
            instruction=row["prompt"],
            system=row["system"],
            preference_set=row["preference_set"],
            dimensions=dimensions,
            max_chars=config.rubric_max_chars,
        ),
        schema=rubric_schema(dimensions, config.rubric_max_chars),
        temperature=config.rubric_generation.temperature,
        top_p=config.rubric_generation.top_p,
        max_tokens=config.rubric_generation.max_tokens,
        tag=f"{row['id']}/rubrics",
    )


# ---------------------------------------------------------------------------------------------
# the whole bench
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BenchInputs:
    """The files the bench reads besides its own sources (the stage script names them)."""

    training_instructions: Sequence[Path]  # instructions the bench must not contain
    collection: Path  # the training system messages, for the train-test similarity
    seed_preferences: Path
    taxonomy: Path
    system_message_examples: Path


class BenchParams(Protocol):
    """The sections the bench stage reads: `load_sections(...)` of them, or the whole Params."""

    llm: LLMSection
    preference_sets: PreferenceSetsSection
    system_messages: SystemMessagesSection
    gold_responses: GoldResponsesSection
    bench: BenchSection


def _generation_sections(
    config: BenchSection, params: BenchParams
) -> tuple[PreferenceSetsSection, SystemMessagesSection, GoldResponsesSection]:
    """The data stages' own sections, filled from the bench's params, so that bench system
    messages and reference answers are made by exactly the training data's code and prompts."""
    # Copies of the training sections (so settings the bench does not name, e.g. the sentence
    # limit or whether the teacher sees the instruction, are the training data's), bench values in.
    preference_sets = params.preference_sets.model_copy(
        update={
            "sets_per_instruction": config.system_messages_per_instruction,
            "max_instructions": None,
            "description_max_chars": config.preference_description_max_chars,
            "name_max_chars": config.preference_name_max_chars,
            "generation": config.preference_set_generation,
            "max_failed_fraction": config.max_failed_fraction,
            "seed": config.seed,
        }
    )
    system_messages = params.system_messages.model_copy(
        update={
            "num_examples": config.num_system_message_examples,
            "generation": config.system_message_generation,
            "max_failed_fraction": config.max_failed_fraction,
            "seed": config.seed,
        }
    )
    gold = params.gold_responses.model_copy(
        update={
            "generation": config.reference_generation,
            "max_failed_fraction": config.max_failed_fraction,
            "seed": config.seed,
        }
    )
    return preference_sets, system_messages, gold


def generate_bench_rows(
    instructions: list[dict[str, Any]],
    taxonomy: Taxonomy,
    seed_sets: list[dict[str, Any]],
    examples: list[dict[str, Any]],
    params: BenchParams,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Bench rows for the selected instructions, and the generation counts and LLM usage."""
    from janus.llm import LLMClient

    config = params.bench
    preference_config, system_config, gold_config = _generation_sections(config, params)
    limits = Limits(config.preference_name_max_chars, config.preference_description_max_chars)
    dropped: Counter = Counter()
    with LLMClient(
        params.llm.teacher, stage="bench", max_failed_fraction=config.max_failed_fraction
    ) as client:
        # 1. a preference set per (instruction, index), as for the training data
        jobs = build_preference_set_requests(instructions, seed_sets, taxonomy, preference_config)
        results = client.generate([request for _, request in jobs], desc="bench preference sets")
        rows = []
        for (row, _), result in zip(jobs, results, strict=True):
            if not result.ok:
                dropped["failed_preference_set"] += 1
                continue
            try:
                preference_set = preference_set_from_object(result.parsed, taxonomy.keys, limits)
            except PreferenceSetError as error:
                dropped["failed_preference_set"] += 1
                log.warning("bench preference set %s rejected: %s", result.request.tag, error)
                continue
            rows.append({**row, "preference_set": preference_set})

        # 2. a system message per preference set
        results = client.generate(
            build_system_message_requests(rows, examples, system_config),
            desc="bench system messages",
        )
        with_system = []
        for row, result in zip(rows, results, strict=True):
            system = clean_system_message(result.text if result.ok else None)
            if system is None:
                dropped["failed_system_message"] += 1
                continue
            with_system.append(
                {
                    **row,
                    "id": f"{row['instruction_id']}-{row['set_index']}",
                    "system": system,
                    "prompt": row["instruction"],
                }
            )

        # 3. a reference answer and the rubrics per system message, in one batch of requests
        references = build_gold_requests(with_system, gold_config)
        rubric_requests = [build_rubric_request(row, taxonomy.keys, config) for row in with_system]
        results = client.generate([*references, *rubric_requests], desc="bench references+rubrics")
    reference_results = results[: len(with_system)]
    rubric_results = results[len(with_system) :]

    bench = []
    for row, reference, rubric in zip(with_system, reference_results, rubric_results, strict=True):
        answer = (reference.text or "").strip() if reference.ok else ""
        if not answer:
            dropped["failed_reference_answer"] += 1
            log.warning("bench %s: no reference answer (%s)", row["id"], reference.error or "empty")
            continue
        if not rubric.ok:
            dropped["failed_rubrics"] += 1
            log.warning("bench %s: no rubrics (%s)", row["id"], rubric.error)
            continue
        rubrics, problems = rubrics_from_object(rubric.parsed, taxonomy.keys)
        candidate = {
            "id": row["id"],
            "instruction_id": row["instruction_id"],
            "source": row["source"],  # ours: the benchmark itself, its own Table 2 column
            "benchmark": row["source"],
            "system": row["system"],
            "prompt": row["prompt"],
            "reference_answer": answer,
            "rubrics": rubrics,
            "preference_set": row["preference_set"],
        }
        if not problems:
            valid, reasons, messages = validate_rows(BenchRow, [candidate])
            problems = [f"{next(iter(reasons))}: {messages[0]}"] if reasons else []
        if problems:
            dropped[problems[0].split(":", 1)[0]] += 1
            log.warning("bench %s dropped: %s", row["id"], "; ".join(problems))
            continue
        bench.append(valid[0].dump())
    metrics = {
        "requested_rows": len(instructions) * config.system_messages_per_instruction,
        "dropped": dict(sorted(dropped.items())),
        "llm": client.stats.as_metrics(),
    }
    return bench, metrics


def train_test_similarity(
    bench: list[dict[str, Any]], training_systems: list[str], config: BenchSection
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Figure 5: each bench system message's highest ROUGE-L F1 against the training ones."""
    pool = sorted(set(training_systems))
    if (
        config.train_test_max_train_messages is not None
        and len(pool) > config.train_test_max_train_messages
    ):
        pool = random.Random(f"{config.seed}:train_test").sample(
            pool, config.train_test_max_train_messages
        )
    if not pool or not bench:
        return [], {
            "mean_of_max": None,
            "max_of_max": None,
            "bench_messages": len(bench),
            "train_messages": len(pool),
        }
    maxima = max_rouge_l_each([row["system"] for row in bench], pool)
    items = [
        {"id": row["id"], "source": row["source"], "group": "bench vs train", "rouge_l_max": value}
        for row, value in zip(bench, maxima, strict=True)
    ]
    values = [item["rouge_l_max"] for item in items]
    return items, {
        "mean_of_max": sum(values) / len(values),
        "max_of_max": max(values),
        "bench_messages": len(values),
        "train_messages": len(pool),
    }


def build_bench(
    params: BenchParams, inputs: BenchInputs, root: Path | str = "."
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, Any]]:
    """(bench rows, train-test ROUGE-L per row, metrics) for `params.bench`."""
    root = Path(root)
    config = params.bench
    columns = SourceColumns.load(root / config.source_columns_path)
    if config.published is not None:
        bench, import_metrics = import_published(config, columns, root)
        if not bench:
            raise RuntimeError(f"bench: no usable row in {config.published}: {import_metrics}")
        source_metrics: dict[str, Any] = {}
    else:
        bench, import_metrics, source_metrics = _build_own(params, inputs, root)
    training_systems = [
        row["system"]
        for row in read_jsonl(inputs.collection)
        if isinstance(row.get("system"), str) and row["system"].strip()
    ]
    similarity_rows, similarity = train_test_similarity(bench, training_systems, config)
    per_benchmark = Counter(row["benchmark"] for row in bench)
    metrics = {
        "rows": len(bench),
        "instructions": len({row["instruction_id"] for row in bench}),
        "rows_per_source": dict(sorted(per_benchmark.items())),  # per Table 2 column
        "sources": source_metrics,
        **import_metrics,
        "train_test_rouge_l": similarity,
    }
    return bench, similarity_rows, metrics


def _build_own(
    params: BenchParams, inputs: BenchInputs, root: Path
) -> tuple[list[dict[str, Any]], dict[str, Any], dict[str, Any]]:
    config = params.bench
    taxonomy = load_taxonomy(inputs.taxonomy)
    training_keys = training_instruction_keys(inputs.training_instructions)
    instructions, source_metrics = select_instructions(config, training_keys, root)
    log.info("bench: %d instructions from %d sources", len(instructions), len(source_metrics))
    seed_sets, _ = read_preference_set_rows(inputs.seed_preferences, taxonomy.keys)
    examples = load_examples(inputs.system_message_examples, taxonomy.keys)
    bench, generation_metrics = generate_bench_rows(
        instructions, taxonomy, seed_sets, examples, params
    )
    if not bench:
        raise RuntimeError(
            f"bench: no usable row out of {generation_metrics['requested_rows']}: "
            f"{generation_metrics['dropped']}"
        )
    return bench, generation_metrics, source_metrics
