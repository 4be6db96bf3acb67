"""Fluency: each generation's perplexity under a reference LM, conditioned on its prompt."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from janus.evaluate.toxicity.prompts import ToxicityPrompt
from janus.infer.engines import encode_prompts, resolve_device
from janus.logging_utils import progress


class PerplexityModel:
    def __init__(self, model_path: str | Path, batch_size: int = 8, device: str = "auto"):
        import torch

        from janus.hf_loading import load_model, load_tokenizer

        self.device = resolve_device(device)
        self.batch_size = batch_size
        self.tokenizer = load_tokenizer(model_path)
        self.model = load_model(model_path, device=self.device, dtype="auto", eval_mode=True)
        self.context_length = getattr(self.model.config, "max_position_embeddings", None)
        self._torch = torch

    def _sequence(self, context: str, continuation: str) -> tuple[list[int], int] | None:
        """Token ids of context + continuation and where the continuation starts."""
        if not continuation.strip():
            return None
        cont_ids = self.tokenizer(continuation, add_special_tokens=False)["input_ids"]
        ctx_ids = encode_prompts(self.tokenizer, [context])[0] if context else []
        if not ctx_ids and self.tokenizer.bos_token_id is not None:
            ctx_ids = [self.tokenizer.bos_token_id]
        if not ctx_ids:  # nothing predicts the first token: it is not scored
            ctx_ids, cont_ids = cont_ids[:1], cont_ids[1:]
        if not cont_ids:
            return None
        ids = ctx_ids + cont_ids
        start = len(ctx_ids)
        if self.context_length and len(ids) > self.context_length:
            cut = len(ids) - self.context_length
            ids, start = ids[cut:], max(1, start - cut)
        return ids, start

    def perplexities(
        self, contexts: Sequence[str], continuations: Sequence[str]
    ) -> list[float | None]:
        """Per pair: exp(mean NLL of the continuation's tokens given the context); None when
        the continuation has no tokens."""
        from janus.hf_loading import pad_ids

        torch = self._torch
        sequences = [self._sequence(c, x) for c, x in zip(contexts, continuations, strict=True)]
        todo = [i for i, item in enumerate(sequences) if item is not None]
        todo.sort(key=lambda i: -len(sequences[i][0]))
        results: list[float | None] = [None] * len(sequences)
        bar = progress(len(todo), "perplexity")
        try:
            for start in range(0, len(todo), self.batch_size):
                batch = todo[start : start + self.batch_size]
                input_ids, attention = pad_ids(
                    self.tokenizer, [sequences[i][0] for i in batch], "right"
                )
                scored = torch.zeros(input_ids.shape, dtype=torch.bool)
                for row, index in enumerate(batch):
                    ids, begin = sequences[index]
                    scored[row, begin : len(ids)] = True
                with torch.inference_mode():
                    logits = self.model(
                        input_ids=input_ids.to(self.device),
                        attention_mask=attention.to(self.device),
                    ).logits.float()
                # position t predicts token t + 1
                log_probs = torch.log_softmax(logits[:, :-1], dim=-1)
                targets = input_ids[:, 1:].to(self.device)
                nll = -log_probs.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
                mask = scored[:, 1:].to(self.device)
                for row, index in enumerate(batch):
                    row_nll = nll[row][mask[row]]
                    results[index] = math.exp(float(row_nll.mean()))
                bar.update(len(batch))
        finally:
            bar.close()
        return results

    def close(self) -> None:
        del self.model


def grouped_perplexities(
    reference: PerplexityModel,
    prompts: Sequence[ToxicityPrompt],
    generations: Sequence[Sequence[str]],
) -> list[list[float | None]]:
    """Each generation's perplexity given its prompt, grouped like `generations`."""
    contexts, texts = [], []
    for prompt, group in zip(prompts, generations, strict=True):
        contexts += [prompt.text] * len(group)
        texts += list(group)
    flat = reference.perplexities(contexts, texts)
    grouped, start = [], 0
    for group in generations:
        grouped.append(flat[start : start + len(group)])
        start += len(group)
    return grouped
