"""The work of a generation engine, cut into seeded units, and the prompts it takes.

Both engines (janus.infer.engines) take prompts as token ids, encoded once by
`janus.infer.engines.encode_prompts` with the checkpoint's own tokenizer, so the two see exactly
the same input, cut by `fit_prompts` to leave room for the answer. Both return, per prompt, `num_samples` `Completion`s.

Work is cut into `Unit`s, each drawn under its own seed, so a unit's answers do not depend on
which process or call made the others (data-parallel replicas and a resumed run give the same
answers as one uninterrupted process; `janus.infer.generation` caches them per unit):
- transformers: a unit is one batch of `batch_size` (prompt, sample) sequences, longest prompts
  first; batch k is seeded with `seed + k` (torch's generator, once per batch).
- vLLM: a unit is one prompt's request with n = `num_samples` (best-of-N's N in one request),
  seeded with a hash of (seed, the prompt's token ids).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any


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


def fit_prompts(
    prompts: list[list[int]], context_length: int | None, max_tokens: int, stats: EngineStats
) -> list[list[int]]:
    """Every prompt cut to leave `max_tokens` of the context free; the cut ones are counted."""
    fitted = [fit_prompt(ids, context_length, max_tokens) for ids in prompts]
    stats.truncated_prompts += sum(
        len(kept) < len(ids) for kept, ids in zip(fitted, prompts, strict=True)
    )
    return fitted
