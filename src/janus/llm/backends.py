"""The backends behind `LLMClient` (`LLMConfig.backend`, `mode`): what each must do, and which
one a config gets. Each is imported only when chosen, so a stage loads only the one it runs."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

from janus.config.llm import LLMConfig
from janus.llm.types import Job, UsageStats


class Backend(Protocol):
    name: str

    def identity(self) -> dict[str, Any]: ...

    def run(self, jobs: Iterable[Job], on_done) -> None: ...

    def close(self) -> None: ...


def make_backend(config: LLMConfig, stats: UsageStats, stage: str = "") -> Backend:
    if config.backend == "local":
        from janus.llm.local import LocalBackend, hub_snapshot

        hub_id = config.hub_id()
        if hub_id is not None:
            # a hub model (the open judge) runs on vLLM when it can, transformers otherwise
            from janus.llm.local_vllm import LocalVLLMBackend, vllm_ready

            if vllm_ready(config.device):
                path, fingerprint = hub_snapshot(hub_id, config.model_revision)
                return LocalVLLMBackend(path, fingerprint, config.dtype)
        return LocalBackend(
            config.model,
            config.batch_size,
            config.device,
            config.dtype,
            hub_id=config.hub_id(),
            revision=config.model_revision,
        )
    if config.backend == "openai" and config.mode == "batch":
        from janus.llm.batch import BatchBackend

        return BatchBackend(config, stats, stage=stage)  # the stage labels its batches
    if config.backend == "openai":
        from janus.llm.openai_backend import OpenAIBackend

        return OpenAIBackend(config, stats)
    raise ValueError(f"unknown LLM backend {config.backend!r}")
