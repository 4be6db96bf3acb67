"""The local backend on vLLM: a pinned hub model (e.g. the open judge, Prometheus 2) loaded in
process by the stage itself, when vLLM is installed and CUDA is there (transformers otherwise).

Same contract as `local.LocalBackend`: chat messages through the model's chat template, each
request sampled with its own seed (vLLM's per-request `seed`, taken from the cache key), so an
answer does not depend on its batch-mates; JSON-schema requests decode under vLLM's structured
outputs. vLLM's kernels and scheduling differ from transformers', so its answers are another
model's for the cache (`engine: vllm` in the identity).

Not exercised by the CPU test suite (tests/test_llm_local.py has a `gpu` test that needs vLLM).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from janus.llm.types import Generation, Job
from janus.logging_utils import get_logger

log = get_logger(__name__)


def vllm_ready(device: str) -> bool:
    """vLLM can serve this role: installed, CUDA present, and the role not pinned to the CPU."""
    import importlib.util

    if device == "cpu" or importlib.util.find_spec("vllm") is None:
        return False
    import torch

    return torch.cuda.is_available()


def _structured(schema: dict[str, Any] | None) -> dict[str, Any]:
    """SamplingParams keywords that constrain decoding to `schema` (the API moved in vLLM 0.10)."""
    if schema is None:
        return {}
    try:
        from vllm.sampling_params import StructuredOutputsParams

        return {"structured_outputs": StructuredOutputsParams(json=schema)}
    except ImportError:
        from vllm.sampling_params import GuidedDecodingParams

        return {"guided_decoding": GuidedDecodingParams(json=schema)}


class LocalVLLMBackend:
    name = "local"

    def __init__(self, path: str, fingerprint: str, dtype: str):
        self.path = path
        self.fingerprint = fingerprint
        self.dtype_name = dtype
        self._llm: Any = None

    def identity(self) -> dict[str, Any]:
        return {
            "backend": "local",
            "model": self.fingerprint,
            "dtype": self.dtype_name,
            "engine": "vllm",
        }

    @property
    def llm(self) -> Any:
        if self._llm is None:
            from vllm import LLM

            log.info("loading %s with vLLM (%s)", self.fingerprint, self.dtype_name)
            dtype = "auto" if self.dtype_name == "auto" else self.dtype_name
            self._llm = LLM(model=self.path, dtype=dtype)
        return self._llm

    def run(
        self,
        jobs: Sequence[Job],
        on_done: Callable[[Job, Generation | None, str | None], None],
    ) -> None:
        from vllm import SamplingParams

        tokenizer = self.llm.get_tokenizer()
        ready, prompts, params = [], [], []
        for job in jobs:
            try:
                text = tokenizer.apply_chat_template(
                    job.messages, tokenize=False, add_generation_prompt=True
                )
            except Exception as error:  # noqa: BLE001 - e.g. a template rejecting the roles
                on_done(job, None, f"chat template error: {error!r}")
                continue
            request = job.request
            ready.append(job)
            # the template writes BOS itself: no second one from the tokenizer
            ids = tokenizer(text, add_special_tokens=False)["input_ids"]
            prompts.append({"prompt_token_ids": ids})
            params.append(
                SamplingParams(
                    temperature=request.temperature,
                    top_p=request.top_p if request.temperature > 0 else 1.0,
                    max_tokens=request.max_tokens,
                    seed=job.seed,
                    **_structured(request.schema),
                )
            )
        if not ready:
            return
        try:
            outputs = self.llm.generate(prompts, params, use_tqdm=False)
        except Exception as error:  # noqa: BLE001 - failed items are recorded, not raised
            log.warning("vLLM generation failed: %r", error)
            for job in ready:
                on_done(job, None, f"local generation error: {error!r}")
            return
        for job, output in zip(ready, outputs, strict=True):
            choice = output.outputs[0]
            on_done(
                job,
                Generation(
                    text=choice.text,
                    prompt_tokens=len(output.prompt_token_ids or []),
                    completion_tokens=len(choice.token_ids),
                    finish_reason="length" if choice.finish_reason == "length" else "stop",
                ),
                None,
            )

    def close(self) -> None:
        # vLLM holds the GPU until its engine is gone: free it for the next model (judge)
        if self._llm is not None:
            import gc

            import torch

            self._llm = None
            gc.collect()
            torch.cuda.empty_cache()
