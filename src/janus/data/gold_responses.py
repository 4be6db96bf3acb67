"""Stage `gold_responses` (3.2): the teacher answers each instruction under each of its system
messages; the rows become the Multifaceted Collection in its published columns.

A response cut off at `max_tokens` (finish_reason "length") is never kept without a word: per
`on_length` it is asked again once with `retry_max_tokens` (and dropped if cut off again), dropped,
or kept with `truncated: true` in its row; the metrics count each case.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from janus.config import GoldResponsesSection, LLMConfig
from janus.logging_utils import get_logger
from janus.prompts import render_messages

log = get_logger(__name__)

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


def build_gold_requests(rows: list[dict[str, Any]], config: GoldResponsesSection) -> list[Any]:
    from janus.llm import ChatRequest

    return [
        ChatRequest(
            messages=render_messages(
                "gold_response", system=row["system"], instruction=row["instruction"]
            ),
            temperature=config.generation.temperature,
            top_p=config.generation.top_p,
            max_tokens=config.generation.max_tokens,
            tag=f"{row['instruction_id']}/{row['set_index']}",
        )
        for row in rows
    ]


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


def generate_gold_responses(
    rows: list[dict[str, Any]], config: GoldResponsesSection, teacher: LLMConfig
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Collection rows (empty responses dropped) and the stage's metrics."""
    from janus.llm import LLMClient

    for number, row in enumerate(rows, start=1):
        missing = [
            key
            for key in ("system", "instruction", "preference_set", "instruction_id")
            if key not in row
        ]
        if missing:
            raise ValueError(f"system message row {number} lacks {missing}")
    requests = build_gold_requests(rows, config)
    with LLMClient(
        teacher, stage="gold_responses", max_failed_fraction=config.max_failed_fraction
    ) as client:
        results = client.generate(requests, desc="gold responses")
        cut_off = [i for i, result in enumerate(results) if _cut_off(result)]
        retried = 0
        if config.on_length == "retry" and cut_off:
            # One more try with a larger budget: a new request (and cache key), same prompt.
            log.info(
                "%d responses hit max_tokens: asking again with %d",
                len(cut_off),
                config.retry_max_tokens,
            )
            again = client.generate(
                [
                    dataclasses.replace(requests[i], max_tokens=config.retry_max_tokens)
                    for i in cut_off
                ],
                desc="gold responses (cut off: retry)",
            )
            for i, result in zip(cut_off, again, strict=True):
                results[i] = result
            retried = len(cut_off)
    collection, empty, dropped, kept_cut_off = [], 0, 0, 0
    for row, result in zip(rows, results, strict=True):
        output = (result.text or "").strip() if result.ok else ""
        if not output:
            empty += 1
            log.warning(
                "no response for %s: %s", result.request.tag, result.error or "empty answer"
            )
            continue
        if _cut_off(result):
            if config.on_length == "keep":
                kept_cut_off += 1
                collection.append({**collection_row(row, output), "truncated": True})
            else:
                dropped += 1
                log.warning(
                    "response for %s cut off at %d tokens: dropped",
                    result.request.tag,
                    result.request.max_tokens,
                )
            continue
        collection.append(collection_row(row, output))
    instructions = {row["instruction_id"] for row in collection}
    metrics = {
        "system_messages": len(rows),
        "responses": len(collection),
        "empty": empty,
        # finish_reason "length": how many hit generation.max_tokens, were asked again with
        # retry_max_tokens, and were dropped or kept (flagged) after that
        "cut_off": {
            "policy": config.on_length,
            "first_pass": len(cut_off),
            "retried": retried,
            "dropped": dropped,
            "kept_flagged": kept_cut_off,
        },
        "instructions": len(instructions),
        "mean_output_chars": (
            sum(len(row["output"]) for row in collection) / len(collection) if collection else None
        ),
        "llm": client.stats.as_metrics(),
    }
    return collection, metrics
