"""Text generation from a local checkpoint: vLLM offline on CUDA, batched transformers otherwise.

Both engines take prompts as token ids, encoded once by `encode_prompts` with the checkpoint's own
tokenizer, so the two see exactly the same input (the text comes from `janus.chat_format`). Both
return, per prompt, `num_samples` `Completion`s with the raw decoded text (special tokens removed),
the number of generated tokens (without the closing EOS) and why generation stopped.

Work is cut into `Unit`s, each drawn under its own seed, so a unit's answers do not depend on
which process or call made the others (data-parallel replicas and a resumed run give the same
answers as one uninterrupted process; `janus.infer.generation` caches them per unit):
- transformers: a unit is one batch of `batch_size` (prompt, sample) sequences, longest prompts
  first; batch k is seeded with `seed + k` (torch's generator, once per batch).
- vLLM: a unit is one prompt's request with n = `num_samples` (best-of-N's N in one request),
  seeded with a hash of (seed, the prompt's token ids).

`load_engine` builds the engine `resolve_backend` chose; nothing falls back silently: on a CUDA
machine vLLM is required unless `engine.backend` is `transformers`.
"""

from __future__ import annotations

import hashlib
import importlib.util
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from janus.accelerators import GPU_SETUP_COMMAND, cuda_device_count
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


@dataclass(frozen=True)
class Unit:
    """What one seed draws and one cache row holds: (prompt index, sample index) jobs."""

    jobs: tuple[tuple[int, int], ...]
    seed: int


UnitCallback = Callable[[int, list[Completion]], None]


class Engine(Protocol):
    name: str
    tokenizer: Any
    stats: EngineStats

    def generate(
        self, prompts: list[list[int]], sampling: SamplingParams, num_samples: int, seed: int
    ) -> list[list[Completion]]: ...

    def generate_units(
        self,
        prompts: Any,
        units: Sequence[Unit],
        sampling: SamplingParams,
        desc: str = "generating",
        on_unit: UnitCallback | None = None,
    ) -> list[list[Completion]]: ...

    def close(self) -> None: ...


def transformers_units(
    prompts: Sequence[Sequence[int]], num_samples: int, seed: int, batch_size: int
) -> list[Unit]:
    """Every (prompt, sample) is one sequence; longest prompts first so padding stays small;
    `batch_size` sequences per unit, unit k seeded with `seed + k`."""
    jobs = [(index, sample) for index in range(len(prompts)) for sample in range(num_samples)]
    jobs.sort(key=lambda job: -len(prompts[job[0]]))
    return [
        Unit(tuple(jobs[start : start + batch_size]), seed + number)
        for number, start in enumerate(range(0, len(jobs), batch_size))
    ]


def prompt_seed(seed: int, prompt: Sequence[int]) -> int:
    """vLLM's per-request seed: a prompt's samples depend on the seed and the prompt alone."""
    digest = hashlib.sha256(f"{seed}:{list(prompt)}".encode()).hexdigest()
    return int(digest[:8], 16)


def vllm_units(prompts: Sequence[Sequence[int]], num_samples: int, seed: int) -> list[Unit]:
    """One unit per prompt: one request with n = `num_samples`."""
    return [
        Unit(tuple((index, sample) for sample in range(num_samples)), prompt_seed(seed, ids))
        for index, ids in enumerate(prompts)
    ]


def plan_units(
    backend: str,
    prompts: Sequence[Sequence[int]],
    num_samples: int,
    seed: int,
    batch_size: int,
) -> list[Unit]:
    if backend == "vllm":
        return vllm_units(prompts, num_samples, seed)
    return transformers_units(prompts, num_samples, seed, batch_size)


def gather(
    num_prompts: int, num_samples: int, units: Sequence[Unit], answers: Sequence[list[Completion]]
) -> list[list[Completion]]:
    """Per prompt, its samples in sample order, from each unit's answers (in the unit's job order)."""
    results: list[list[Completion | None]] = [[None] * num_samples for _ in range(num_prompts)]
    for unit, completions in zip(units, answers, strict=True):
        if len(completions) != len(unit.jobs):
            raise ValueError(f"a unit of {len(unit.jobs)} jobs came back with {len(completions)}")
        for (index, sample), completion in zip(unit.jobs, completions, strict=True):
            results[index][sample] = completion
    missing = sum(completion is None for row in results for completion in row)
    if missing:
        raise ValueError(f"{missing} (prompt, sample) jobs are in no unit")
    return [[completion for completion in row if completion is not None] for row in results]


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


def fit_prompts(
    prompts: list[list[int]], context_length: int | None, max_tokens: int, stats: EngineStats
) -> list[list[int]]:
    """Every prompt cut to leave `max_tokens` of the context free; the cut ones are counted."""
    fitted = [fit_prompt(ids, context_length, max_tokens) for ids in prompts]
    stats.truncated_prompts += sum(
        len(kept) < len(ids) for kept, ids in zip(fitted, prompts, strict=True)
    )
    return fitted


class _UnitEngine:
    """What both engines share: fit the prompts, plan the units, run them, restore the order."""

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
        prompts: list[list[int]],
        units: Sequence[Unit],
        sampling: SamplingParams,
        desc: str = "generating",
        on_unit: UnitCallback | None = None,
    ) -> list[list[Completion]]:
        raise NotImplementedError


class TransformersEngine(_UnitEngine):
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

    def generate_units(
        self,
        prompts: list[list[int]],
        units: Sequence[Unit],
        sampling: SamplingParams,
        desc: str = "generating",
        on_unit: UnitCallback | None = None,
    ) -> list[list[Completion]]:
        """Each unit's completions in its job order (`prompts` already fit the context);
        `on_unit(position, completions)` as each unit finishes."""
        bar = progress(sum(len(unit.jobs) for unit in units), desc, unit="seq")
        try:
            answers = []
            for position, unit in enumerate(units):
                answers.append(self._generate_batch(prompts, unit, sampling))
                if on_unit is not None:
                    on_unit(position, answers[-1])
                bar.update(len(unit.jobs))
        finally:
            bar.close()
        return answers

    def _generate_batch(
        self, prompts: list[list[int]], unit: Unit, sampling: SamplingParams
    ) -> list[Completion]:
        torch = self._torch
        started = time.perf_counter()
        pad = self.tokenizer.pad_token_id
        stop = set(self.stop_ids)
        width = max(len(prompts[index]) for index, _ in unit.jobs)
        input_ids = torch.full((len(unit.jobs), width), pad, dtype=torch.long)
        attention = torch.zeros((len(unit.jobs), width), dtype=torch.long)
        for row, (index, _) in enumerate(unit.jobs):
            ids = prompts[index]
            input_ids[row, width - len(ids) :] = torch.tensor(ids, dtype=torch.long)
            attention[row, width - len(ids) :] = 1
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


class VLLMEngine(_UnitEngine):
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

    def generate_units(
        self,
        prompts: list[list[int]],
        units: Sequence[Unit],
        sampling: SamplingParams,
        desc: str = "generating",
        on_unit: UnitCallback | None = None,
    ) -> list[list[Completion]]:
        """One `LLM.generate` call for all `units`, each one request of n samples (the unit's
        jobs are one prompt's samples 0..n-1) with the unit's seed; `on_unit(position,
        completions)` for each when the call returns."""
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
        answers = []
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
            answers.append(row)
            if on_unit is not None:
                on_unit(len(answers) - 1, row)
        return answers

    def close(self) -> None:
        # vLLM holds GPU memory until its engine is gone; free it before the next model loads.
        del self.llm
        import gc

        gc.collect()
        if self._torch.cuda.is_available():
            self._torch.cuda.empty_cache()
