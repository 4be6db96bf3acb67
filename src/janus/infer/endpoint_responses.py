"""Bench responses of a baseline behind an OpenAI-compatible endpoint (stage `infer_api@<name>`),
through the LLM client and its cache: the one inference path that runs the HTTP client, kept
apart so that an edit to the client does not rerun the local models' inference stages. Rows and
metrics as janus.infer.responses."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from janus.config.infer import InferSection
from janus.config.llm import LLMConfig
from janus.infer.responses import (
    BenchPrompt,
    bench_prompts,
    load_bench,
    response_metrics,
    response_row,
    write_responses,
)
from janus.llm import ChatRequest, LLMClient
from janus.logging_utils import get_logger
from janus.steps.base import Rejection, Step, Tally
from janus.steps.runner import collect_step

log = get_logger(__name__)


def endpoint_messages(item: BenchPrompt) -> list[dict[str, str]]:
    messages = [{"role": "system", "content": item.system}] if item.system else []
    return [*messages, {"role": "user", "content": item.prompt}]


class EndpointAnswers(Step):
    """A (bench item, condition) -> the endpoint's response row (`janus.infer.responses`); a
    request that fails after the client's retries is dropped, counted, and held to
    `infer.max_failed_fraction`."""

    name = "infer"
    role = "endpoint"  # params.infer.endpoints[<name>]
    unit = "requests"

    def __init__(self, params: InferSection, name: str):
        self.params, self.model = params, name
        self.name = f"infer {name}"  # type: ignore[misc]
        self.desc = f"infer {name}"
        self.max_failed_fraction = params.max_failed_fraction

    def format_input(self, item: BenchPrompt) -> ChatRequest:
        sampling = self.params.sampling
        return ChatRequest(
            messages=endpoint_messages(item),
            temperature=sampling.temperature,
            top_p=sampling.top_p,
            max_tokens=sampling.max_tokens,
            sample_index=self.params.seed,  # a new seed asks for new samples (not cached ones)
            tag=f"{item.id}/{item.condition}",
        )

    def format_output(self, item: BenchPrompt, result: Any) -> dict[str, Any] | Rejection:
        if not result.ok or result.text is None:
            return Rejection("failed", f"{item.id}/{item.condition}: {result.error}")
        return response_row(
            self.model,
            item,
            result.text.strip(),
            num_samples=1,
            reward=None,
            response_tokens=result.completion_tokens or None,
            finish_reason="stop",  # the client does not report it; judged as answered
        )

    def metrics(self, tally: Tally) -> dict[str, Any]:
        return {"failed_requests": sum(tally.rejected.values())}


def run_endpoint(
    params: InferSection, name: str, bench: list[dict[str, Any]], client: Any = None
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Responses of a baseline behind an OpenAI-compatible endpoint (`infer.endpoints[name]`)."""
    config: LLMConfig = params.endpoints[name]
    items = bench_prompts(bench, params.conditions)
    if params.sampling.repetition_penalty != 1.0:
        log.info("%s: the OpenAI API has no repetition penalty; sampling without it", name)
    owned = client is None
    client = client or LLMClient(config, stage=f"infer/{name}")
    started = time.perf_counter()
    try:
        step = EndpointAnswers(params, name)
        rows, made = collect_step(step, items, None, total=len(items), client=client)
    finally:
        if owned:
            client.close()
    seconds = time.perf_counter() - started
    completion_tokens = sum(row["response_tokens"] or 0 for row in rows)
    metrics = {
        "model": name,
        "kind": "endpoint",
        "endpoint_model": config.model,
        "engine": f"llm:{config.backend}",
        **response_metrics(rows, params.conditions),
        "failed_requests": made["failed_requests"],
        "generated_tokens": completion_tokens,
        "runtime": {
            "generation_seconds": round(seconds, 3),
            "tokens_per_second": round(completion_tokens / seconds, 3) if seconds > 0 else None,
        },
        "llm": client.stats.as_metrics(),
    }
    return rows, metrics


def run_infer_api(
    params: InferSection,
    name: str,
    bench_path: str | Path,
    responses_path: str | Path,
    metrics_path: str | Path,
) -> dict[str, Any]:
    """Answer the bench with endpoint `name`; write its responses and metrics."""
    if params.model_kind(name) != "endpoint":
        raise ValueError(f"infer_api {name}: not in infer.endpoints")
    bench = load_bench(bench_path, params.max_items)
    log.info("infer %s (endpoint): %d bench items x %s", name, len(bench), params.conditions)
    rows, metrics = run_endpoint(params, name, bench)
    return write_responses(name, rows, metrics, responses_path, metrics_path)
