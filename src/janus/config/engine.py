"""How the models under test generate (sampling, engine, hub models, model names): shared by
the `infer`, `toxicity` and `helpfulness` sections."""

from __future__ import annotations

from typing import Literal

from pydantic import (
    Field,
)

from janus.config.common import HUB_ID_PATTERN, Section

# a stage key (`infer@<name>`) and a file name; no dot: DVC reads a dot in a key as nesting, so
# `infer@gpt-4.1` would not find its params
MODEL_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]*$"


class SamplingParams(Section):
    """Sampling of the models under test (D.1: vLLM, temperature 1.0, top-p 0.9, penalty 1.03)."""

    temperature: float = Field(ge=0)  # 0: greedy
    top_p: float = Field(gt=0, le=1)
    repetition_penalty: float = Field(gt=0)  # 1.0: off; the OpenAI API has none
    max_tokens: int = Field(ge=1)  # new tokens per response


class EngineParams(Section):
    """Where local checkpoints generate: vLLM offline on CUDA, else batched transformers; one
    engine per data-parallel replica, each answer cached (janus.infer.generation)."""

    # auto: vLLM on a CUDA machine (stops when it is not installed), transformers without CUDA.
    # vllm: vLLM or stop. transformers: transformers on purpose, on any machine.
    backend: Literal["auto", "vllm", "transformers"]
    batch_size: int = Field(ge=1)  # transformers: sequences per generate() call (one seed each)
    device: str  # transformers: auto | cpu | cuda[:n]
    dtype: Literal["auto", "float32", "bfloat16", "float16"]  # auto: bf16 on CUDA
    tensor_parallel_size: int = Field(ge=1)  # vLLM: GPUs per replica
    # Replicas, each its own process and engine; null: the GPUs visible / tensor_parallel_size
    # (one per GPU for transformers; 1 without CUDA). Answers do not depend on it.
    data_parallel_size: int | None = Field(ge=1)
    # vLLM: prompts per generate() call; each call's answers are cached as it returns (what a
    # killed stage can lose), and calls are dealt to the replicas in turn.
    prompts_per_call: int = Field(ge=1)
    gpu_memory_utilization: float = Field(gt=0, le=1)  # vLLM
    max_model_len: int | None = Field(ge=16)  # vLLM; None: the model's own
    # The answer cache (janus.infer.completion_cache; $JANUS_CACHE_DIR overrides it), outside DVC
    # outputs like the LLM cache: a rerun generates only what is not there.
    cache_dir: str


class HubModel(Section):
    """A published model on the Hugging Face hub (stage `infer_hub@<name>`), loaded by
    `from_pretrained(hub_id, revision=revision)` (vLLM: `LLM(hub_id, revision=...)`): e.g. the
    published Janus-7B (`kaist-ai/janus-7b`) or a paper baseline (Mistral-7B-Instruct-v0.2).
    Needs network or a warm HF cache (`HF_HUB_OFFLINE=1` reads only the cache)."""

    hub_id: str = Field(pattern=HUB_ID_PATTERN)
    # A commit hash pins the weights (a rerun then loads the same model); a branch such as
    # "main" follows the hub, and DVC cannot see when it moves.
    revision: str = Field(min_length=1)
    # No default: a model we did not train has no janus_format.json to say how it was prompted.
    prompt_format: Literal["mistral", "chat_template"]
