"""The bench rows the teacher writes for the selected instructions: a preference set, a system
message (the training data's own functions and templates), a reference answer and one 1-5 rubric
per preference dimension (one structured call returns all of them)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any, Protocol

from janus.config.bench import BenchSection
from janus.config.gold_responses import GoldResponsesSection
from janus.config.llm import LLMSection
from janus.config.preference_sets import PreferenceSetsSection
from janus.config.system_messages import SystemMessagesSection
from janus.data.common import Limits, PreferenceSetError, preference_set_from_object
from janus.data.gold_responses import build_gold_requests
from janus.data.preference_sets import build_preference_set_requests
from janus.data.system_messages import build_system_message_requests, clean_system_message
from janus.data.taxonomy import Taxonomy
from janus.evaluate.rows import BenchRow, Rubric, llm_schema, rubric_set_model, validate_rows
from janus.logging_utils import get_logger
from janus.prompts import render_messages

log = get_logger(__name__)


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
