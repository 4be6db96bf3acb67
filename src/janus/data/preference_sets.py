"""Stage `preference_sets` (3.2): task-aligned preference sets, `sets_per_instruction` per
instruction, each generated with a randomly chosen seed set as the example, under the JSON schema
of `janus.data.common.preference_set_schema` (one required object per dimension).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from janus.config import LLMConfig, PreferenceSetsSection
from janus.data.common import (
    Limits,
    PreferenceSetError,
    example_json,
    item_rng,
    preference_set_from_object,
    preference_set_schema,
)
from janus.data.taxonomy import Taxonomy
from janus.logging_utils import get_logger
from janus.prompts import render_messages

log = get_logger(__name__)



def build_preference_set_requests(
    instructions: list[dict[str, Any]],
    seed_sets: list[dict[str, Any]],
    taxonomy: Taxonomy,
    config: PreferenceSetsSection,
) -> list[tuple[dict[str, Any], Any]]:
    """(output row without its set, ChatRequest) for every instruction and set index."""
    from janus.llm.types import ChatRequest

    if not seed_sets:
        raise ValueError("no seed preference sets to use as examples (run expand_seeds)")
    limits = Limits(
        config.name_max_chars, config.description_max_chars, config.description_max_sentences
    )
    schema = preference_set_schema(taxonomy.keys, limits)
    jobs = []
    for instruction in instructions:
        for set_index in range(config.sets_per_instruction):
            rng = item_rng(config.seed, instruction["instruction_id"], set_index)
            example = rng.choice(seed_sets)
            messages = render_messages(
                "preference_set",
                instruction=instruction["instruction"],
                example=example_json(example["preference_set"]),
                dimensions=taxonomy.dimensions,
                max_sentences=config.description_max_sentences,
            )
            request = ChatRequest(
                messages=messages,
                schema=schema,
                temperature=config.generation.temperature,
                top_p=config.generation.top_p,
                max_tokens=config.generation.max_tokens,
                sample_index=set_index,  # the three sets of one instruction are distinct samples
                tag=f"{instruction['instruction_id']}/{set_index}",
            )
            row = {**instruction, "set_index": set_index, "seed_id": example["seed_id"]}
            jobs.append((row, request))
    return jobs


def generate_preference_sets(
    instructions: list[dict[str, Any]],
    seed_sets: list[dict[str, Any]],
    taxonomy: Taxonomy,
    config: PreferenceSetsSection,
    teacher: LLMConfig,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Rows with a valid `preference_set` each, and the stage's metrics."""
    from janus.llm import LLMClient

    if config.max_instructions is not None:
        instructions = instructions[: config.max_instructions]
    limits = Limits(
        config.name_max_chars, config.description_max_chars, config.description_max_sentences
    )
    jobs = build_preference_set_requests(instructions, seed_sets, taxonomy, config)
    with LLMClient(
        teacher, stage="preference_sets", max_failed_fraction=config.max_failed_fraction
    ) as client:
        results = client.generate([request for _, request in jobs], desc="preference sets")
    rows, failed = [], 0
    rejected: Counter = Counter()
    for (row, _), result in zip(jobs, results, strict=True):
        if not result.ok:
            failed += 1
            log.warning("no valid preference set for %s: %s", result.request.tag, result.error)
            continue
        try:
            preference_set = preference_set_from_object(result.parsed, taxonomy.keys, limits)
        except PreferenceSetError as error:
            # The client validated against the schema; this catches what a schema cannot say
            # (e.g. a description of only whitespace).
            rejected["too_many_sentences" if "sentences" in str(error) else "other"] += 1
            log.warning("preference set for %s rejected: %s", result.request.tag, error)
            continue
        rows.append({**row, "preference_set": preference_set})
    sets_per_instruction: dict[str, int] = {}
    for row in rows:
        sets_per_instruction[row["instruction_id"]] = (
            sets_per_instruction.get(row["instruction_id"], 0) + 1
        )
    requested = len(jobs)
    metrics = {
        "instructions": len(instructions),
        "requested": requested,
        "preference_sets": len(rows),
        "failed": failed,
        "rejected_after_schema": sum(rejected.values()),
        # what a schema cannot say: more sentences than description_max_sentences, blank text
        "rejected_reasons": dict(sorted(rejected.items())),
        "valid_rate": len(rows) / requested if requested else None,
        "instructions_with_all_sets": sum(
            1 for count in sets_per_instruction.values() if count == config.sets_per_instruction
        ),
        "instructions_without_pairable_sets": len(instructions)
        - sum(1 for count in sets_per_instruction.values() if count >= 2),
        "llm": client.stats.as_metrics(),
    }
    return rows, metrics
