"""Bench responses of one local model entry (stages `infer@`, `infer_bon@`, `infer_hub@`; the
endpoint rows, `infer_api@`, are janus.infer.endpoint_responses, so only they run the HTTP client).

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

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from janus.chat_format import format_prompt, load_format
from janus.config.infer import InferSection
from janus.infer.best_of_n import (
    Candidate,
    RewardFunction,
    RewardModelScorer,
    choose_best,
    reward_model_metadata,
    reward_runtime,
)
from janus.infer.engines import Engine, encode_prompts
from janus.infer.generation import engine_runtime, open_generator
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
    engine = engine or open_generator(
        model.location, params.engine, model.revision, stage=f"infer/{name}"
    )
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
        "runtime": engine_runtime(engine),
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
    engine = engine or open_generator(entry.path, params.engine, stage=f"infer/{name}")
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
        "runtime": engine_runtime(engine),
        "mean_chosen_reward": sum(c.reward for c in choices) / len(choices) if choices else None,
        "mean_sample_reward": sum(all_rewards) / len(all_rewards) if all_rewards else None,
        "empty_samples": sum(not c.response for group in groups for c in group),
        **reward_model_metadata(scorer),
        "reward_runtime": reward_runtime(scorer),
    }
    return rows, samples_rows, metrics


def run_infer(
    params: InferSection,
    name: str,
    bench_path: str | Path,
    responses_path: str | Path,
    metrics_path: str | Path,
    samples_path: str | Path | None = None,
) -> dict[str, Any]:
    """Answer the bench with local model `name`; write its responses and metrics (and, for
    best-of-N, every sample with its reward to `samples_path`, for inspection)."""
    kind = params.model_kind(name)
    if kind == "endpoint":
        raise ValueError(f"infer {name} is an endpoint: stage infer_api@{name} answers it")
    bench = load_bench(bench_path, params.max_items)
    log.info("infer %s (%s): %d bench items x %s", name, kind, len(bench), params.conditions)
    if kind in ("checkpoint", "hub"):
        rows, metrics = run_checkpoint(params, name, bench)
    else:
        if samples_path is None:
            raise ValueError(f"infer {name}: best-of-N needs a path for its samples")
        rows, samples_rows, metrics = run_best_of_n(params, name, bench)
        write_jsonl(samples_path, samples_rows)
    return write_responses(name, rows, metrics, responses_path, metrics_path)


def write_responses(
    name: str,
    rows: list[dict[str, Any]],
    metrics: dict[str, Any],
    responses_path: str | Path,
    metrics_path: str | Path,
) -> dict[str, Any]:
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
