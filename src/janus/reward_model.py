"""Scoring with a reward model (Janus-RM, E.2): the text it reads and the scalar it returns.

One place for both users: training's held-out pairwise accuracy (janus.train.reward) and best-of-N
(janus.infer.best_of_n). Kept out of train/ so that best-of-N inference does not import the
trainers (nor rerun when they change). A reward checkpoint loads with
`janus.hf_loading.load_model(path, head="reward")`.
"""

from __future__ import annotations

from typing import Any


def reward_text(tokenizer: Any, prompt: str, response: str) -> str:
    """What the reward model reads: the formatted prompt, the response, and EOS (as in training)."""
    eos = tokenizer.eos_token or ""
    return prompt + response + ("" if not eos or response.endswith(eos) else eos)


def score_texts(
    model: Any,
    tokenizer: Any,
    texts: list[str],
    batch_size: int = 8,
    max_length: int | None = None,
) -> tuple[list[float], int]:
    """Scalar rewards of whole reward-model inputs (see `reward_text`), and how many were cut
    to `max_length` tokens: over-long inputs keep their end (the score is read at the last token)."""
    import torch

    device = next(model.parameters()).device
    use_bf16 = device.type == "cuda" and torch.cuda.is_bf16_supported()
    was_training, side = model.training, tokenizer.truncation_side
    model.eval()
    tokenizer.truncation_side = "left"
    scores: list[float] = []
    truncated = 0
    try:
        for start in range(0, len(texts), batch_size):
            chunk = texts[start : start + batch_size]
            if max_length is not None:
                lengths = tokenizer(chunk, add_special_tokens=True, return_length=True)["length"]
                truncated += sum(length > max_length for length in lengths)
            batch = tokenizer(
                chunk,
                return_tensors="pt",
                padding=True,
                truncation=max_length is not None,
                max_length=max_length,
            ).to(device)
            with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16):
                logits = model(**batch).logits
            scores.extend(logits.float().reshape(-1).tolist())
    finally:
        tokenizer.truncation_side = side
        model.train(was_training)
    return scores, truncated


def reward_scores(
    model: Any,
    tokenizer: Any,
    prompts: list[str],
    responses: list[str],
    batch_size: int = 8,
    max_length: int | None = None,
) -> list[float]:
    """Scalar rewards of (formatted prompt, response) pairs, read as in training."""
    if len(prompts) != len(responses):
        raise ValueError(f"{len(prompts)} prompts but {len(responses)} responses")
    texts = [reward_text(tokenizer, p, r) for p, r in zip(prompts, responses, strict=True)]
    return score_texts(model, tokenizer, texts, batch_size, max_length)[0]
