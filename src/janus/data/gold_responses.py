"""Stage `gold_responses` (3.2): the teacher answers each instruction under each of its system
messages; the rows become the Multifaceted Collection in its published columns.

A response cut off at `max_tokens` (finish_reason "length") is never kept without a word: per
`on_length` it is asked again once with `retry_max_tokens` (and dropped if cut off again), dropped,
or kept with `truncated: true` in its row; the metrics count each case.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from janus.config.gold_responses import GoldResponsesSection
from janus.config.llm import LLMConfig
from janus.prompts import render_messages
from janus.steps.base import Rejection, Step, Tally
from janus.steps.runner import run_step

if TYPE_CHECKING:
    from janus.llm import ChatResult

# The published Multifaceted Collection's columns, then our stable ids.
COLLECTION_COLUMNS = (
    "main_source",
    "original_source",
    "preference_set",
    "system",
    "prompt",
    "output",
)
ID_COLUMNS = ("instruction_id", "set_index")


def gold_request(row: dict[str, Any], config: GoldResponsesSection) -> Any:
    """The teacher's request for one system-message row."""
    from janus.llm import ChatRequest

    return ChatRequest(
        messages=render_messages(
            "gold_response", system=row["system"], instruction=row["instruction"]
        ),
        temperature=config.generation.temperature,
        top_p=config.generation.top_p,
        max_tokens=config.generation.max_tokens,
        tag=f"{row['instruction_id']}/{row['set_index']}",
    )


def build_gold_requests(rows: list[dict[str, Any]], config: GoldResponsesSection) -> list[Any]:
    return [gold_request(row, config) for row in rows]


def collection_row(row: dict[str, Any], output: str) -> dict[str, Any]:
    return {
        "main_source": row["main_source"],
        "original_source": row["original_source"],
        "preference_set": row["preference_set"],
        "system": row["system"],
        "prompt": row["instruction"],
        "output": output,
        "instruction_id": row["instruction_id"],
        "set_index": row["set_index"],
    }


def _cut_off(result: Any) -> bool:
    return result.ok and result.finish_reason == "length"


def _checked(rows: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for number, row in enumerate(rows, start=1):
        missing = [
            key
            for key in ("system", "instruction", "preference_set", "instruction_id")
            if key not in row
        ]
        if missing:
            raise ValueError(f"system message row {number} lacks {missing}")
        yield row


class GoldResponsesStep(Step):
    """System-message row -> its collection row (an empty answer is rejected; one cut off at
    `max_tokens` is asked again, dropped or kept flagged, per `on_length`)."""

    name = "gold_responses"
    desc = "gold responses"

    def __init__(self, config: GoldResponsesSection):
        self.config = config
        self.max_failed_fraction = config.max_failed_fraction

    def format_input(self, row: dict[str, Any]) -> Any:
        return gold_request(row, self.config)

    def reask(self, result: ChatResult, tally: Tally) -> Any:
        if not _cut_off(result):
            return None
        tally.counts["first_pass"] += 1
        if self.config.on_length != "retry":
            return None
        # One more try with a larger budget: a new request (and cache key), same prompt.
        return dataclasses.replace(result.request, max_tokens=self.config.retry_max_tokens)

    def format_output(self, row: dict[str, Any], result: ChatResult) -> dict[str, Any] | Rejection:
        output = (result.text or "").strip() if result.ok else ""
        if not output:
            return Rejection("empty", result.error or "empty answer")
        if not _cut_off(result):
            return collection_row(row, output)
        if self.config.on_length != "keep":
            return Rejection("dropped", f"cut off at {result.request.max_tokens} tokens")
        return {**collection_row(row, output), "truncated": True}

    def count(self, output: dict[str, Any], tally: Tally) -> None:
        tally.counts["kept_flagged"] += output.get("truncated", False)
        tally.counts["output_chars"] += len(output["output"])
        tally.group("instructions")[output["instruction_id"]] += 1

    def metrics(self, tally: Tally) -> dict[str, Any]:
        responses = tally.written
        return {
            "system_messages": tally.rows,
            "responses": responses,
            "empty": tally.rejected["empty"],
            # finish_reason "length": how many hit generation.max_tokens, were asked again with
            # retry_max_tokens, and were dropped or kept (flagged) after that
            "cut_off": {
                "policy": self.config.on_length,
                "first_pass": tally.counts["first_pass"],
                "retried": tally.reasked,
                "dropped": tally.rejected["dropped"],
                "kept_flagged": tally.counts["kept_flagged"],
            },
            "instructions": len(tally.group("instructions")),
            "mean_output_chars": tally.counts["output_chars"] / responses if responses else None,
        }


def generate_gold_responses(
    rows: Iterable[dict[str, Any]],
    config: GoldResponsesSection,
    teacher: LLMConfig,
    out: str | Path,
    total: int | None = None,
    chunk_size: int | None = None,
) -> dict[str, Any]:
    """Write the collection rows (empty responses dropped) to `out` as they come; returns the
    stage's metrics. `total`: how many rows `rows` holds (the progress bar's); `chunk_size`: the
    LLM client's (None: its default)."""
    step = GoldResponsesStep(config)
    return run_step(step, _checked(rows), teacher, out, total=total, chunk_size=chunk_size)
