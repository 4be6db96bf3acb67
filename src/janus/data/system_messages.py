"""Stage `system_messages` (3.2): each preference set becomes a system message, written by the
teacher from `num_examples` hand-written examples drawn at random from a pool (paper: 3 of 50).

The examples are shown as earlier turns of the conversation (preferences in, system message out),
rendered with the same user template as the real request, which even small teachers follow. With
`with_instruction`, the teacher also sees the instruction the message is for (the published
system messages are specific to their task), and each example shows its own instruction.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from janus.config.llm import LLMConfig
from janus.config.system_messages import SystemMessagesSection
from janus.data.common import PreferenceSetError, item_rng, validate_preference_set
from janus.io import read_jsonl
from janus.prompts import render
from janus.steps.base import Rejection, Step, Tally
from janus.steps.runner import run_step

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


def system_message_requester(
    examples: list[dict[str, Any]], config: SystemMessagesSection
) -> Callable[[dict[str, Any]], Any]:
    """The function that makes a preference-set row's request (its examples drawn from the pool
    by the row's own seed); checks once that the pool is large enough."""
    from janus.llm import ChatRequest

    if config.num_examples > len(examples):
        raise ValueError(
            f"system_messages.num_examples is {config.num_examples} but the pool "
            f"({config.examples_path}) has only {len(examples)} examples"
        )

    def request(row: dict[str, Any]) -> ChatRequest:
        rng = item_rng(config.seed, row["instruction_id"], row["set_index"])
        shown = rng.sample(examples, config.num_examples)
        return ChatRequest(
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

    return request


def build_system_message_requests(
    rows: list[dict[str, Any]], examples: list[dict[str, Any]], config: SystemMessagesSection
) -> list[Any]:
    request = system_message_requester(examples, config)
    return [request(row) for row in rows]


class SystemMessagesStep(Step):
    """Preference-set row -> the row with its `system` message (an empty one is rejected)."""

    name = "system_messages"
    desc = "system messages"

    def __init__(self, examples: list[dict[str, Any]], config: SystemMessagesSection):
        self._request = system_message_requester(examples, config)
        self.max_failed_fraction = config.max_failed_fraction

    def format_input(self, row: dict[str, Any]) -> Any:
        return self._request(row)

    def format_output(self, row: dict[str, Any], result: Any) -> dict[str, Any] | Rejection:
        system = clean_system_message(result.text if result.ok else None)
        if system is None:
            return Rejection("empty", result.error or "empty answer")
        return {**row, "system": system}

    def count(self, output: dict[str, Any], tally: Tally) -> None:
        # The paper's system messages address the model in the second person ("You are ...").
        tally.counts["second_person"] += output["system"].lower().startswith("you")
        tally.counts["chars"] += len(output["system"])

    def metrics(self, tally: Tally) -> dict[str, Any]:
        written = tally.written
        return {
            "preference_sets": tally.rows,
            "system_messages": written,
            "empty": tally.rejected["empty"],
            "second_person_rate": tally.counts["second_person"] / written if written else None,
            "mean_chars": tally.counts["chars"] / written if written else None,
        }


def generate_system_messages(
    rows: Iterable[dict[str, Any]],
    examples: list[dict[str, Any]],
    config: SystemMessagesSection,
    teacher: LLMConfig,
    out: str | Path,
    total: int | None = None,
    chunk_size: int | None = None,
) -> dict[str, Any]:
    """Write the rows with a `system` message each (empty ones dropped) to `out` as they come;
    returns the stage's metrics. `total`: how many rows `rows` holds (the progress bar's);
    `chunk_size`: the LLM client's (None: its default)."""
    step = SystemMessagesStep(examples, config)
    return run_step(step, rows, teacher, out, total=total, chunk_size=chunk_size)
