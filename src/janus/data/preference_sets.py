"""Stage `preference_sets` (3.2): task-aligned preference sets, `sets_per_instruction` per
instruction, each generated with a randomly chosen seed set as the example, under the JSON schema
of `janus.data.common.preference_set_schema` (one required object per dimension).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
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
from janus.prompts import render_messages
from janus.steps.base import Rejection, Step, Tally
from janus.steps.runner import run_step


def _limits(config: PreferenceSetsSection) -> Limits:
    return Limits(
        config.name_max_chars, config.description_max_chars, config.description_max_sentences
    )


def preference_set_jobs(
    instructions: Iterable[dict[str, Any]],
    seed_sets: list[dict[str, Any]],
    taxonomy: Taxonomy,
    config: PreferenceSetsSection,
) -> Iterator[tuple[dict[str, Any], Any]]:
    """(output row without its set, ChatRequest) for every instruction and set index, made as
    they are asked for (an instruction is read when its first request is)."""
    step = PreferenceSetsStep(seed_sets, taxonomy, config)
    return (job for instruction in instructions for job in step.jobs(instruction))


def build_preference_set_requests(
    instructions: list[dict[str, Any]],
    seed_sets: list[dict[str, Any]],
    taxonomy: Taxonomy,
    config: PreferenceSetsSection,
) -> list[tuple[dict[str, Any], Any]]:
    """`preference_set_jobs` as a list (the bench)."""
    return list(preference_set_jobs(instructions, seed_sets, taxonomy, config))


class PreferenceSetsStep(Step):
    """Instruction row -> `sets_per_instruction` rows with a valid `preference_set` each (one
    request per set); an invalid set is rejected ("failed": no schema-valid answer; else what a
    schema cannot say: "too_many_sentences", "other")."""

    name = "preference_sets"
    desc = "preference sets"

    def __init__(
        self, seed_sets: list[dict[str, Any]], taxonomy: Taxonomy, config: PreferenceSetsSection
    ):
        if not seed_sets:
            raise ValueError("no seed preference sets to use as examples (run expand_seeds)")
        self.seed_sets, self.taxonomy, self.config = seed_sets, taxonomy, config
        self.limits = _limits(config)
        self.schema = preference_set_schema(taxonomy.keys, self.limits)
        self.max_failed_fraction = config.max_failed_fraction

    @property
    def fan_out(self) -> int:
        return self.config.sets_per_instruction

    def _example(self, instruction_id: str, set_index: int) -> dict[str, Any]:
        return item_rng(self.config.seed, instruction_id, set_index).choice(self.seed_sets)

    def jobs(self, instruction: dict[str, Any]) -> list[tuple[dict[str, Any], Any]]:
        """(output row without its set, ChatRequest) for each set index of one instruction."""
        from janus.llm.types import ChatRequest

        config = self.config
        jobs = []
        for set_index in range(config.sets_per_instruction):
            example = self._example(instruction["instruction_id"], set_index)
            messages = render_messages(
                "preference_set",
                instruction=instruction["instruction"],
                example=example_json(example["preference_set"]),
                dimensions=self.taxonomy.dimensions,
                max_sentences=config.description_max_sentences,
            )
            request = ChatRequest(
                messages=messages,
                schema=self.schema,
                temperature=config.generation.temperature,
                top_p=config.generation.top_p,
                max_tokens=config.generation.max_tokens,
                sample_index=set_index,  # the three sets of one instruction are distinct samples
                tag=f"{instruction['instruction_id']}/{set_index}",
            )
            row = {**instruction, "set_index": set_index, "seed_id": example["seed_id"]}
            jobs.append((row, request))
        return jobs

    def format_input(self, row: dict[str, Any]) -> list[Any]:
        return [request for _, request in self.jobs(row)]

    def format_output(
        self, row: dict[str, Any], results: list[Any]
    ) -> list[dict[str, Any] | Rejection]:
        outputs: list[dict[str, Any] | Rejection] = []
        for set_index, result in enumerate(results):
            if not result.ok:
                outputs.append(Rejection("failed", result.error or ""))
                continue
            try:
                preference_set = preference_set_from_object(
                    result.parsed, self.taxonomy.keys, self.limits
                )
            except PreferenceSetError as error:
                # The client validated against the schema; this catches what a schema cannot
                # say (e.g. a description of only whitespace).
                reason = "too_many_sentences" if "sentences" in str(error) else "other"
                outputs.append(Rejection(reason, str(error)))
                continue
            seed_id = self._example(row["instruction_id"], set_index)["seed_id"]
            outputs.append(
                {
                    **row,
                    "set_index": set_index,
                    "seed_id": seed_id,
                    "preference_set": preference_set,
                }
            )
        return outputs

    def count(self, output: dict[str, Any], tally: Tally) -> None:
        tally.group("valid_sets")[output["instruction_id"]] += 1

    def metrics(self, tally: Tally) -> dict[str, Any]:
        requested, kept = tally.requests, tally.written
        rejected = {reason: n for reason, n in tally.rejected.items() if reason != "failed"}
        valid_sets = tally.group("valid_sets")  # instruction_id: its valid sets
        return {
            "instructions": tally.rows,
            "requested": requested,
            "preference_sets": kept,
            "failed": tally.rejected["failed"],
            "rejected_after_schema": sum(rejected.values()),
            # what a schema cannot say: more sentences than description_max_sentences, blank text
            "rejected_reasons": dict(sorted(rejected.items())),
            "valid_rate": kept / requested if requested else None,
            "instructions_with_all_sets": sum(
                1 for count in valid_sets.values() if count == self.config.sets_per_instruction
            ),
            "instructions_without_pairable_sets": tally.rows
            - sum(1 for count in valid_sets.values() if count >= 2),
        }


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
    if config.max_instructions is not None:
        instructions = itertools.islice(instructions, config.max_instructions)
        total = None if total is None else min(total, config.max_instructions)
    step = PreferenceSetsStep(seed_sets, taxonomy, config)
    return run_step(step, instructions, teacher, out, total=total, chunk_size=chunk_size)
