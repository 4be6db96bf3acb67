"""Stage `preference_sets` (3.2): task-aligned preference sets, `sets_per_instruction` per
instruction, each generated with a randomly chosen seed set as the example, under the JSON schema
of `janus.data.common.preference_set_schema` (one required object per dimension).
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterable, Iterator
from operator import itemgetter
from pathlib import Path
from typing import Any

from janus.config.llm import LLMConfig
from janus.config.preference_sets import PreferenceSetsSection
from janus.data.common import (
    Limits,
    PreferenceSetError,
    example_json,
    item_rng,
    preference_set_from_object,
    preference_set_schema,
)
from janus.data.taxonomy import Taxonomy
from janus.io import write_jsonl
from janus.logging_utils import get_logger
from janus.prompts import render_messages

log = get_logger(__name__)


def preference_set_jobs(
    instructions: Iterable[dict[str, Any]],
    seed_sets: list[dict[str, Any]],
    taxonomy: Taxonomy,
    config: PreferenceSetsSection,
) -> Iterator[tuple[dict[str, Any], Any]]:
    """(output row without its set, ChatRequest) for every instruction and set index, made as
    they are asked for (an instruction is read when its first request is)."""
    if not seed_sets:
        raise ValueError("no seed preference sets to use as examples (run expand_seeds)")
    limits = Limits(
        config.name_max_chars, config.description_max_chars, config.description_max_sentences
    )
    schema = preference_set_schema(taxonomy.keys, limits)
    return _jobs(instructions, seed_sets, taxonomy, config, schema)


def _jobs(
    instructions: Iterable[dict[str, Any]],
    seed_sets: list[dict[str, Any]],
    taxonomy: Taxonomy,
    config: PreferenceSetsSection,
    schema: dict[str, Any],
) -> Iterator[tuple[dict[str, Any], Any]]:
    from janus.llm.types import ChatRequest

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
            yield row, request


def build_preference_set_requests(
    instructions: list[dict[str, Any]],
    seed_sets: list[dict[str, Any]],
    taxonomy: Taxonomy,
    config: PreferenceSetsSection,
) -> list[tuple[dict[str, Any], Any]]:
    """`preference_set_jobs` as a list (the bench and the forecast)."""
    return list(preference_set_jobs(instructions, seed_sets, taxonomy, config))


def _valid_sets(
    answered: Iterable[tuple[tuple[dict[str, Any], Any], Any]],
    taxonomy: Taxonomy,
    limits: Limits,
    tally: Counter,
    rejected: Counter,
    valid_per_instruction: Counter,
) -> Iterator[dict[str, Any]]:
    """The rows with a valid `preference_set` each; the others counted (and logged) by reason."""
    for (row, _), result in answered:
        tally["requested"] += 1
        if not result.ok:
            tally["failed"] += 1
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
        tally["preference_sets"] += 1
        valid_per_instruction[row["instruction_id"]] += 1
        yield {**row, "preference_set": preference_set}


def generate_preference_sets(
    instructions: Iterable[dict[str, Any]],
    seed_sets: list[dict[str, Any]],
    taxonomy: Taxonomy,
    config: PreferenceSetsSection,
    teacher: LLMConfig,
    out: str | Path,
    total: int | None = None,
    chunk_size: int | None = None,
) -> dict[str, Any]:
    """Write the rows with a valid `preference_set` each to `out` as they come; returns the
    stage's metrics. `total`: how many instructions `instructions` holds (the progress bar's);
    `chunk_size`: the LLM client's (None: its default)."""
    from janus.llm import LLMClient

    if config.max_instructions is not None:
        instructions = itertools.islice(instructions, config.max_instructions)
        total = None if total is None else min(total, config.max_instructions)
    limits = Limits(
        config.name_max_chars, config.description_max_chars, config.description_max_sentences
    )
    tally: Counter = Counter()
    rejected: Counter = Counter()
    valid_per_instruction: Counter = Counter()  # instruction_id: its valid sets
    jobs = preference_set_jobs(instructions, seed_sets, taxonomy, config)
    with LLMClient(
        teacher,
        stage="preference_sets",
        max_failed_fraction=config.max_failed_fraction,
        chunk_size=chunk_size,
    ) as client:
        answered = client.stream_rows(
            jobs,
            itemgetter(1),
            "preference sets",
            None if total is None else total * config.sets_per_instruction,
        )
        write_jsonl(
            out, _valid_sets(answered, taxonomy, limits, tally, rejected, valid_per_instruction)
        )
    requested, kept = tally["requested"], tally["preference_sets"]
    instructions_asked = requested // config.sets_per_instruction  # each makes that many requests
    return {
        "instructions": instructions_asked,
        "requested": requested,
        "preference_sets": kept,
        "failed": tally["failed"],
        "rejected_after_schema": sum(rejected.values()),
        # what a schema cannot say: more sentences than description_max_sentences, blank text
        "rejected_reasons": dict(sorted(rejected.items())),
        "valid_rate": kept / requested if requested else None,
        "instructions_with_all_sets": sum(
            1 for count in valid_per_instruction.values() if count == config.sets_per_instruction
        ),
        "instructions_without_pairable_sets": instructions_asked
        - sum(1 for count in valid_per_instruction.values() if count >= 2),
        "llm": client.stats.as_metrics(),
    }
