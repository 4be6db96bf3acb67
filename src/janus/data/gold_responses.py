"""Stage `gold_responses` (3.2): the teacher answers each instruction under each of its system
messages; the rows become the Multifaceted Collection in its published columns.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from janus.config import GoldResponsesSection, LLMConfig
from janus.logging_utils import get_logger
from janus.prompts import render_messages

log = get_logger(__name__)

COLLECTION_PATH = Path("data/multifaceted_collection.jsonl")
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
    collection, empty = [], 0
    for row, result in zip(rows, results, strict=True):
        output = (result.text or "").strip() if result.ok else ""
        if not output:
            empty += 1
            log.warning(
                "no response for %s: %s", result.request.tag, result.error or "empty answer"
            )
            continue
        collection.append(collection_row(row, output))
    instructions = {row["instruction_id"] for row in collection}
    metrics = {
        "system_messages": len(rows),
        "responses": len(collection),
        "empty": empty,
        "instructions": len(instructions),
        "mean_output_chars": (
            sum(len(row["output"]) for row in collection) / len(collection) if collection else None
        ),
        "llm": client.stats.as_metrics(),
    }
    return collection, metrics
