"""A preflight row, the statuses, and how the checks find what the params name."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from janus.config.llm import LLMConfig

OK, FAIL, WARN, SKIP = "ok", "FAIL", "warn", "skip"


class PreflightFailed(RuntimeError):
    """A check a stage needs failed: raised before the stage sends or loads anything."""


@dataclass
class Check:
    area: str  # served | key | gpu | input | hub | disk | tiktoken
    what: str  # the params key (or path) the row is about
    status: str  # ok | FAIL | warn | skip
    detail: str


def llm_configs(params: BaseModel, prefix: str = "") -> Iterator[tuple[str, LLMConfig]]:
    """Every LLM endpoint configuration in the params, with its dotted key (`llm.teacher`,
    `infer.endpoints.gpt-4`): found by type, so a role or section added later is included."""
    for name in type(params).model_fields:
        value = getattr(params, name)
        key = f"{prefix}{name}"
        if isinstance(value, LLMConfig):
            yield key, value
        elif isinstance(value, BaseModel):
            yield from llm_configs(value, f"{key}.")
        elif isinstance(value, dict):
            for entry, item in value.items():
                if isinstance(item, LLMConfig):
                    yield f"{key}.{entry}", item
                elif isinstance(item, BaseModel):
                    yield from llm_configs(item, f"{key}.{entry}.")


def resolve_key(params: BaseModel, key: str) -> Any:
    node: Any = params
    for part in key.split("."):
        node = node[part] if isinstance(node, dict) else getattr(node, part)
    return node


def failed(rows: Iterable[Check]) -> list[Check]:
    return [row for row in rows if row.status == FAIL]
