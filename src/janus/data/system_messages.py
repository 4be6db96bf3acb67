"""Stage `system_messages` (3.2): each preference set becomes a system message, written by the
teacher from `num_examples` hand-written examples drawn at random from a pool (paper: 3 of 50).

The examples are shown as earlier turns of the conversation (preferences in, system message out),
rendered with the same user template as the real request, which even small teachers follow. With
`with_instruction`, the teacher also sees the instruction the message is for (the published
system messages are specific to their task), and each example shows its own instruction.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from janus.config import LLMConfig, SystemMessagesSection
from janus.data.common import PreferenceSetError, item_rng, validate_preference_set
from janus.io import read_jsonl
from janus.logging_utils import get_logger
from janus.prompts import render

log = get_logger(__name__)


_LABEL = re.compile(r"^\s*(?:\*\*)?system(?: message)?(?:\*\*)?\s*:\s*", re.IGNORECASE)


def load_examples(path: Path | str, dimensions: Sequence[str]) -> list[dict[str, Any]]:
    """The hand-written pool: rows of {instruction, preference_set, system}, each checked."""
    examples = read_jsonl(path)
    for number, example in enumerate(examples, start=1):
        try:
            example["preference_set"] = validate_preference_set(
                example.get("preference_set"), dimensions
            )
        except PreferenceSetError as error:
            raise ValueError(f"{path}:{number}: invalid preference_set: {error}") from None
        for key in ("system", "instruction"):
            value = example.get(key)
            if not isinstance(value, str) or not value.strip():
                raise ValueError(f"{path}:{number}: {key!r} must be a non-empty string")
    if not examples:
        raise ValueError(f"{path}: the example pool is empty")
    return examples


def clean_system_message(text: str | None) -> str | None:
    """The generated system message without a leading label or wrapping quotes; None if empty."""
    if not text:
        return None
    message = _LABEL.sub("", text.strip()).strip()
    if len(message) >= 2 and message[0] == message[-1] and message[0] in "\"'":
        message = message[1:-1].strip()
    return message or None


def system_message_messages(
    preference_set: list[dict[str, str]],
    examples: list[dict[str, Any]],
    instruction: str | None = None,
) -> list[dict[str, str]]:
    """The chat: the task, then each example as a ([instruction,] preferences -> system message)
    exchange, then the preference set to convert. With an `instruction`, every turn shows one."""
    with_instruction = instruction is not None
    messages = [
        {
            "role": "system",
            "content": render("system_message", "system", with_instruction=with_instruction),
        }
    ]
    for example in examples:
        shown = example["instruction"] if with_instruction else None
        content = render(
            "system_message", preference_set=example["preference_set"], instruction=shown
        )
        messages.append({"role": "user", "content": content})
        messages.append({"role": "assistant", "content": example["system"].strip()})
    content = render("system_message", preference_set=preference_set, instruction=instruction)
    messages.append({"role": "user", "content": content})
    return messages


def build_system_message_requests(
    rows: list[dict[str, Any]], examples: list[dict[str, Any]], config: SystemMessagesSection
) -> list[Any]:
    from janus.llm import ChatRequest

    if config.num_examples > len(examples):
        raise ValueError(
            f"system_messages.num_examples is {config.num_examples} but the pool "
            f"({config.examples_path}) has only {len(examples)} examples"
        )
    requests = []
    for row in rows:
        rng = item_rng(config.seed, row["instruction_id"], row["set_index"])
        shown = rng.sample(examples, config.num_examples)
        requests.append(
            ChatRequest(
                messages=system_message_messages(
                    row["preference_set"],
                    shown,
                    row["instruction"] if config.with_instruction else None,
                ),
                temperature=config.generation.temperature,
                top_p=config.generation.top_p,
                max_tokens=config.generation.max_tokens,
                tag=f"{row['instruction_id']}/{row['set_index']}",
            )
        )
    return requests


def generate_system_messages(
    rows: list[dict[str, Any]],
    examples: list[dict[str, Any]],
    config: SystemMessagesSection,
    teacher: LLMConfig,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The rows with a `system` message each (empty ones dropped), and the stage's metrics."""
    from janus.llm import LLMClient

    requests = build_system_message_requests(rows, examples, config)
    with LLMClient(
        teacher, stage="system_messages", max_failed_fraction=config.max_failed_fraction
    ) as client:
        results = client.generate(requests, desc="system messages")
    out, empty = [], 0
    for row, result in zip(rows, results, strict=True):
        system = clean_system_message(result.text if result.ok else None)
        if system is None:
            empty += 1
            log.warning(
                "no system message for %s: %s", result.request.tag, result.error or "empty answer"
            )
            continue
        out.append({**row, "system": system})
    metrics = {
        "preference_sets": len(rows),
        "system_messages": len(out),
        "empty": empty,
        # The paper's system messages address the model in the second person ("You are ...").
        "second_person_rate": (
            sum(row["system"].lower().startswith("you") for row in out) / len(out) if out else None
        ),
        "mean_chars": sum(len(row["system"]) for row in out) / len(out) if out else None,
        "llm": client.stats.as_metrics(),
    }
    return out, metrics
