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

log = get_logger(__name__)


def endpoint_messages(item: BenchPrompt) -> list[dict[str, str]]:
    messages = [{"role": "system", "content": item.system}] if item.system else []
    return [*messages, {"role": "user", "content": item.prompt}]


def run_endpoint(
    params: InferSection, name: str, bench: list[dict[str, Any]], client: Any = None
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Responses of a baseline behind an OpenAI-compatible endpoint (`infer.endpoints[name]`)."""
    config: LLMConfig = params.endpoints[name]
    items = bench_prompts(bench, params.conditions)
    if params.sampling.repetition_penalty != 1.0:
        log.info("%s: the OpenAI API has no repetition penalty; sampling without it", name)
    requests = [
        ChatRequest(
            messages=endpoint_messages(item),
            temperature=params.sampling.temperature,
            top_p=params.sampling.top_p,
            max_tokens=params.sampling.max_tokens,
            sample_index=params.seed,  # a new seed asks for new samples (not cached ones)
            tag=f"{item.id}/{item.condition}",
        )
        for item in items
    ]
    owned = client is None
    client = client or LLMClient(config, stage=f"infer/{name}")
    started = time.perf_counter()
    try:
        results = client.generate(requests, desc=f"infer {name}")
    finally:
        if owned:
            client.close()
    seconds = time.perf_counter() - started
    rows, failed = [], []
    for item, result in zip(items, results, strict=True):
        if not result.ok or result.text is None:
            failed.append(f"{item.id}/{item.condition}: {result.error}")
            continue
        rows.append(
            response_row(
                name,
                item,
                result.text.strip(),
                num_samples=1,
                reward=None,
                response_tokens=result.completion_tokens or None,
                finish_reason="stop",  # the client does not report it; judged as answered
            )
        )
    if failed:
        share = len(failed) / len(items)
        log.warning(
            "%s: %d of %d requests failed; first: %s", name, len(failed), len(items), failed[0]
        )
        if share > params.max_failed_fraction:
            raise RuntimeError(
                f"infer {name}: {len(failed)} of {len(items)} requests failed "
                f"(more than max_failed_fraction {params.max_failed_fraction}); answers so far are "
                f"cached, so a rerun asks only for the failed ones. First failure: {failed[0]}"
            )
    completion_tokens = sum(row["response_tokens"] or 0 for row in rows)
    metrics = {
        "model": name,
        "kind": "endpoint",
        "endpoint_model": config.model,
        "engine": f"llm:{config.backend}",
        **response_metrics(rows, params.conditions),
        "failed_requests": len(failed),
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
