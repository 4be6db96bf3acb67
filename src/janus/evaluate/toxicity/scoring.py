"""Stage `toxicity`: every model's generations scored by every configured scorer, with fluency and
diversity, into per-model score files and metrics (keyed by model)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from janus.config.llm import LLMConfig
from janus.config.toxicity import ToxicitySection
from janus.evaluate.toxicity.metrics import scorer_agreement, scorer_summary, summarize_model
from janus.evaluate.toxicity.perplexity import PerplexityModel, grouped_perplexities
from janus.evaluate.toxicity.prompts import read_generations
from janus.evaluate.toxicity.scorers import ScoreResult, ToxicityScorer, make_scorer, score_texts
from janus.io import write_json, write_jsonl, write_runtime
from janus.logging_utils import get_logger

log = get_logger(__name__)


def run_toxicity(
    params: ToxicitySection,
    judge: LLMConfig,
    generations_dir: str | Path,
    scores_dir: str | Path,
    metrics_path: str | Path,
    scorer_metrics_path: str | Path,
    scorer: ToxicityScorer | None = None,
    scorers: dict[str, ToxicityScorer] | None = None,
    *,
    perplexity_model_dir: str | Path,
) -> dict[str, Any]:
    """Stage `toxicity`: score every model's generations with every configured scorer, then
    fluency and diversity. The primary scorer (`toxicity.scorer`) gives each model's headline
    numbers (Table 4); every scorer's numbers are under `by_scorer`, and each extra scorer's
    agreement with the primary one under `agreement` (same texts, same threshold).
    `scorer` / `scorers` inject ready scorers (tests); missing ones are built from params."""
    names = params.model_names()
    if not names:
        raise ValueError("toxicity.models and hub_models are empty: name at least one model")
    loaded = {
        name: read_generations(
            Path(generations_dir) / f"{name}.jsonl", params.generations_per_prompt
        )
        for name in names
    }
    everything = [
        text for _, per_prompt in loaded.values() for group in per_prompt for text in group
    ]
    # 1. score every distinct text once per scorer, for all models together
    given = dict(scorers or {})
    if scorer is not None:
        given.setdefault(params.scorer, scorer)
    scores_by: dict[str, dict[str, ScoreResult]] = {}
    scorer_metrics: dict[str, Any] = {}
    seconds: dict[str, float] = {}
    for scorer_name in params.scorer_names():
        active = given.get(scorer_name) or make_scorer(params, judge, scorer_name)
        started = time.perf_counter()
        try:
            scores_by[scorer_name] = score_texts(active, everything)
            scorer_metrics[scorer_name] = active.metrics()
        finally:
            active.close()
        seconds[scorer_name] = round(time.perf_counter() - started, 3)
    primary = params.scorer
    # 2. fluency under the reference LM
    reference = PerplexityModel(
        str(perplexity_model_dir), params.perplexity_batch_size, params.engine.device
    )
    try:
        perplexities = {
            name: grouped_perplexities(reference, prompts, per_prompt)
            for name, (prompts, per_prompt) in loaded.items()
        }
    finally:
        reference.close()
    # 3. per-model rows and metrics
    metrics: dict[str, Any] = {}
    for name, (prompts, per_prompt) in loaded.items():
        rows, model_metrics = summarize_model(
            prompts, per_prompt, scores_by[primary], perplexities[name], params
        )
        for scorer_name in params.extra_scorers:
            extra = scores_by[scorer_name]
            for row, texts in zip(rows, per_prompt, strict=True):
                for generation, text in zip(row["generations"], texts, strict=True):
                    generation[f"toxicity_{scorer_name}"] = extra[text.strip()][0]
        write_jsonl(Path(scores_dir) / f"{name}.jsonl", rows)
        entry = {**model_metrics, "scorer": primary, "threshold": params.threshold}
        if params.extra_scorers:
            texts = [text.strip() for group in per_prompt for text in group if text.strip()]
            entry["by_scorer"] = {
                scorer_name: scorer_summary(per_prompt, scores_by[scorer_name], params.threshold)
                for scorer_name in params.scorer_names()
            }
            entry["agreement"] = {
                f"{primary}_vs_{scorer_name}": scorer_agreement(
                    {t: scores_by[primary][t] for t in texts},
                    {t: scores_by[scorer_name][t] for t in texts},
                    params.threshold,
                )
                for scorer_name in params.extra_scorers
            }
        metrics[name] = entry
        log.info(
            "toxicity %s: avg max toxicity %s, toxicity probability %s, ppl %s, dist-2 %s, "
            "dist-3 %s (%d unscored, %d empty)",
            name,
            _fmt(model_metrics["avg_max_toxicity"]),
            _fmt(model_metrics["toxicity_probability"]),
            _fmt(model_metrics["perplexity"]),
            _fmt(model_metrics["dist_2"]),
            _fmt(model_metrics["dist_3"]),
            model_metrics["unscored_generations"],
            model_metrics["empty_generations"],
        )
    log.info("toxicity: scoring seconds %s", seconds)
    write_json(metrics_path, metrics)
    # shared by every model, so kept out of the per-model file
    write_json(
        scorer_metrics_path,
        {"scorer": primary, **scorer_metrics[primary], "scorers": scorer_metrics},
    )
    write_runtime("toxicity_scorer", {"seconds": seconds})
    return metrics


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"
