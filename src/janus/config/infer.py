"""The `infer` section: the models under test and how they answer the bench."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import (
    Field,
    model_validator,
)

from janus.config.common import Section
from janus.config.engine import MODEL_NAME_PATTERN, EngineParams, HubModel, SamplingParams
from janus.config.llm import LLMConfig


class CheckpointModel(Section):
    """A local checkpoint under test (stage `infer@<name>`)."""

    path: str
    # None: the format the checkpoint was trained with (its janus_format.json); checkpoints we did
    # not train (the base model) use chat_template unless set here (paper: mistral for Mistral 7B).
    prompt_format: Literal["mistral", "chat_template"] | None


class BestOfNModel(CheckpointModel):
    """Best-of-N (6.3, stage `infer_bon@<name>`): n samples of `path`, the RM's favourite kept."""

    reward_model: str
    n: int = Field(ge=1)  # paper: 64


class InferSection(Section):
    """Bench responses (stages infer@, infer_bon@, infer_api@): one output file per model entry.

    Model names are shared by the three groups and must be unique: each is the stem of
    `outputs/responses/<name>.jsonl` and `metrics/infer/<name>.json`.
    """

    params_key: ClassVar[str] = "infer"

    conditions: list[Literal["system", "no_system"]] = Field(min_length=1)
    max_items: int | None = Field(ge=1)  # None: the whole bench
    sampling: SamplingParams
    engine: EngineParams
    reward_batch_size: int = Field(ge=1)  # best-of-N: sequences per reward-model forward
    models: dict[str, CheckpointModel]
    best_of_n: dict[str, BestOfNModel]
    # Published checkpoints and open baselines loaded from the hub by id (stage infer_hub@).
    hub_models: dict[str, HubModel]
    # Baselines behind any OpenAI-compatible endpoint (paper: GPT-4-Turbo); {} for none.
    endpoints: dict[str, LLMConfig]
    # Endpoint rows that still fail after the client's retries are dropped and counted; more
    # than this share fails the stage (a rerun asks only for those: answers are cached).
    max_failed_fraction: float = Field(ge=0, le=1)
    seed: int

    @model_validator(mode="after")
    def _unique_model_names(self) -> InferSection:
        import re

        seen: dict[str, str] = {}
        for group in ("models", "best_of_n", "hub_models", "endpoints"):
            for name in getattr(self, group):
                if not re.match(MODEL_NAME_PATTERN, name):
                    raise ValueError(
                        f"{group}.{name}: a model name must match {MODEL_NAME_PATTERN} "
                        "(it names a stage and a file)"
                    )
                if name in seen:
                    raise ValueError(f"model name {name!r} is in both {seen[name]} and {group}")
                seen[name] = group
        return self

    def model_names(self) -> list[str]:
        """Every model with bench responses, in params order: checkpoints, best-of-N, hub
        models, endpoints."""
        return [*self.models, *self.best_of_n, *self.hub_models, *self.endpoints]

    def model_kind(self, name: str) -> Literal["checkpoint", "best_of_n", "hub", "endpoint"]:
        if name in self.models:
            return "checkpoint"
        if name in self.best_of_n:
            return "best_of_n"
        if name in self.hub_models:
            return "hub"
        if name in self.endpoints:
            return "endpoint"
        raise KeyError(f"infer: no model named {name!r}; known: {self.model_names()}")
