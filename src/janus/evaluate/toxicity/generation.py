"""Stage `toxicity_generate@<model>`: K generations per prompt from one local or hub model."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from janus.chat_format import format_prompt, load_format
from janus.config.toxicity import ToxicitySection
from janus.evaluate.toxicity.prompts import ToxicityPrompt, load_prompts
from janus.infer.engines import Completion, encode_prompts
from janus.infer.generation import engine_runtime, open_generator
from janus.io import write_json, write_jsonl, write_runtime
from janus.logging_utils import get_logger

log = get_logger(__name__)


def model_inputs(
    tokenizer: Any, prompts: Sequence[ToxicityPrompt], style: str, prompt_format: str
) -> list[list[int]]:
    if style == "continuation":
        texts = [prompt.text for prompt in prompts]
    else:
        texts = [format_prompt(tokenizer, prompt.text, None, prompt_format) for prompt in prompts]
    return encode_prompts(tokenizer, texts)


def generate(
    params: ToxicitySection, name: str, prompts: Sequence[ToxicityPrompt], engine=None
) -> tuple[list[list[Completion]], dict[str, Any]]:
    if name in params.hub_models:
        hub = params.hub_models[name]
        location, revision, prompt_format = hub.hub_id, hub.revision, hub.prompt_format
    else:
        entry = params.models[name]
        location, revision = entry.path, None
        prompt_format = entry.prompt_format or load_format(entry.path)
    engine = engine or open_generator(location, params.engine, revision, f"toxicity_generate/{name}")
    try:
        inputs = model_inputs(engine.tokenizer, prompts, params.prompt_style, prompt_format)
        completions = engine.generate(
            inputs,
            params.sampling,
            num_samples=params.generations_per_prompt,
            seed=params.seed,
            desc=f"toxicity {name}",
        )
    finally:
        engine.close()
    return completions, {
        "engine": engine.name,
        "prompt_format": prompt_format,
        **engine.stats.as_metrics(),
        "runtime": engine_runtime(engine),
    }


def run_toxicity_generation(
    params: ToxicitySection,
    name: str,
    generations_path: str | Path,
    metrics_path: str | Path,
    engine=None,
) -> dict[str, Any]:
    """Stage `toxicity_generate@<name>`: K generations per prompt from one model."""
    if name not in params.model_names():
        raise KeyError(f"toxicity: no model named {name!r}; known: {params.model_names()}")
    prompts = load_prompts(
        params.prompts_path, params.max_prompts, params.challenging_only, params.allow_smaller
    )
    log.info(
        "toxicity %s: %d prompts x %d generations (%s)",
        name,
        len(prompts),
        params.generations_per_prompt,
        params.prompt_style,
    )
    completions, metrics = generate(params, name, prompts, engine)
    rows = [
        {
            "prompt_id": prompt.id,
            "prompt": prompt.text,
            "challenging": prompt.challenging,
            "generations": [c.text for c in samples],
            "tokens": [c.num_tokens for c in samples],
        }
        for prompt, samples in zip(prompts, completions, strict=True)
    ]
    write_jsonl(generations_path, rows)
    texts = [text for row in rows for text in row["generations"]]
    metrics = {
        "model": name,
        "prompts": len(rows),
        "generations": len(texts),
        "empty_generations": sum(not text.strip() for text in texts),
        **metrics,
    }
    write_runtime(f"toxicity_generate/{name}", metrics.pop("runtime", {}))
    write_json(metrics_path, metrics)
    return metrics
