"""The local backend: in-process transformers on a checkpoint directory or a pinned hub model, batched.

`model: hub:<owner>/<name>` with `model_revision` loads a hub model (e.g. the open judge,
Prometheus 2) through the hub cache (`huggingface_hub.snapshot_download`: downloaded once, read
offline with `HF_HUB_OFFLINE=1`); its identity is the hub id and the resolved commit, so a branch
name that moves to new weights is a new model for the cache.

Sampling is done by our own last logits processor with one seeded `torch.Generator` per row, the
seed taken from the request's cache key; `generate` itself runs greedy over the processed logits.
So an answer depends on its request, not on which other requests shared its batch, and a rerun
without the cache reproduces it. Schema requests add outlines' JSON-schema processor (one per
schema, built once per process) before the sampler, so every token keeps the output parseable.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from janus.caching import checkpoint_fingerprint
from janus.llm.structured import schema_json
from janus.llm.types import Generation, Job
from janus.logging_utils import get_logger

log = get_logger(__name__)

def hub_snapshot(hub_id: str, revision: str | None) -> tuple[str, str]:
    """(local directory, identity) of a hub model at `revision`, from the hub cache (fetched into
    it when online and missing). The identity is the id and the resolved commit: the commit pins
    every file, so 15 GB of weights need no hashing, and a branch that moves is a new model."""
    from huggingface_hub import snapshot_download

    path = Path(snapshot_download(hub_id, revision=revision))
    return str(path), f"hub:{hub_id}@{path.name}"  # the cache keeps snapshots/<commit hash>


@dataclass
class _LoadedModel:
    model: Any
    tokenizer: Any
    device: str
    eos_token_ids: list[int]
    outlines_model: Any = None
    schema_processors: dict[str, Any] = field(default_factory=dict)


_loaded: dict[tuple[str, str, str], _LoadedModel] = {}
_NUCLEUS_K = 256  # candidates tried before a full-vocabulary sort for top_p
_load_lock = threading.Lock()


def _pick_device(requested: str) -> str:
    import torch

    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested.startswith("cuda") and not torch.cuda.is_available():
        log.warning("device %r requested but CUDA is not available; using cpu", requested)
        return "cpu"
    return requested


def _pick_dtype(requested: str, device: str):
    import torch

    if requested == "auto":
        if device.startswith("cuda") and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    return getattr(torch, requested)


def _load(checkpoint_dir: str, device: str, dtype_name: str) -> _LoadedModel:
    """Load (or reuse) a checkpoint; one model stays resident per process, the last one used."""
    from janus.hf_loading import load_model, load_tokenizer

    resolved = str(Path(checkpoint_dir).resolve())
    device = _pick_device(device)
    key = (resolved, device, dtype_name)
    with _load_lock:
        if key in _loaded:
            return _loaded[key]
        _loaded.clear()  # free the previous model before loading another
        dtype = _pick_dtype(dtype_name, device)
        log.info("loading local model %s on %s (%s)", resolved, device, dtype)
        tokenizer = load_tokenizer(resolved, padding_side="left")
        if getattr(tokenizer, "chat_template", None) is None:
            raise ValueError(
                f"{resolved}: the tokenizer has no chat template; the local LLM backend needs "
                "an instruction-tuned checkpoint with one"
            )
        model = load_model(resolved, device=device, dtype=dtype, eval_mode=True)
        eos = model.generation_config.eos_token_id
        eos_ids = [eos] if isinstance(eos, int) else list(eos or [])
        if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in eos_ids:
            eos_ids.append(tokenizer.eos_token_id)
        loaded = _LoadedModel(model, tokenizer, device, eos_ids)
        _loaded[key] = loaded
        return loaded


def _row_sampler_class():
    import torch
    from transformers import LogitsProcessor

    class PerRowSampler(LogitsProcessor):
        """Picks each row's next token with that row's own generator, temperature and top_p.

        Inverse-CDF sampling: each row draws one uniform number from its own generator and takes
        the token where its cumulative probability crosses it, so a row's draw never depends on
        the other rows. Returns logits that are 0 at the chosen token and -inf elsewhere, so
        `generate`'s greedy step takes exactly that token. Temperature 0 is greedy.
        """

        def __init__(self, jobs: Sequence[Job], device: str, fallback_token: int):
            temperatures = [job.request.temperature for job in jobs]
            self.greedy = torch.tensor([t == 0 for t in temperatures], device=device)
            self.temperatures = torch.tensor(
                [t if t > 0 else 1.0 for t in temperatures], device=device
            ).unsqueeze(1)
            top_ps = [job.request.top_p for job in jobs]
            self.top_ps = torch.tensor(top_ps, device=device).unsqueeze(1)
            self.needs_top_p = any(top_p < 1.0 for top_p in top_ps)
            self.generators = [torch.Generator(device=device).manual_seed(job.seed) for job in jobs]
            self.fallback_token = fallback_token

        def __call__(self, input_ids, scores):
            logits = scores.float()
            probs = torch.softmax(logits / self.temperatures, dim=-1)
            if self.needs_top_p:
                # keep the smallest prefix of the sorted distribution whose mass reaches top_p;
                # it usually lies in the top few hundred tokens, so sort the whole vocabulary
                # only when it does not (the result is the same either way)
                top_probs, top_order = torch.topk(probs, min(_NUCLEUS_K, probs.shape[-1]), dim=-1)
                if bool((top_probs.sum(-1, keepdim=True) >= self.top_ps).all()):
                    probs, order = top_probs, top_order
                else:
                    probs, order = torch.sort(probs, dim=-1, descending=True)
                outside = probs.cumsum(-1) - probs >= self.top_ps
                probs = probs.masked_fill(outside, 0.0)
            cumulative = probs.cumsum(-1)
            draws = torch.stack(
                [
                    torch.rand((), generator=generator, device=generator.device)
                    for generator in self.generators
                ]
            ).to(cumulative.device, cumulative.dtype)
            targets = (draws * cumulative[:, -1]).unsqueeze(1)
            picked = torch.searchsorted(cumulative, targets).clamp_(max=probs.shape[-1] - 1)
            if self.needs_top_p:
                picked = order.gather(1, picked)
            tokens = torch.where(self.greedy, logits.argmax(-1), picked.squeeze(1))
            # a dead constraint state (every token masked) ends the row instead of crashing
            dead = ~torch.isfinite(logits).any(-1)
            tokens = torch.where(dead, torch.full_like(tokens, self.fallback_token), tokens)
            chosen = torch.full_like(scores, float("-inf"))
            chosen.scatter_(1, tokens.unsqueeze(1), 0.0)
            return chosen

    return PerRowSampler


class LocalBackend:
    """Batched generation with a local transformers checkpoint."""

    name = "local"

    def __init__(
        self,
        checkpoint_dir: str,
        batch_size: int,
        device: str,
        dtype: str,
        hub_id: str | None = None,
        revision: str | None = None,
    ):
        self.batch_size = batch_size
        self.device_request = device
        self.dtype_name = dtype
        if hub_id is None:
            self.checkpoint_dir = checkpoint_dir
            self.fingerprint = checkpoint_fingerprint(checkpoint_dir)
        else:
            self.checkpoint_dir, self.fingerprint = hub_snapshot(hub_id, revision)
        self._bundle: _LoadedModel | None = None

    def identity(self) -> dict[str, Any]:
        # The answer depends on the weights and tokenizer (fingerprint), the precision, and our
        # decoding scheme (seeded per-row sampler; versioned through cache.KEY_VERSION).
        return {"backend": "local", "model": self.fingerprint, "dtype": self.dtype_name}

    @property
    def bundle(self) -> _LoadedModel:
        if self._bundle is None:
            self._bundle = _load(self.checkpoint_dir, self.device_request, self.dtype_name)
        return self._bundle

    def _schema_processor(self, schema: dict[str, Any]):
        import outlines

        bundle = self.bundle
        canonical = schema_json(schema)
        if canonical not in bundle.schema_processors:
            if bundle.outlines_model is None:
                bundle.outlines_model = outlines.from_transformers(bundle.model, bundle.tokenizer)
            generator = outlines.Generator(bundle.outlines_model, outlines.types.JsonSchema(schema))
            bundle.schema_processors[canonical] = generator.logits_processor
        processor = bundle.schema_processors[canonical]
        processor.reset()  # it keeps per-row guides from the previous batch otherwise
        return processor

    def run(
        self,
        jobs: Sequence[Job],
        on_done: Callable[[Job, Generation | None, str | None], None],
    ) -> None:
        """Generate every job, calling `on_done(job, generation, error)` after each batch."""
        groups: dict[tuple[str, int], list[Job]] = {}
        for job in jobs:
            schema = job.request.schema
            group_key = (schema_json(schema) if schema else "", job.request.max_tokens)
            groups.setdefault(group_key, []).append(job)
        for jobs_in_group in groups.values():
            group, prompts = [], []
            for job in jobs_in_group:
                try:
                    prompts.append(self._prompt(job))
                except Exception as error:  # noqa: BLE001 - e.g. a template rejecting the roles
                    on_done(job, None, f"chat template error: {error!r}")
                    continue
                group.append(job)
            order = sorted(range(len(group)), key=lambda i: len(prompts[i]))  # less padding
            for start in range(0, len(order), self.batch_size):
                chunk = [group[i] for i in order[start : start + self.batch_size]]
                chunk_prompts = [prompts[i] for i in order[start : start + self.batch_size]]
                self._generate_or_split(chunk, chunk_prompts, on_done)

    def _generate_or_split(self, jobs: list[Job], prompts: list[str], on_done) -> None:
        """Generate a batch; if it fails (out of memory, one bad prompt), halve it and retry, so
        that only the items that fail on their own are recorded as failed."""
        try:
            generations = self._generate_batch(jobs, prompts)
        except Exception as error:  # noqa: BLE001 - a failed item is recorded, not raised
            if len(jobs) > 1:
                log.warning("a batch of %d failed (%r); retrying it in halves", len(jobs), error)
                self._release_memory()
                half = len(jobs) // 2
                self._generate_or_split(jobs[:half], prompts[:half], on_done)
                self._generate_or_split(jobs[half:], prompts[half:], on_done)
                return
            log.warning("local generation failed: %r", error)
            on_done(jobs[0], None, f"local generation error: {error!r}")
            return
        for job, generation in zip(jobs, generations, strict=True):
            on_done(job, generation, None)

    def _release_memory(self) -> None:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    def _prompt(self, job: Job) -> str:
        return self.bundle.tokenizer.apply_chat_template(
            job.messages, tokenize=False, add_generation_prompt=True
        )

    def _generate_batch(self, jobs: list[Job], prompts: list[str]) -> list[Generation]:
        import torch
        from transformers import LogitsProcessorList

        bundle = self.bundle
        tokenizer = bundle.tokenizer
        encoded = tokenizer(
            prompts, return_tensors="pt", padding=True, add_special_tokens=False
        ).to(bundle.device)
        processors = []
        if jobs[0].request.schema is not None:
            processors.append(self._schema_processor(jobs[0].request.schema))
        processors.append(_row_sampler_class()(jobs, bundle.device, bundle.eos_token_ids[0]))
        with torch.inference_mode():
            output = bundle.model.generate(
                **encoded,
                max_new_tokens=jobs[0].request.max_tokens,
                do_sample=False,
                temperature=None,
                top_p=None,
                top_k=None,
                logits_processor=LogitsProcessorList(processors),
                eos_token_id=bundle.eos_token_ids,
                pad_token_id=tokenizer.pad_token_id,
            )
        new_tokens = output[:, encoded["input_ids"].shape[1] :].tolist()
        prompt_lengths = encoded["attention_mask"].sum(dim=1).tolist()
        eos = set(bundle.eos_token_ids)
        generations = []
        for tokens, prompt_length in zip(new_tokens, prompt_lengths, strict=True):
            end = next((i for i, token in enumerate(tokens) if token in eos), None)
            kept = tokens if end is None else tokens[:end]
            generations.append(
                Generation(
                    text=tokenizer.decode(kept, skip_special_tokens=True),
                    prompt_tokens=int(prompt_length),
                    completion_tokens=len(tokens) if end is None else end + 1,
                    finish_reason="length" if end is None else "stop",
                )
            )
        return generations

    def close(self) -> None:
        self._bundle = None  # the process-wide model stays loaded for the next client
