"""Bench responses of one model entry (stages `infer@`, `infer_bon@`, `infer_hub@`, `infer_api@`).

Each bench item is answered twice (`infer.conditions`): with its system message and without one
(paper 6.1, Table 8). A local checkpoint is prompted with `janus.chat_format.format_prompt` in the
format it was trained with (a hub model: its `prompt_format` in params, loaded by
`from_pretrained(hub_id, revision=...)` through the same engine); an endpoint gets the system
message as a `system` chat turn.

Output rows (`outputs/responses/<model>.jsonl`), read by the judge and the report:
    id, model, source, condition ("system" | "no_system"), system (null without one), prompt,
    response ("" when the model said nothing: kept and counted), num_samples, reward (best-of-N:
    the chosen sample's reward; else null), response_tokens, finish_reason ("stop" | "length").
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from janus.chat_format import format_prompt, load_format
from janus.config.infer import InferSection
from janus.config.llm import LLMConfig
from janus.infer.best_of_n import (
    Candidate,
    RewardFunction,
    RewardModelScorer,
    choose_best,
    reward_model_metadata,
    reward_runtime,
)
from janus.infer.engines import Engine, encode_prompts, load_engine
from janus.io import read_jsonl, write_json, write_jsonl, write_runtime
from janus.logging_utils import get_logger

log = get_logger(__name__)

REQUIRED_BENCH_COLUMNS = ("id", "source", "system", "prompt")


@dataclass(frozen=True)
class BenchPrompt:
    """One (bench item, condition) to answer."""

    id: str
    source: str
    condition: str
    system: str | None
    prompt: str


def load_bench(path: str | Path, max_items: int | None = None) -> list[dict[str, Any]]:
    rows = read_jsonl(path)
    for number, row in enumerate(rows, start=1):
        missing = [column for column in REQUIRED_BENCH_COLUMNS if column not in row]
        if missing:
            raise ValueError(f"{path}: row {number} lacks column(s) {missing}")
        if not isinstance(row["prompt"], str) or not row["prompt"].strip():
            raise ValueError(f"{path}: row {number} (id {row['id']!r}) has an empty prompt")
    ids = [row["id"] for row in rows]
    if len(set(ids)) != len(ids):
        raise ValueError(f"{path}: bench ids are not unique")
    return rows[:max_items] if max_items else rows


def bench_prompts(bench: list[dict[str, Any]], conditions: list[str]) -> list[BenchPrompt]:
    prompts = []
    for condition in conditions:
        for row in bench:
            system = (row["system"] or None) if condition == "system" else None
            if condition == "system" and system is None:
                raise ValueError(f"bench item {row['id']!r} has no system message")
            prompts.append(
                BenchPrompt(str(row["id"]), row["source"], condition, system, row["prompt"])
            )
    return prompts


def response_row(model: str, item: BenchPrompt, response: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": item.id,
        "model": model,
        "source": item.source,
        "condition": item.condition,
        "system": item.system,
        "prompt": item.prompt,
        "response": response,
        **extra,
    }


def response_metrics(rows: list[dict[str, Any]], conditions: list[str]) -> dict[str, Any]:
    """Counts, empty responses and lengths, overall and per condition."""

    def summary(subset: list[dict[str, Any]]) -> dict[str, Any]:
        tokens = [row["response_tokens"] for row in subset if row["response_tokens"] is not None]
        return {
            "responses": len(subset),
            "empty_responses": sum(not row["response"].strip() for row in subset),
            "cut_at_max_tokens": sum(row["finish_reason"] == "length" for row in subset),
            "mean_response_tokens": (sum(tokens) / len(tokens)) if tokens else None,
        }

    return {
        **summary(rows),
        "per_condition": {
            condition: summary([row for row in rows if row["condition"] == condition])
            for condition in conditions
        },
    }


def checkpoint_prompts(
    tokenizer: Any, items: list[BenchPrompt], prompt_format: str
) -> list[list[int]]:
    texts = [format_prompt(tokenizer, item.prompt, item.system, prompt_format) for item in items]
    return encode_prompts(tokenizer, texts)


def generate_with_checkpoint(
    engine: Engine,
    items: list[BenchPrompt],
    prompt_format: str,
    params: InferSection,
    num_samples: int,
    desc: str,
):
    prompt_ids = checkpoint_prompts(engine.tokenizer, items, prompt_format)
    return engine.generate(
        prompt_ids, params.sampling, num_samples=num_samples, seed=params.seed, desc=desc
    )


@dataclass(frozen=True)
class LocalModel:
    """Where a model that generates in this process comes from: a checkpoint directory, or a
    hub id at a revision (both go through the same engine and the same `from_pretrained`)."""

    location: str
    revision: str | None
    prompt_format: str
    kind: str  # checkpoint | hub


def local_model(params: InferSection, name: str) -> LocalModel:
    """`infer.models[name]` or `infer.hub_models[name]` as a LocalModel."""
    if name in params.hub_models:
        hub = params.hub_models[name]
        return LocalModel(hub.hub_id, hub.revision, hub.prompt_format, "hub")
    entry = params.models[name]
    return LocalModel(entry.path, None, entry.prompt_format or load_format(entry.path), "checkpoint")


def run_checkpoint(
    params: InferSection,
    name: str,
    bench: list[dict[str, Any]],
    engine: Engine | None = None,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Responses of `infer.models[name]` or `infer.hub_models[name]`: one sample per (item,
    condition)."""
    model = local_model(params, name)
    prompt_format = model.prompt_format
    items = bench_prompts(bench, params.conditions)
    engine = engine or load_engine(model.location, params.engine, model.revision)
    try:
        completions = generate_with_checkpoint(
            engine, items, prompt_format, params, 1, f"infer {name}"
        )
    finally:
        engine.close()
    rows = [
        response_row(
            name,
            item,
            samples[0].text.strip(),
            num_samples=1,
            reward=None,
            response_tokens=samples[0].num_tokens,
            finish_reason=samples[0].finish_reason,
        )
        for item, samples in zip(items, completions, strict=True)
    ]
    source = {"path": model.location}
    if model.kind == "hub":
        source = {"hub_id": model.location, "revision": model.revision}
    metrics = {
        "model": name,
        "kind": model.kind,
        **source,
        "prompt_format": prompt_format,
        "engine": engine.name,
        **response_metrics(rows, params.conditions),
        **engine.stats.as_metrics(),
        "runtime": engine.stats.as_runtime(),
    }
    return rows, metrics


def run_best_of_n(
    params: InferSection,
    name: str,
    bench: list[dict[str, Any]],
    engine: Engine | None = None,
    reward_fn: RewardFunction | None = None,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, Any]]:
    """Best-of-N responses of `infer.best_of_n[name]`; also every sample with its reward."""
    entry = params.best_of_n[name]
    prompt_format = entry.prompt_format or load_format(entry.path)
    items = bench_prompts(bench, params.conditions)
    engine = engine or load_engine(entry.path, params.engine)
    try:
        completions = generate_with_checkpoint(
            engine, items, prompt_format, params, entry.n, f"infer {name} ({entry.n} samples)"
        )
    finally:
        engine.close()  # frees the GPU for the reward model
    groups = [
        [Candidate(item.system, item.prompt, sample.text.strip()) for sample in samples]
        for item, samples in zip(items, completions, strict=True)
    ]
    scorer = reward_fn
    if scorer is None:
        scorer = RewardModelScorer(
            entry.reward_model, params.reward_batch_size, params.engine.device, params.engine.dtype
        )
    try:
        choices = choose_best(groups, scorer)
    finally:
        if isinstance(scorer, RewardModelScorer):
            scorer.close()
    rows, samples_rows = [], []
    for item, samples, group, choice in zip(items, completions, groups, choices, strict=True):
        best = samples[choice.index]
        rows.append(
            response_row(
                name,
                item,
                group[choice.index].response,
                num_samples=len(samples),
                reward=choice.reward,
                response_tokens=best.num_tokens,
                finish_reason=best.finish_reason,
            )
        )
        samples_rows.append(
            {
                "id": item.id,
                "condition": item.condition,
                "chosen": choice.index,
                "samples": [
                    {"response": candidate.response, "reward": reward, "tokens": sample.num_tokens}
                    for candidate, reward, sample in zip(
                        group, choice.rewards, samples, strict=True
                    )
                ],
            }
        )
    all_rewards = [reward for choice in choices for reward in choice.rewards]
    metrics = {
        "model": name,
        "kind": "best_of_n",
        "path": entry.path,
        "prompt_format": prompt_format,
        "engine": engine.name,
        "samples_per_prompt": entry.n,
        **response_metrics(rows, params.conditions),
        **engine.stats.as_metrics(),
        "runtime": engine.stats.as_runtime(),
        "mean_chosen_reward": sum(c.reward for c in choices) / len(choices) if choices else None,
        "mean_sample_reward": sum(all_rewards) / len(all_rewards) if all_rewards else None,
        "empty_samples": sum(not c.response for group in groups for c in group),
        **reward_model_metadata(scorer),
        "reward_runtime": reward_runtime(scorer),
    }
    return rows, samples_rows, metrics


def endpoint_messages(item: BenchPrompt) -> list[dict[str, str]]:
    messages = [{"role": "system", "content": item.system}] if item.system else []
    return [*messages, {"role": "user", "content": item.prompt}]


def run_endpoint(
    params: InferSection, name: str, bench: list[dict[str, Any]], client: Any = None
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Responses of a baseline behind an OpenAI-compatible endpoint (`infer.endpoints[name]`)."""
    from janus.llm import ChatRequest, LLMClient

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


def run_infer(
    params: InferSection,
    name: str,
    bench_path: str | Path,
    responses_path: str | Path,
    metrics_path: str | Path,
    samples_path: str | Path | None = None,
) -> dict[str, Any]:
    """Answer the bench with model `name`; write its responses and metrics (and, for best-of-N,
    every sample with its reward to `samples_path`, for inspection)."""
    kind = params.model_kind(name)
    bench = load_bench(bench_path, params.max_items)
    log.info("infer %s (%s): %d bench items x %s", name, kind, len(bench), params.conditions)
    if kind in ("checkpoint", "hub"):
        rows, metrics = run_checkpoint(params, name, bench)
    elif kind == "best_of_n":
        if samples_path is None:
            raise ValueError(f"infer {name}: best-of-N needs a path for its samples")
        rows, samples_rows, metrics = run_best_of_n(params, name, bench)
        write_jsonl(samples_path, samples_rows)
    else:
        rows, metrics = run_endpoint(params, name, bench)
    write_jsonl(responses_path, rows)
    write_runtime(f"infer/{name}", {**metrics.pop("runtime"), **metrics.pop("reward_runtime", {})})
    write_json(metrics_path, metrics)
    log.info(
        "infer %s: %d responses (%d empty), %.1f tokens on average",
        name,
        metrics["responses"],
        metrics["empty_responses"],
        metrics["mean_response_tokens"] or 0.0,
    )
    return metrics
