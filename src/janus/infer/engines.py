"""Text generation from a local checkpoint: vLLM offline on CUDA, batched transformers otherwise.

Both engines take prompts as token ids, encoded once by `encode_prompts` with the checkpoint's
own tokenizer so the two see exactly the same input (the text from `janus.chat_format`), and
return, per prompt, `num_samples` `Completion`s with the raw decoded text (special tokens
removed), the number of generated tokens (without the closing EOS) and why generation stopped. Both run seeded `Unit`s (janus.infer.units): a transformers unit is one
batch, a vLLM unit one prompt's request of n samples.

`load_engine` builds the engine `resolve_backend` chose; nothing falls back silently: on a CUDA
machine vLLM is required unless `engine.backend` is `transformers`.
"""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

from janus.accelerators import GPU_SETUP_COMMAND, cuda_device_count
from janus.config.engine import EngineParams, SamplingParams
from janus.hf_loading import pad_ids, resolve_device, resolve_dtype
from janus.infer.units import (
    Completion,
    EngineStats,
    Unit,
    UnitCallback,
    fit_prompts,
    gather,
    plan_units,
)
from janus.logging_utils import get_logger, progress

log = get_logger(__name__)


class Engine(Protocol):
    """What the stages generate with: an engine of this module, or the cached, data-parallel
    `janus.infer.generation.Generator` over them."""

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


def vllm_install_hint() -> str:
    return (
        f"`{GPU_SETUP_COMMAND}` (requirements-gpu.lock: vLLM with the CUDA torch it pins), or set "
        "engine.backend: transformers to generate with transformers on purpose"
    )


def resolve_backend(params: EngineParams) -> str:
    """The engine `params.backend` means on this machine, decided before anything loads.

    auto: vLLM on a CUDA machine, transformers without CUDA (logged). vllm: vLLM or stop.
    transformers: always transformers. vLLM asked for (explicitly, or by auto on CUDA) but not
    installed, or vllm on a machine without CUDA, stops the stage with what to do instead.
    """
    if params.backend == "transformers":
        return "transformers"
    gpus = cuda_device_count()
    if params.backend == "vllm" and gpus == 0:
        raise RuntimeError(
            "engine.backend is vllm but no CUDA device is visible; set engine.backend: "
            "transformers (or auto) to generate on this machine"
        )
    if gpus == 0:
        log.info("no CUDA device: generating with transformers (engine.backend auto)")
        return "transformers"
    if importlib.util.find_spec("vllm") is None:
        raise RuntimeError(
            f"engine.backend is {params.backend} on a machine with {gpus} CUDA device(s), but vLLM "
            f"is not installed. Run {vllm_install_hint()}."
        )
    return "vllm"


def load_engine(
    model_path: str | Path,
    params: EngineParams,
    revision: str | None = None,
    backend: str | None = None,
) -> Engine:
    """The engine of `backend` (default: `resolve_backend(params)`) on one replica's devices.
    `model_path` is a checkpoint directory or a hub id; `revision` (hub ids only) pins the hub
    commit, handed to `from_pretrained` / vLLM as is."""
    backend = backend or resolve_backend(params)
    if backend == "vllm":
        return VLLMEngine(model_path, params, revision)
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


class UnitEngine:
    """What both engines share: fit the prompts, plan the units, run them, restore the order.
    An engine says only how it answers a run of units (`answer_units`)."""

    name: str
    params: EngineParams
    context_length: int | None
    stats: EngineStats

    def fit(self, prompts: list[list[int]], max_tokens: int) -> list[list[int]]:
        return fit_prompts(prompts, self.context_length, max_tokens, self.stats)

    def generate(
        self,
        prompts: list[list[int]],
        sampling: SamplingParams,
        num_samples: int = 1,
        seed: int = 0,
        desc: str = "generating",
    ) -> list[list[Completion]]:
        fitted = self.fit(prompts, sampling.max_tokens)
        units = plan_units(self.name, fitted, num_samples, seed, self.params.batch_size)
        answers = self.generate_units(fitted, units, sampling, desc)
        return gather(len(fitted), num_samples, units, answers)

    def generate_units(
        self,
        prompts: Any,
        units: Sequence[Unit],
        sampling: SamplingParams,
        desc: str = "generating",
        on_unit: UnitCallback | None = None,
    ) -> list[list[Completion]]:
        """Each unit's completions in its job order (`prompts`, by index, already fit the
        context); `on_unit(position, completions)` as each unit's answers come."""
        answers = []
        for position, completions in enumerate(self.answer_units(prompts, units, sampling, desc)):
            answers.append(completions)
            if on_unit is not None:
                on_unit(position, completions)
        return answers

    def answer_units(
        self, prompts: Any, units: Sequence[Unit], sampling: SamplingParams, desc: str
    ) -> Iterator[list[Completion]]:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


class TransformersEngine(UnitEngine):
    """Batched `model.generate` with left padding; prompts sorted by length to waste less."""

    name = "transformers"

    def __init__(self, model_path: str | Path, params: EngineParams, revision: str | None = None):
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

    def answer_units(
        self, prompts: Any, units: Sequence[Unit], sampling: SamplingParams, desc: str
    ) -> Iterator[list[Completion]]:
        """One batch a unit, in order, under a progress bar of sequences."""
        bar = progress(sum(len(unit.jobs) for unit in units), desc, unit="seq")
        try:
            for unit in units:
                yield self._generate_batch(prompts, unit, sampling)
                bar.update(len(unit.jobs))
        finally:
            bar.close()

    def _generate_batch(
        self, prompts: list[list[int]], unit: Unit, sampling: SamplingParams
    ) -> list[Completion]:
        torch = self._torch
        started = time.perf_counter()
        stop = set(self.stop_ids)
        input_ids, attention = pad_ids(self.tokenizer, [prompts[i] for i, _ in unit.jobs], "left")
        width = input_ids.shape[1]
        torch.manual_seed(unit.seed)
        with torch.inference_mode():
            output = self.model.generate(
                input_ids=input_ids.to(self.device),
                attention_mask=attention.to(self.device),
                generation_config=self._generation_config(sampling),
            )
        completions = []
        for row in range(len(unit.jobs)):
            new_tokens = output[row, width:].tolist()
            end = next((i for i, tok in enumerate(new_tokens) if tok in stop), None)
            kept = new_tokens if end is None else new_tokens[:end]
            completions.append(
                Completion(
                    text=self.tokenizer.decode(kept, skip_special_tokens=True),
                    num_tokens=len(kept),
                    finish_reason="length" if end is None else "stop",
                )
            )
            self.stats.generated_tokens += len(kept)
        self.stats.sequences += len(unit.jobs)
        self.stats.seconds += time.perf_counter() - started
        return completions

    def close(self) -> None:
        del self.model
        if self.device.startswith("cuda"):
            self._torch.cuda.empty_cache()


class VLLMEngine(UnitEngine):
    """vLLM offline inference (the paper's D.1 setup), tensor parallel over `tensor_parallel_size`
    GPUs. Imported only here, so machines without vLLM never import it."""

    name = "vllm"

    def __init__(self, model_path: str | Path, params: EngineParams, revision: str | None = None):
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

    def answer_units(
        self, prompts: Any, units: Sequence[Unit], sampling: SamplingParams, desc: str
    ) -> Iterator[list[Completion]]:
        """One `LLM.generate` call for all `units`, each one request of n samples (the unit's
        jobs are one prompt's samples 0..n-1) with the unit's seed; every unit's answers come
        when the call returns."""
        from vllm import SamplingParams as VLLMSamplingParams

        requests, per_request = [], []
        for unit in units:
            index = unit.jobs[0][0]
            if any(job[0] != index for job in unit.jobs):
                raise ValueError("a vLLM unit holds the samples of one prompt")
            requests.append({"prompt_token_ids": prompts[index]})
            per_request.append(
                VLLMSamplingParams(
                    n=len(unit.jobs),
                    temperature=sampling.temperature,
                    top_p=sampling.top_p if sampling.temperature > 0 else 1.0,
                    repetition_penalty=sampling.repetition_penalty,
                    max_tokens=sampling.max_tokens,
                    stop_token_ids=self.stop_ids,
                    seed=unit.seed,
                )
            )
        log.info("%s: %d prompts with vLLM", desc, len(requests))
        started = time.perf_counter()
        outputs = self.llm.generate(requests, per_request, use_tqdm=True)
        self.stats.seconds += time.perf_counter() - started
        stop = set(self.stop_ids)
        for output in outputs:
            # vLLM may finish a request's samples in any order; `index` is the sample's number.
            row = []
            for choice in sorted(output.outputs, key=lambda choice: choice.index):
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
            yield row

    def close(self) -> None:
        # vLLM holds GPU memory until its engine is gone; free it before the next model loads.
        del self.llm
        import gc

        gc.collect()
        if self._torch.cuda.is_available():
            self._torch.cuda.empty_cache()
