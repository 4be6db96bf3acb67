"""Stage `bench` (C.1): the Multifaceted Bench.

Instructions come from the held-out benchmarks (AlpacaEval 2.0, FLASK, Koala, MT-Bench,
Self-Instruct; local files or hub datasets). Any instruction that the training data also holds
(normalised exact match) or that more than one benchmark holds is excluded, then
`instructions_per_source` are sampled per benchmark. Each instruction gets N system messages made
exactly as the training ones are (a preference set, then a system message written from it, with
the data stage's own functions and templates), one reference answer per system message (the gold
response step), and one 1-5 score rubric per preference dimension (one structured call returns
all of them). Rows keep the published Multifaceted-Bench columns plus stable ids.

A row that misses a field, or a rubric that misses a score level, is counted and dropped, never
passed on half-made. The train-test ROUGE-L of system messages (Figure 5) is measured here.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from janus.config import (
    BENCH_SOURCE_NAMES,
    BenchSection,
    BenchSourceConfig,
    GoldResponsesSection,
    Params,
    PreferenceSetsSection,
    SystemMessagesSection,
)
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
from janus.io import read_jsonl
from janus.logging_utils import get_logger
from janus.prompts import render_messages

log = get_logger(__name__)

BENCH_PATH = Path("data/bench.jsonl")  # what infer reads (janus.infer.responses.BENCH_PATH)
TRAIN_TEST_ROUGE_PATH = Path("reports/plots/train_test_rouge.json")

# The published Multifaceted-Bench columns, after our stable ids.
BENCH_COLUMNS = ("source", "system", "prompt", "reference_answer", "rubrics", "preference_set")
ID_COLUMNS = ("id", "instruction_id")
SCORE_LEVELS = tuple(f"score{level}_description" for level in range(1, 6))
RUBRIC_FIELDS = ("criteria", *SCORE_LEVELS)


def normalize_instruction(text: str) -> str:
    """The form two instructions are compared in: case-folded, whitespace collapsed."""
    return " ".join(text.casefold().split())


# ---------------------------------------------------------------------------------------------
# row validation (also used by the judge on whatever bench file it is given)
# ---------------------------------------------------------------------------------------------


def _nonempty_text(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def rubric_problems(rubric: Any, where: str) -> list[str]:
    """What is wrong with one rubric: not an object, no criteria, a missing score level."""
    if not isinstance(rubric, dict):
        return [f"{where}: not an object"]
    problems = []
    for field in RUBRIC_FIELDS:
        if not _nonempty_text(rubric.get(field)):
            kind = "missing_score_level" if field in SCORE_LEVELS else "missing_criteria"
            problems.append(f"{kind}: {where} lacks {field}")
    return problems


def bench_row_problems(row: Any) -> list[str]:
    """Every reason a bench row is unusable, each prefixed by its metrics key; [] when valid."""
    if not isinstance(row, dict):
        return ["not_an_object: row is not a JSON object"]
    problems = []
    for field in ("id", "source", "system", "prompt", "reference_answer"):
        if not _nonempty_text(row.get(field)):
            problems.append(f"missing_field: {field} is missing or empty")
    rubrics = row.get("rubrics")
    if not isinstance(rubrics, list) or not rubrics:
        problems.append("missing_field: rubrics is missing or empty")
    else:
        for index, rubric in enumerate(rubrics):
            problems += rubric_problems(rubric, f"rubric {index}")
    if not isinstance(row.get("preference_set"), list):
        problems.append("missing_field: preference_set is missing or not a list")
    return problems


def problem_key(problem: str) -> str:
    return problem.split(":", 1)[0]


def read_bench(path: Path | str) -> tuple[list[dict[str, Any]], Counter]:
    """The valid rows of a bench file, and the count of dropped rows by reason (logged)."""
    rows, dropped = [], Counter()
    seen_ids: set[str] = set()
    for number, row in enumerate(read_jsonl(path), start=1):
        problems = bench_row_problems(row)
        if not problems and row["id"] in seen_ids:
            problems = [f"duplicate_id: id {row['id']!r} appears more than once"]
        if problems:
            dropped[problem_key(problems[0])] += 1
            log.warning("%s:%d: bench row dropped: %s", path, number, "; ".join(problems))
            continue
        seen_ids.add(row["id"])
        rows.append(row)
    return rows, dropped


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
    for raw in read_rows(source.path, source.split, root=root):
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
        take = min(config.instructions_per_source, len(pool))
        if take < config.instructions_per_source:
            log.warning(
                "bench source %s has only %d usable instructions (asked for %d)",
                name,
                len(pool),
                config.instructions_per_source,
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
    """One structured answer holding every dimension's rubric, each with all five levels."""
    text = {"type": "string", "minLength": 1, "maxLength": max_chars}
    rubric = {
        "type": "object",
        "properties": {field: text for field in RUBRIC_FIELDS},
        "required": list(RUBRIC_FIELDS),
        "additionalProperties": False,
    }
    return {
        "type": "object",
        "properties": {dimension: rubric for dimension in dimensions},
        "required": list(dimensions),
        "additionalProperties": False,
    }


def rubrics_from_object(
    value: Any, dimensions: Sequence[str]
) -> tuple[list[dict[str, str]], list[str]]:
    """{dimension: rubric} -> rubrics in dimension order, and the problems found (e.g. a level
    that is only whitespace, which a schema's minLength lets through)."""
    if not isinstance(value, dict):
        return [], [f"not_an_object: rubrics answer is {type(value).__name__}"]
    rubrics, problems = [], []
    for dimension in dimensions:
        rubric = value.get(dimension)
        found = rubric_problems(rubric, f"rubric {dimension}")
        if found:
            problems += found
            continue
        rubrics.append({field: " ".join(rubric[field].split()) for field in RUBRIC_FIELDS})
    return rubrics, problems


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


def _generation_sections(
    config: BenchSection, params: Params
) -> tuple[PreferenceSetsSection, SystemMessagesSection, GoldResponsesSection]:
    """The data stages' own sections, filled from the bench's params, so that bench system
    messages and reference answers are made by exactly the training data's code and prompts."""
    preference_sets = PreferenceSetsSection(
        sets_per_instruction=config.system_messages_per_instruction,
        description_max_chars=config.preference_description_max_chars,
        name_max_chars=config.preference_name_max_chars,
        generation=config.preference_set_generation,
        max_failed_fraction=config.max_failed_fraction,
        seed=config.seed,
    )
    system_messages = SystemMessagesSection(
        examples_path=params.system_messages.examples_path,
        num_examples=config.num_system_message_examples,
        generation=config.system_message_generation,
        max_failed_fraction=config.max_failed_fraction,
        seed=config.seed,
    )
    gold = GoldResponsesSection(
        generation=config.reference_generation,
        max_failed_fraction=config.max_failed_fraction,
        seed=config.seed,
    )
    return preference_sets, system_messages, gold


def generate_bench_rows(
    instructions: list[dict[str, Any]],
    taxonomy: Taxonomy,
    seed_sets: list[dict[str, Any]],
    examples: list[dict[str, Any]],
    params: Params,
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
            "source": row["source"],
            "system": row["system"],
            "prompt": row["prompt"],
            "reference_answer": answer,
            "rubrics": rubrics,
            "preference_set": row["preference_set"],
        }
        problems += bench_row_problems(candidate) if not problems else []
        if problems:
            dropped[problem_key(problems[0])] += 1
            log.warning("bench %s dropped: %s", row["id"], "; ".join(problems))
            continue
        bench.append(candidate)
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
    params: Params, inputs: BenchInputs, root: Path | str = "."
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, Any]]:
    """(bench rows, train-test ROUGE-L per row, metrics) for `params.bench`."""
    root = Path(root)
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
            f"bench: no usable row out of {generation_metrics['requested_rows']}: {generation_metrics['dropped']}"
        )
    training_systems = [
        row["system"] for row in read_jsonl(inputs.collection) if _nonempty_text(row.get("system"))
    ]
    similarity_rows, similarity = train_test_similarity(bench, training_systems, config)
    per_source = Counter(row["source"] for row in bench)
    metrics = {
        "rows": len(bench),
        "instructions": len({row["instruction_id"] for row in bench}),
        "rows_per_source": dict(sorted(per_source.items())),
        "sources": source_metrics,
        **generation_metrics,
        "train_test_rouge_l": similarity,
    }
    return bench, similarity_rows, metrics
