"""What a stage calls before it sends or loads anything: the checks that concern its params
keys (API keys, served models, GPUs), nothing else (no probe request, no hub, no disk)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from pydantic import BaseModel

from janus.config.llm import LLMConfig
from janus.preflight.common import PreflightFailed, failed, resolve_key
from janus.preflight.endpoints import key_checks, served_checks
from janus.preflight.gpus import gpu_checks


def before_stage(params: BaseModel, *keys: str, root: str | Path = ".") -> None:
    """The checks that concern one stage, before it sends or loads anything: for each params key
    naming an LLM endpoint (`llm.judge`, `infer.endpoints.<name>`) its key and model list; for a
    launch setting (`train.common.accelerate_config`, `infer.engine`) the GPUs it asks for.
    Raises `PreflightFailed` with the failing rows."""
    entries = [(key, resolve_key(params, key)) for key in keys]
    llm = [(key, value) for key, value in entries if isinstance(value, LLMConfig)]
    rows = key_checks(llm) + served_checks(llm, probe=False)
    launch = [key for key, value in entries if not isinstance(value, LLMConfig)]
    if launch:
        rows += gpu_checks(params, Path(root), launch)
    bad = failed(rows)
    if bad:
        raise PreflightFailed("preflight: " + "; ".join(f"{row.what}: {row.detail}" for row in bad))


def answering_keys(params: BaseModel, names: Iterable[str], engine_key: str) -> list[str]:
    """The keys that concern a stage whose models answer prompts (`infer`, `helpfulness`):
    each endpoint model's `infer.endpoints.<name>`, and the engine when a local model runs."""
    keys: list[str] = []
    for name in names:
        if params.infer.model_kind(name) == "endpoint":
            keys.append(f"infer.endpoints.{name}")
        elif engine_key not in keys:
            keys.append(engine_key)
    return keys
