"""Stage `gold_responses` (3.2): the teacher answers each instruction under each of its system
messages; the rows become the Multifaceted Collection in its published columns.

A response cut off at `max_tokens` (finish_reason "length") is never kept without a word: per
`on_length` it is asked again once with `retry_max_tokens` (and dropped if cut off again), dropped,
or kept with `truncated: true` in its row; the metrics count each case.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections import Counter
from collections.abc import Iterable, Iterator
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from janus.config.gold_responses import GoldResponsesSection
from janus.config.llm import LLMConfig
from janus.io import write_jsonl
from janus.logging_utils import get_logger
from janus.prompts import render_messages

if TYPE_CHECKING:
    from janus.llm import ChatResult, LLMClient

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


def _answered(
    client: LLMClient,
    rows: Iterable[dict[str, Any]],
    config: GoldResponsesSection,
    total: int | None,
    tally: Counter,
) -> Iterator[tuple[dict[str, Any], ChatResult]]:
    """Each row with its final result, in input order, a window (one chunk) of rows at a time:
    with `on_length: retry` a window's cut-off answers are asked again before it is passed on,
    so the rows keep their order and memory stays bounded."""
    from janus.llm import check_failed_fraction

    first_pass = client.stream_rows(
        _checked(rows), partial(gold_request, config=config), "gold responses", total
    )
    retry_failures: Counter = Counter()
    while window := list(itertools.islice(first_pass, client.chunk_size)):
        cut_off = [i for i, (_, result) in enumerate(window) if _cut_off(result)]
        tally["first_pass"] += len(cut_off)
        if config.on_length == "retry" and cut_off:
            # One more try with a larger budget: a new request (and cache key), same prompt.
            log.info(
                "%d responses hit max_tokens: asking again with %d",
                len(cut_off),
                config.retry_max_tokens,
            )
            again = client.generate(
                [
                    dataclasses.replace(window[i][1].request, max_tokens=config.retry_max_tokens)
                    for i in cut_off
                ],
                desc="gold responses (cut off: retry)",
                check_failures=False,
            )
            for i, result in zip(cut_off, again, strict=True):
                window[i] = (window[i][0], result)
            retry_failures.update(result.failure_reason for result in again if not result.ok)
            tally["retried"] += len(cut_off)
        yield from window
    # The retries of every window are one pass, held to the threshold together.
    check_failed_fraction(
        client.stage, dict(retry_failures), tally["retried"], config.max_failed_fraction
    )


def _collection(
    answered: Iterable[tuple[dict[str, Any], ChatResult]],
    config: GoldResponsesSection,
    tally: Counter,
    instructions: set[str],
) -> Iterator[dict[str, Any]]:
    """The collection rows (empty responses dropped, cut-off ones per `on_length`), counted."""
    for row, result in answered:
        tally["system_messages"] += 1
        output = (result.text or "").strip() if result.ok else ""
        if not output:
            tally["empty"] += 1
            log.warning(
                "no response for %s: %s", result.request.tag, result.error or "empty answer"
            )
            continue
        if _cut_off(result):
            if config.on_length != "keep":
                tally["dropped"] += 1
                log.warning(
                    "response for %s cut off at %d tokens: dropped",
                    result.request.tag,
                    result.request.max_tokens,
                )
                continue
            tally["kept_flagged"] += 1
            collected = {**collection_row(row, output), "truncated": True}
        else:
            collected = collection_row(row, output)
        tally["responses"] += 1
        tally["output_chars"] += len(output)
        instructions.add(row["instruction_id"])
        yield collected


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
    from janus.llm import LLMClient

    tally: Counter = Counter()
    instructions: set[str] = set()
    with LLMClient(
        teacher,
        stage="gold_responses",
        max_failed_fraction=config.max_failed_fraction,
        chunk_size=chunk_size,
    ) as client:
        answered = _answered(client, rows, config, total, tally)
        write_jsonl(out, _collection(answered, config, tally, instructions))
    responses = tally["responses"]
    return {
        "system_messages": tally["system_messages"],
        "responses": responses,
        "empty": tally["empty"],
        # finish_reason "length": how many hit generation.max_tokens, were asked again with
        # retry_max_tokens, and were dropped or kept (flagged) after that
        "cut_off": {
            "policy": config.on_length,
            "first_pass": tally["first_pass"],
            "retried": tally["retried"],
            "dropped": tally["dropped"],
            "kept_flagged": tally["kept_flagged"],
        },
        "instructions": len(instructions),
        "mean_output_chars": tally["output_chars"] / responses if responses else None,
        "llm": client.stats.as_metrics(),
    }
