"""The `llm` section: the teacher and judge endpoints (local checkpoint or hub model, or
OpenAI-compatible)."""

from __future__ import annotations

import os
from typing import ClassVar, Literal

from pydantic import (
    Field,
    PrivateAttr,
    field_validator,
    model_validator,
)

from janus.config.common import HUB_ID_PATTERN, HUB_PREFIX, Section


class Price(Section):
    input_per_mtok: float = Field(ge=0, description="USD per million prompt tokens")
    output_per_mtok: float = Field(ge=0, description="USD per million completion tokens")
    # prompt tokens the API reports as served from its prompt cache (usage...cached_tokens)
    cached_input_per_mtok: float = Field(ge=0, description="USD per million cached prompt tokens")
    # the Batch API's discount on every rate above (OpenAI: 0.5, i.e. half price)
    batch_discount: float = Field(ge=0, lt=1, description="fraction off every rate in batch mode")


class LLMConfig(Section):
    backend: Literal["local", "openai"]
    # local: a checkpoint directory (e.g. the `models` stage output) or `hub:<owner>/<name>` (a
    # hub model at model_revision, loaded in process); openai: the model name.
    model: str
    # Any OpenAI-compatible URL (None: api.openai.com), or a list of them: a fleet of replicas
    # serving the same model, balanced by requests in flight; one that stops answering is taken
    # out. Never part of the cache key: a moved server or another replica shares the cache.
    base_url: str | list[str] | None
    # What makes two endpoints "the same model" for the cache (with `model`): who serves it
    # (None: openai for api.openai.com, self-hosted otherwise) and a revision/snapshot tag.
    provider: str | None
    model_revision: str | None
    # Defaults allowed (they cannot change an answer): the *name* of the key's variable (keys
    # never live in params), and how fast requests go out.
    api_key_env: str = "OPENAI_API_KEY"
    max_in_flight: int = Field(8, ge=1)
    requests_per_minute: float = Field(600, gt=0)
    tokens_per_minute: float = Field(1_000_000, gt=0)
    # A request that still fails after these is a dropped (counted) row: they shape outputs.
    max_retries: int = Field(ge=0)
    timeout_s: float = Field(gt=0)
    # How a JSON schema reaches the model: auto tries json_schema, falls back to json_object, then
    # to instructions in the prompt; the result is always validated against the schema.
    structured_output: Literal["auto", "json_schema", "json_object", "prompt"]
    max_invalid_retries: int = Field(ge=0)  # new samples asked for after an invalid answer
    # auto mode: this many prose answers in a row under response_format (a JSON answer resets
    # the count) move the route down; one bad answer or a refusal is no evidence.
    prose_answers_before_fallback: int = Field(ge=1)
    # Default allowed: this many items failing in a row stop the run early (the endpoint looks
    # broken); it stops sending, never changes an answer.
    broken_endpoint_window: int = Field(20, ge=1)
    batch_size: int = Field(ge=1)  # local backend: sequences per generate() call
    device: str  # local backend: auto | cpu | cuda
    dtype: Literal["auto", "float32", "bfloat16", "float16"]
    # Default allowed: where answers are cached, not what they are. Absolute or ~: shared by
    # `dvc exp run --temp` runs.
    cache_dir: str = "~/.cache/janus/llm"
    # Default allowed: USD per model, for cost accounting (runtime, not metrics).
    prices: dict[str, Price] = Field(default_factory=dict)
    # openai backend only: online (Chat Completions) or batch (Files + Batches API, half price,
    # answers within the completion window; see janus.llm.batch).
    mode: Literal["online", "batch"] = "online"
    batch_poll_s: float = Field(30.0, gt=0)  # batch mode: seconds between status polls
    # Spending cap for this role over one run (see janus.llm.pricing); None: no cap. It stops
    # sending, never changes an answer, so it has a default like the other transport settings.
    max_usd: float | None = Field(None, ge=0)
    # Stamped by LLMSection: the role name ("teacher", "judge") and the whole run's cap, so the
    # client can keep the spend ledger without being handed the whole params.
    _role: str = PrivateAttr(default="")
    _run_max_usd: float | None = PrivateAttr(default=None)

    @property
    def role(self) -> str:
        return self._role

    @property
    def run_max_usd(self) -> float | None:
        return self._run_max_usd

    @model_validator(mode="after")
    def _batch_needs_openai(self) -> LLMConfig:
        if self.mode == "batch" and self.backend != "openai":
            raise ValueError("mode 'batch' needs backend 'openai' (the Batch API)")
        if self.mode == "batch" and isinstance(self.base_url, list):
            # a batch lives on the server that made it: a fleet cannot share one
            raise ValueError("mode 'batch' takes one base_url, not a fleet: use mode 'online'")
        return self

    @model_validator(mode="after")
    def _hub_model_is_pinned(self) -> LLMConfig:
        # local backend: `hub:<owner>/<name>` loads a hub model in process; its weights are
        # what model_revision names, so a hub model without one could change under dvc.lock.
        if self.backend == "local" and self.model.startswith(HUB_PREFIX):
            import re

            if not re.match(HUB_ID_PATTERN, self.model.removeprefix(HUB_PREFIX)):
                raise ValueError(f"model {self.model!r}: expected hub:<owner>/<name>")
            if not self.model_revision:
                raise ValueError(
                    f"model {self.model!r} needs a model_revision (a commit hash pins the weights)"
                )
        return self

    def hub_id(self) -> str | None:
        """The hub model a local backend loads (`model: hub:<owner>/<name>`), else None."""
        if self.backend == "local" and self.model.startswith(HUB_PREFIX):
            return self.model.removeprefix(HUB_PREFIX)
        return None

    @field_validator("cache_dir")
    @classmethod
    def _cache_dir_is_absolute(cls, value: str) -> str:
        if not (value.startswith("~") or os.path.isabs(value)):
            raise ValueError(
                "must be absolute or start with ~, so that temporary experiment copies of the "
                "repo share one cache"
            )
        return value

    @field_validator("base_url")
    @classmethod
    def _fleet_is_not_empty(cls, value: str | list[str] | None) -> str | list[str] | None:
        if isinstance(value, list) and (not value or len(set(value)) != len(value)):
            raise ValueError("a list of base URLs must be non-empty and without duplicates")
        return value

    def base_urls(self) -> list[str | None]:
        """The endpoints: one, or the fleet."""
        return list(self.base_url) if isinstance(self.base_url, list) else [self.base_url]


LLM_ROLES = ("teacher", "judge", "open_judge")


class LLMSection(Section):
    params_key: ClassVar[str] = "llm"
    teacher: LLMConfig
    judge: LLMConfig
    # A second judge that no provider can retire: an open model on the user's own GPUs (local
    # backend, `hub:<owner>/<name>` at a pinned model_revision, e.g. Prometheus 2) or behind the
    # endpoint fleet. It grades only when `judge.judges` lists it.
    open_judge: LLMConfig
    # Cap on what all roles together may spend in one run (null: none). A run is the work toward
    # one git commit, or $JANUS_RUN_ID when set; the ledger is spend.sqlite next to the cache.
    run_max_usd: float | None = Field(None, ge=0)

    @model_validator(mode="after")
    def _stamp_roles(self) -> LLMSection:
        for role in LLM_ROLES:
            config = getattr(self, role)
            config._role = role
            config._run_max_usd = self.run_max_usd
        return self
