"""Best-of-N sampling (paper 6.3, E.2): N samples per prompt, the reward model's favourite kept.

The reward model sees exactly what it was trained on and is scored by its own function
(janus.reward_model): `format_prompt(...)` in the RM's own prompt format (its janus_format.json),
then the response, then the EOS token. Its one output logit is the reward.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from janus.chat_format import format_prompt, load_format
from janus.logging_utils import get_logger, progress

log = get_logger(__name__)


@dataclass(frozen=True)
class Candidate:
    """One sampled response to score, with the (system, instruction) it answers."""

    system: str | None
    instruction: str
    response: str


RewardFunction = Callable[[Sequence[Candidate]], list[float]]


def select_best(rewards: Sequence[float]) -> int:
    """Index of the highest reward; ties go to the earliest sample, NaN rewards never win."""
    best = None
    for index, reward in enumerate(rewards):
        if math.isnan(reward):
            continue
        if best is None or reward > rewards[best]:
            best = index
    if best is None:
        raise ValueError(f"no finite reward among {len(rewards)} samples")
    return best


@dataclass
class BestOfNChoice:
    index: int  # which sample won
    reward: float
    rewards: list[float]


def choose_best(
    groups: Sequence[Sequence[Candidate]], reward_fn: RewardFunction
) -> list[BestOfNChoice]:
    """Score every candidate of every group in one pass and keep each group's best."""
    flat = [candidate for group in groups for candidate in group]
    rewards = reward_fn(flat)
    if len(rewards) != len(flat):
        raise ValueError(f"reward function returned {len(rewards)} rewards for {len(flat)} samples")
    choices = []
    start = 0
    for group in groups:
        group_rewards = [float(value) for value in rewards[start : start + len(group)]]
        start += len(group)
        best = select_best(group_rewards)
        choices.append(BestOfNChoice(index=best, reward=group_rewards[best], rewards=group_rewards))
    return choices


class RewardModelScorer:
    """A scalar-reward checkpoint (janus.train.reward's model) as a `RewardFunction`: the text it
    reads and the score are the reward model's own (`janus.reward_model.reward_text` and
    `score_texts`), in its own prompt format (its janus_format.json)."""

    def __init__(
        self,
        model_path: str | Path,
        batch_size: int = 8,
        device: str = "auto",
        dtype: str = "auto",
    ):
        from janus.hf_loading import context_length, load_model, load_tokenizer

        started = time.perf_counter()
        self.path = Path(model_path)
        self.batch_size = batch_size
        self.prompt_format = load_format(model_path)
        self.tokenizer = load_tokenizer(model_path)
        self.model = load_model(
            model_path, head="reward", device=device, dtype=dtype,
            pad_token_id=self.tokenizer.pad_token_id, eval_mode=True,
        )
        self.device = str(next(self.model.parameters()).device)
        self.context_length = context_length(self.model)
        self.seconds = 0.0
        self.load_seconds = time.perf_counter() - started
        self.truncated = 0  # inputs cut from the left (the prompt's start) to fit the context

    def text(self, candidate: Candidate) -> str:
        from janus.reward_model import reward_text

        prompt = format_prompt(
            self.tokenizer, candidate.instruction, candidate.system, self.prompt_format
        )
        return reward_text(self.tokenizer, prompt, candidate.response)

    def __call__(self, candidates: Sequence[Candidate]) -> list[float]:
        from janus.reward_model import score_texts

        texts = [self.text(c) for c in candidates]
        # Longest first: batches of similar lengths waste less padding; scores go back in order.
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        rewards = [math.nan] * len(texts)
        bar = progress(len(texts), "reward model", unit="seq")
        started = time.perf_counter()
        try:
            for start in range(0, len(order), self.batch_size):
                batch = order[start : start + self.batch_size]
                scores, truncated = score_texts(
                    self.model, self.tokenizer, [texts[i] for i in batch], len(batch), self.context_length
                )
                self.truncated += truncated
                for index, score in zip(batch, scores, strict=True):
                    rewards[index] = float(score)
                bar.update(len(batch))
        finally:
            bar.close()
            self.seconds += time.perf_counter() - started
        return rewards

    def close(self) -> None:
        import torch

        del self.model
        if self.device.startswith("cuda"):
            torch.cuda.empty_cache()


def reward_model_metadata(scorer: Any) -> dict[str, Any]:
    if not isinstance(scorer, RewardModelScorer):
        return {}
    return {
        "reward_model": str(scorer.path),
        "reward_prompt_format": scorer.prompt_format,
        "reward_truncated_inputs": scorer.truncated,
    }


def reward_runtime(scorer: Any) -> dict[str, Any]:
    """Timings: for runtime/<stage>.json, never the DVC metrics."""
    if not isinstance(scorer, RewardModelScorer):
        return {}
    return {
        "reward_seconds": round(scorer.seconds, 3),
        "reward_load_seconds": round(scorer.load_seconds, 3),
    }
