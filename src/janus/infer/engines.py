"""Text generation from a local checkpoint: vLLM offline on CUDA, batched transformers otherwise.

Both engines take prompts as token ids, encoded once by `encode_prompts` with the checkpoint's own
tokenizer, so the two see exactly the same input (the text comes from `janus.chat_format`). Both
return, per prompt, `num_samples` `Completion`s with the raw decoded text (special tokens removed),
the number of generated tokens (without the closing EOS) and why generation stopped.

Sampling is seeded: transformers seeds torch once per call (same inputs and batch size, same
samples); vLLM seeds each request (`seed + prompt index`), so a sample does not depend on its
batch-mates.
"""

from __future__ import annotations

import importlib.util
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from janus.config.engine import EngineParams, SamplingParams
from janus.hf_loading import resolve_device, resolve_dtype  # noqa: F401 - re-exported
from janus.logging_utils import get_logger, progress

log = get_logger(__name__)


@dataclass(frozen=True)
class Completion:
    text: str
    num_tokens: int  # generated tokens, the closing EOS excluded
    finish_reason: str  # stop (EOS) | length (max_tokens reached)


@dataclass
class EngineStats:
    """What the metrics files report about one engine's work."""

    sequences: int = 0
    generated_tokens: int = 0
    seconds: float = 0.0  # generation only, model loading excluded
    load_seconds: float = 0.0
    truncated_prompts: int = 0  # prompts cut from the left to fit the context window

    def as_metrics(self) -> dict[str, Any]:
        return {
            "sequences": self.sequences,
            "generated_tokens": self.generated_tokens,
            "truncated_prompts": self.truncated_prompts,
        }

    def as_runtime(self) -> dict[str, Any]:
        """Timings: for runtime/<stage>.json (janus.io.write_runtime), never the DVC metrics."""
        return {
            "generation_seconds": round(self.seconds, 3),
            "load_seconds": round(self.load_seconds, 3),
            "tokens_per_second": (
                round(self.generated_tokens / self.seconds, 3) if self.seconds > 0 else None
            ),
        }


class Engine(Protocol):
    name: str
    tokenizer: Any
    stats: EngineStats

    def generate(
        self, prompts: list[list[int]], sampling: SamplingParams, num_samples: int, seed: int
    ) -> list[list[Completion]]: ...

    def close(self) -> None: ...


def encode_prompts(tokenizer: Any, texts: list[str]) -> list[list[int]]:
    """Token ids of formatted prompts, as training tokenised them (the tokenizer's special
    tokens added, e.g. Mistral's BOS), without doubling a BOS the text already starts with."""
    bos = getattr(tokenizer, "bos_token", None)
    ids = []
    for text in texts:
        add_special = not (bos and text.startswith(bos))
        ids.append(tokenizer(text, add_special_tokens=add_special)["input_ids"])
    return ids


def fit_prompt(ids: list[int], context_length: int | None, max_tokens: int) -> list[int]:
    """Keep the end of a prompt that leaves no room for `max_tokens` new tokens."""
    if context_length is None:
        return ids
    room = context_length - max_tokens
    if room < 1:
        raise ValueError(
            f"max_tokens {max_tokens} leaves no room for a prompt in a context of {context_length}"
        )
    return ids[-room:] if len(ids) > room else ids


def vllm_unavailable_reason() -> str | None:
    """Why vLLM cannot run here, or None when it can."""
    if importlib.util.find_spec("vllm") is None:
        return "vllm is not installed"
    import torch

    if not torch.cuda.is_available():
        return "CUDA is not available"
    return None


def load_engine(
    model_path: str | Path, params: EngineParams, revision: str | None = None
) -> Engine:
    """The engine `params.backend` asks for, falling back to transformers (logged) when vLLM
    or CUDA is missing. `model_path` is a checkpoint directory or a hub id; `revision` (hub ids
    only) pins the hub commit, handed to `from_pretrained` / vLLM as is."""
    if params.backend in ("auto", "vllm"):
        reason = vllm_unavailable_reason()
        if reason is None:
            return VLLMEngine(model_path, params, revision)
        message = "%s: %s; generating with transformers (batch_size %d)"
        if params.backend == "vllm":
            log.warning(message, model_path, reason, params.batch_size)
        else:
            log.info(message, model_path, reason, params.batch_size)
    return TransformersEngine(model_path, params, revision)


def stop_token_ids(tokenizer: Any, generation_config: Any = None) -> list[int]:
    ids: set[int] = set()
    if tokenizer.eos_token_id is not None:
        ids.add(int(tokenizer.eos_token_id))
    configured = getattr(generation_config, "eos_token_id", None)
    if isinstance(configured, int):
        ids.add(configured)
    elif configured:
        ids.update(int(value) for value in configured)
    return sorted(ids)


def _saved_generation_config(model_path: str | Path, revision: str | None = None) -> Any:
    """A checkpoint's generation_config.json (its extra stop tokens), or None."""
    from transformers import GenerationConfig

    try:
        return GenerationConfig.from_pretrained(model_path, revision=revision)
    except OSError:
        return None


class TransformersEngine:
    """Batched `model.generate` with left padding; prompts sorted by length to waste less."""

    name = "transformers"

    def __init__(
        self, model_path: str | Path, params: EngineParams, revision: str | None = None
    ):
        import torch

        from janus.hf_loading import load_model, load_tokenizer

        started = time.perf_counter()
        self.params = params
        self.device = resolve_device(params.device)
        self.tokenizer = load_tokenizer(model_path, padding_side="left", revision=revision)
        self.model = load_model(
            model_path, device=self.device, dtype=params.dtype, eval_mode=True, revision=revision
        )
        self.stop_ids = stop_token_ids(self.tokenizer, self.model.generation_config)
        self.context_length = getattr(self.model.config, "max_position_embeddings", None)
        self._torch = torch
        self.stats = EngineStats(load_seconds=time.perf_counter() - started)

    def _generation_config(self, sampling: SamplingParams):
        from transformers import GenerationConfig

        common = {
            "max_new_tokens": sampling.max_tokens,
            "repetition_penalty": sampling.repetition_penalty,
            "eos_token_id": self.stop_ids,
            "pad_token_id": self.tokenizer.pad_token_id,
        }
        if sampling.temperature == 0:
            return GenerationConfig(do_sample=False, **common)
        # top_k=0: no top-k cut, as in vLLM and the paper (only top-p); a checkpoint's own
        # generation_config.json must not add one.
        return GenerationConfig(
            do_sample=True,
            temperature=sampling.temperature,
            top_p=sampling.top_p,
            top_k=0,
            **common,
        )

    def generate(
        self,
        prompts: list[list[int]],
        sampling: SamplingParams,
        num_samples: int = 1,
        seed: int = 0,
        desc: str = "generating",
    ) -> list[list[Completion]]:
        torch = self._torch
        fitted = []
        for ids in prompts:
            kept = fit_prompt(ids, self.context_length, sampling.max_tokens)
            self.stats.truncated_prompts += len(kept) < len(ids)
            fitted.append(kept)
        # Every (prompt, sample) is one sequence; longest first so padding stays small.
        jobs = [(index, sample) for index in range(len(fitted)) for sample in range(num_samples)]
        jobs.sort(key=lambda job: -len(fitted[job[0]]))
        results: list[list[Completion | None]] = [[None] * num_samples for _ in fitted]
        config = self._generation_config(sampling)
        pad = self.tokenizer.pad_token_id
        stop = set(self.stop_ids)
        torch.manual_seed(seed)
        bar = progress(len(jobs), desc, unit="seq")
        started = time.perf_counter()
        try:
            for start in range(0, len(jobs), self.params.batch_size):
                batch = jobs[start : start + self.params.batch_size]
                width = max(len(fitted[index]) for index, _ in batch)
                input_ids = torch.full((len(batch), width), pad, dtype=torch.long)
                attention = torch.zeros((len(batch), width), dtype=torch.long)
                for row, (index, _) in enumerate(batch):
                    ids = fitted[index]
                    input_ids[row, width - len(ids) :] = torch.tensor(ids, dtype=torch.long)
                    attention[row, width - len(ids) :] = 1
                with torch.inference_mode():
                    output = self.model.generate(
                        input_ids=input_ids.to(self.device),
                        attention_mask=attention.to(self.device),
                        generation_config=config,
                    )
                for row, (index, sample) in enumerate(batch):
                    new_tokens = output[row, width:].tolist()
                    end = next((i for i, tok in enumerate(new_tokens) if tok in stop), None)
                    kept = new_tokens if end is None else new_tokens[:end]
                    results[index][sample] = Completion(
                        text=self.tokenizer.decode(kept, skip_special_tokens=True),
                        num_tokens=len(kept),
                        finish_reason="length" if end is None else "stop",
                    )
                    self.stats.generated_tokens += len(kept)
                self.stats.sequences += len(batch)
                bar.update(len(batch))
        finally:
            bar.close()
            self.stats.seconds += time.perf_counter() - started
        return [[completion for completion in row if completion is not None] for row in results]

    def close(self) -> None:
        del self.model
        if self.device.startswith("cuda"):
            self._torch.cuda.empty_cache()


class VLLMEngine:
    """vLLM offline inference (the paper's D.1 setup), tensor parallel over `tensor_parallel_size`
    GPUs. Imported only here, so machines without vLLM never import it."""

    name = "vllm"

    def __init__(
        self, model_path: str | Path, params: EngineParams, revision: str | None = None
    ):
        import torch
        from vllm import LLM

        started = time.perf_counter()
        self.params = params
        dtype = resolve_dtype(params.dtype, on_cuda=True)
        self.llm = LLM(
            model=str(model_path),
            tensor_parallel_size=params.tensor_parallel_size,
            gpu_memory_utilization=params.gpu_memory_utilization,
            max_model_len=params.max_model_len,
            dtype=str(dtype).removeprefix("torch."),
            revision=revision,
            tokenizer_revision=revision,
        )
        self.tokenizer = self.llm.get_tokenizer()
        try:
            self.context_length = self.llm.llm_engine.model_config.max_model_len
        except AttributeError:  # the engine's layout moves between vLLM versions
            self.context_length = params.max_model_len
        self.stop_ids = stop_token_ids(
            self.tokenizer, _saved_generation_config(model_path, revision)
        )
        self._torch = torch
        self.stats = EngineStats(load_seconds=time.perf_counter() - started)

    def generate(
        self,
        prompts: list[list[int]],
        sampling: SamplingParams,
        num_samples: int = 1,
        seed: int = 0,
        desc: str = "generating",
    ) -> list[list[Completion]]:
        from vllm import SamplingParams as VLLMSamplingParams

        fitted = []
        for ids in prompts:
            kept = fit_prompt(ids, self.context_length, sampling.max_tokens)
            self.stats.truncated_prompts += len(kept) < len(ids)
            fitted.append(kept)
        per_prompt = [
            VLLMSamplingParams(
                n=num_samples,
                temperature=sampling.temperature,
                top_p=sampling.top_p if sampling.temperature > 0 else 1.0,
                repetition_penalty=sampling.repetition_penalty,
                max_tokens=sampling.max_tokens,
                stop_token_ids=self.stop_ids,
                seed=seed + index,
            )
            for index in range(len(fitted))
        ]
        log.info("%s: %d prompts x %d samples with vLLM", desc, len(fitted), num_samples)
        started = time.perf_counter()
        outputs = self.llm.generate(
            [{"prompt_token_ids": ids} for ids in fitted], per_prompt, use_tqdm=True
        )
        self.stats.seconds += time.perf_counter() - started
        stop = set(self.stop_ids)
        results = []
        for output in outputs:
            row = []
            for choice in output.outputs:
                token_ids = list(choice.token_ids)
                if token_ids and token_ids[-1] in stop:
                    token_ids = token_ids[:-1]
                row.append(
                    Completion(
                        text=choice.text,
                        num_tokens=len(token_ids),
                        finish_reason="length" if choice.finish_reason == "length" else "stop",
                    )
                )
                self.stats.generated_tokens += len(token_ids)
            self.stats.sequences += len(row)
            results.append(row)
        return results

    def close(self) -> None:
        # vLLM holds GPU memory until its engine is gone; free it before the next model loads.
        del self.llm
        import gc

        gc.collect()
        if self._torch.cuda.is_available():
            self._torch.cuda.empty_cache()
