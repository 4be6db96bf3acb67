"""The reward model (Janus-RM, E.2): a scalar head on the one-epoch SFT checkpoint, two stages.

Stage 1 trains on the multifaceted preference pairs (the pairs ORPO uses); stage 2 continues on
the general-helpfulness mix (janus.train.helpfulness), which the paper found keeps the model
from rewarding responses that paraphrase the system message. Both use TRL's RewardTrainer
(Bradley-Terry loss) on `AutoModelForSequenceClassification(num_labels=1)`.

How a reward model scores (prompt, response) pairs lives in janus.reward_model: the held-out
accuracy here and best-of-N (janus.infer.best_of_n) score with the same code, so a reward at
inference means what it meant in training.
Held-out metrics: pairwise accuracy (ties count half) on held-out multifaceted pairs and on
held-out helpfulness pairs, after each stage.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from janus.io import read_json, write_json
from janus.logging_utils import get_logger
from janus.reward_model import reward_scores
from janus.train.common import (
    Outcome,
    StageRun,
    checkpoint_step,
    load_model,
    loss_curve,
    trainer_config,
)
from janus.train.data import fit_to_length, format_rows, to_dataset

log = get_logger(__name__)

PHASES = ("multifaceted", "helpfulness")
DONE_FILE = "PHASE_DONE.json"


def build_reward_trainer(config: Any, load, tokenizer: Any, train_dataset: Any, eval_dataset: Any | None):
    from trl import RewardTrainer

    return RewardTrainer(
        model=load(),
        args=config,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        processing_class=tokenizer,
    )


def pairwise_accuracy(
    model: Any, tokenizer: Any, pairs: list[dict[str, Any]], batch_size: int = 8, max_length: int | None = None
) -> dict[str, float | None]:
    """Share of pairs where chosen outscores rejected (ties count half), and the mean margin."""
    if not pairs:
        return {"accuracy": None, "margin": None, "pairs": 0}
    prompts = [pair["prompt"] for pair in pairs]
    chosen = reward_scores(model, tokenizer, prompts, [p["chosen"] for p in pairs], batch_size, max_length)
    rejected = reward_scores(model, tokenizer, prompts, [p["rejected"] for p in pairs], batch_size, max_length)
    wins = sum(1.0 if c > r else 0.5 if c == r else 0.0 for c, r in zip(chosen, rejected, strict=True))
    margin = sum(c - r for c, r in zip(chosen, rejected, strict=True)) / len(pairs)
    return {"accuracy": wins / len(pairs), "margin": margin, "pairs": len(pairs)}


def _held_out(run: StageRun, model: Any, sets: dict[str, list[dict[str, Any]]], prefix: str) -> dict[str, Any]:
    metrics: dict[str, Any] = {}
    for name, pairs in sets.items():
        result = pairwise_accuracy(model, run.tokenizer, pairs, run.common.eval_batch_size, run.max_length)
        metrics[f"{prefix}{name}_pairwise_accuracy"] = result["accuracy"]
        metrics[f"{prefix}{name}_reward_margin"] = result["margin"]
        metrics[f"{name}_eval_pairs"] = result["pairs"]
    return metrics


def helpfulness_rows(run: StageRun) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, Any]]:
    """The helpfulness pairs, formatted (no system message) and fitted to max_length."""
    data = run.extra["helpfulness"]
    fmt = run.common.prompt_format

    def rows(pairs):
        raw = [{"system": "", "prompt": p.prompt, "chosen": p.chosen, "rejected": p.rejected} for p in pairs]
        fitted, _ = fit_to_length(format_rows(raw, run.tokenizer, fmt, ("chosen", "rejected")), run.tokenizer, run.max_length)
        return fitted

    train, held_out = rows(data.train), rows(data.eval)
    return train, held_out, dict(data.stats)


def _train_phase(
    run: StageRun,
    phase: str,
    start_from: str,
    train_rows: list[dict[str, Any]],
    eval_sets: dict[str, list[dict[str, Any]]],
    max_steps: int,
    step_offset: int,
    output: Path,
) -> tuple[Any, dict[str, Any], list[dict[str, Any]]]:
    phase_dir = run.run_dir / phase
    config = trainer_config(
        "rm", run.spec.name, run.stage, run.common, run.device, phase_dir, run.max_length, max_steps=max_steps
    )
    trainer = build_reward_trainer(
        config,
        # Seeded: stage 1 adds a new (random) score head to the SFT checkpoint; the same seed gives
        # the same head, so the same inputs give the same reward model, byte for byte.
        lambda: load_model(
            start_from, run.device, sequence_classification=True,
            seed=run.common.seed, pad_token_id=run.tokenizer.pad_token_id,
        ),
        run.tokenizer,
        to_dataset(train_rows),
        None,
    )
    trainer.add_callback(run.tracker.trainer_callback(step_offset=step_offset))
    for callback in run.callbacks:
        trainer.add_callback(callback)
    resume = run.resume_from(phase_dir)
    if resume:
        log.info("rm %s: resuming from %s", phase, resume)
    started = time.monotonic()
    result = trainer.train(resume_from_checkpoint=resume)
    run.runtime[f"{phase}_train_runtime_s"] = round(time.monotonic() - started, 2)
    metrics = {
        f"{phase}_train_loss": result.training_loss,
        f"{phase}_global_step": trainer.state.global_step,
        f"{phase}_resumed_from_step": checkpoint_step(resume),
        f"{phase}_train_pairs": len(train_rows),
    }
    metrics.update(_held_out(run, trainer.model, eval_sets, prefix=f"after_{phase}_"))
    trainer.save_model(str(output))
    trainer.accelerator.wait_for_everyone()
    curve = loss_curve(trainer.state.log_history, step_offset=step_offset, phase=phase)
    return trainer, metrics, curve


def train_reward_model(run: StageRun) -> Outcome:
    """Stage 1 on the multifaceted pairs, stage 2 on the helpfulness mix; each resumable, and a
    finished stage 1 is not trained again when stage 2 was interrupted."""
    help_train, help_eval, help_stats = helpfulness_rows(run)
    eval_sets = {"multifaceted": run.eval_rows, "helpfulness": help_eval}
    stage1_dir = run.run_dir / PHASES[0] / "final"
    done = stage1_dir / DONE_FILE
    if done.exists():
        log.info("rm: stage 1 already finished in %s; continuing with stage 2", stage1_dir)
        record = read_json(done)
        metrics1, curve1 = record["metrics"], record["curve"]
    else:
        trainer1, metrics1, curve1 = _train_phase(
            run, PHASES[0], run.init_model, run.train_rows, eval_sets, run.stage.max_steps, 0, stage1_dir
        )
        if trainer1.is_world_process_zero():
            run.tokenizer.save_pretrained(stage1_dir)
            write_json(done, {"metrics": metrics1, "curve": curve1})
        trainer1.accelerator.wait_for_everyone()
        del trainer1
    stage1_steps = int(metrics1[f"{PHASES[0]}_global_step"])
    steps2 = run.stage.helpfulness_max_steps or run.stage.max_steps
    _, metrics2, curve2 = _train_phase(
        run, PHASES[1], str(stage1_dir), help_train, eval_sets, steps2, stage1_steps, run.staging
    )
    metrics = {**metrics1, **metrics2, **help_stats}
    # The headline figures: the final model's held-out accuracies.
    for name in eval_sets:
        metrics[f"{name}_pairwise_accuracy"] = metrics2[f"after_{PHASES[1]}_{name}_pairwise_accuracy"]
        metrics[f"{name}_reward_margin"] = metrics2[f"after_{PHASES[1]}_{name}_reward_margin"]
    metrics["global_step"] = stage1_steps + metrics2[f"{PHASES[1]}_global_step"]
    return Outcome(metrics, curve1 + curve2)
