"""One training stage from params to checkpoint, metrics, plots and an MLflow run.

Order of work: every check that can fail (params against this machine, the starting checkpoint,
the data and its size) runs before a model is loaded for training. Trainer checkpoints go to
runs/<stage>/<fingerprint>/ (outside the DVC output, which DVC deletes before a run), so an
interrupted run resumes when the stage is re-run with the same inputs; the final model goes to
the stage's output folder with `janus_format.json`, the metrics (results only: a function of the
inputs) and the loss curve to the paths dvc.yaml names; seconds go to runtime/<stage>.json and
MLflow, never to the DVC metrics.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any

from janus.chat_format import save_format
from janus.config.tracking import TrackingSection
from janus.config.train import TrainSection
from janus.io import write_json, write_runtime
from janus.logging_utils import get_logger
from janus.tracking import registered_model_name, start_run
from janus.train.batch import gradient_accumulation, world_size
from janus.train.common import (
    Outcome,
    StageRun,
    StageSpec,
    checkpoint_step,
    finalize_checkpoint,
    last_checkpoint,
    load_model,
    load_model_config,
    load_tokenizer,
    loss_curve,
    resolve_init_model,
    trainer_config,
    trainer_params,
    write_plot,
)
from janus.train.configs import check_stage_keys
from janus.train.data import (
    PREFERENCE_COLUMNS,
    SFT_COLUMNS,
    Rows,
    TrainingInputError,
    fit_to_length,
    format_rows,
    load_rows,
    require_rows,
    to_dataset,
)
from janus.train.device import check_optimizer, check_packing, resolve_device, stage_max_length
from janus.train.fingerprint import run_fingerprint

log = get_logger(__name__)

PAIRS_HINT = "; run `dvc repro build_pairs` first"


def is_main_process() -> bool:
    # Set by `accelerate launch` / torchrun; a plain run is its own main process.
    return int(os.environ.get("RANK", "0")) == 0


def _eval_metrics(kind: str, metrics: dict[str, Any]) -> dict[str, Any]:
    if kind == "sft":
        return {"eval_loss": metrics.get("eval_loss")}
    from janus.train.preference import preference_eval_metrics

    return preference_eval_metrics(metrics)


def _train_single(run: StageRun) -> Outcome:
    """SFT, DPO and ORPO: one trainer, resumed from the run's last checkpoint when there is one."""
    from janus.train.preference import build_dpo_trainer, build_orpo_trainer
    from janus.train.sft import build_sft_trainer

    builder = {"sft": build_sft_trainer, "dpo": build_dpo_trainer, "orpo": build_orpo_trainer}[run.spec.kind]
    config = trainer_config(run.spec.kind, run.spec.name, run.stage, run.common, run.device, run.run_dir, run.max_length)
    eval_dataset = to_dataset(run.eval_rows) if run.eval_rows else None
    trainer = builder(
        config,
        lambda: load_model(run.init_model, run.device, seed=run.common.seed),
        run.tokenizer,
        to_dataset(run.train_rows),
        eval_dataset,
    )
    trainer.add_callback(run.tracker.trainer_callback())
    for callback in run.callbacks:
        trainer.add_callback(callback)
    resume = run.resume_from()
    if resume:
        log.info("%s: resuming from %s", run.spec.name, resume)
    started = time.monotonic()
    result = trainer.train(resume_from_checkpoint=resume)
    run.runtime["train_runtime_s"] = round(time.monotonic() - started, 2)
    metrics: dict[str, Any] = {
        "train_loss": result.training_loss,
        "global_step": trainer.state.global_step,
        "resumed_from_step": checkpoint_step(resume),
    }
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    metrics["final_step_loss"] = losses[-1] if losses else None
    if eval_dataset is not None:
        metrics.update(_eval_metrics(run.spec.kind, trainer.evaluate()))
    else:
        log.warning("%s: no held-out rows; eval metrics are null", run.spec.name)
        metrics.update({key: None for key in _eval_metrics(run.spec.kind, {})})
    trainer.save_model(str(run.staging))
    trainer.accelerator.wait_for_everyone()
    return Outcome(metrics, loss_curve(trainer.state.log_history))


def _load_split(path: Path, columns: tuple[str, ...], required: bool) -> Rows:
    if not required and not path.exists():
        log.warning("%s not found: no held-out metrics", path)
        return Rows(path, [])
    return load_rows(path, columns, hint=PAIRS_HINT)


def relative_to_root(name_or_path: str, root: Path) -> str:
    """A checkpoint path as the repo names it (outputs must not depend on where the repo lives)."""
    path = Path(name_or_path)
    return str(path.relative_to(root)) if path.is_absolute() and path.is_relative_to(root) else name_or_path


def stage_section(section: TrainSection, spec: StageSpec):
    """`train.<stage>` of params; its schema must be the one of the stage's trainer."""
    from janus.config.train import DPOStage, ORPOStage, RewardModelStage, SFTStage

    stage = getattr(section, spec.name, None)
    if stage is None:
        raise TrainingInputError(f"params have no train.{spec.name} section")
    expected = {"sft": SFTStage, "dpo": DPOStage, "orpo": ORPOStage, "rm": RewardModelStage}[spec.kind]
    if type(stage) is not expected:
        raise TrainingInputError(
            f"train.{spec.name} is a {type(stage).__name__} section, but dvc.yaml trains it with "
            f"the {spec.kind} trainer"
        )
    return stage


def run_training_stage(
    spec: StageSpec,
    section: TrainSection,
    tracking: TrackingSection,
    *,
    cuda: bool | None = None,
    callbacks: tuple = (),
) -> dict[str, Any]:
    """Train one stage (a row of dvc.yaml's `train` table); returns the metrics it wrote."""
    started = time.monotonic()
    name, common = spec.name, section.common
    stage = stage_section(section, spec)
    root = spec.root

    # 1. Params against this machine, the starting model, the data: all before any training.
    if cuda is None:
        from janus.train.launch import refuse_cpu_torch_on_gpu_machine

        refuse_cpu_torch_on_gpu_machine()
    device = resolve_device(common, root, cuda=cuda)
    check_optimizer(name, stage, device)
    check_stage_keys(spec.kind, name, set(trainer_params(stage)))
    accumulation = gradient_accumulation(
        name, stage.global_batch_size, stage.per_device_train_batch_size, world_size()
    )
    init_model = resolve_init_model(spec)
    model_config = load_model_config(init_model, f"{name}'s starting model")
    check_packing(name, stage, common, device, model_config)
    max_length = stage_max_length(stage, common)
    if device.cuda:
        from janus.accelerators import cuda_device_memory
        from janus.train.memory import check_fits, stage_shape

        shape = stage_shape(spec.kind, stage, common, device, model_config, max_length, world_size(), root)
        needed = check_fits(name, shape, cuda_device_memory())
        log.info("%s: estimated %s per GPU", name, needed.describe())
    tokenizer = load_tokenizer(init_model)

    columns = SFT_COLUMNS if spec.kind == "sft" else PREFERENCE_COLUMNS
    responses = ("output",) if spec.kind == "sft" else ("chosen", "rejected")
    data_dir = spec.data
    train_raw = _load_split(data_dir / "train.jsonl", columns, required=True)
    require_rows(train_raw, common.min_train_rows, f"{name} training")
    eval_raw = _load_split(data_dir / "eval.jsonl", columns, required=False)
    fmt = common.prompt_format
    train_rows, train_fit = fit_to_length(format_rows(train_raw.rows, tokenizer, fmt, responses), tokenizer, max_length)
    eval_rows, eval_fit = fit_to_length(format_rows(eval_raw.rows, tokenizer, fmt, responses), tokenizer, max_length)
    if len(train_rows) < common.min_train_rows:
        raise TrainingInputError(
            f"{name}: {len(train_rows)} training row(s) fit max_length={max_length} "
            f"({dict(train_fit)}); raise train.{name}.max_length or train.common.max_length"
        )
    inputs = [p for p in (train_raw.path, eval_raw.path) if p.exists()]
    extra: dict[str, Any] = {}
    if spec.kind == "rm":
        from janus.train.helpfulness import load_helpfulness

        extra["helpfulness"] = load_helpfulness(stage, root, common.seed)
        for source in stage.helpfulness_sources.values():
            local = root / source.path
            if source.enabled and local.is_file():
                inputs.append(local)

    log.info(
        "%s: %d training / %d held-out rows, max_length %d, %s; checks done in %.1fs",
        name, len(train_rows), len(eval_rows), max_length, device.as_params(), time.monotonic() - started,
    )

    # 2. The run directory: same fingerprint, same run; resumed from its last checkpoint.
    start_from = relative_to_root(init_model, root)
    fingerprint = run_fingerprint(name, stage, common, device, init_model, inputs)
    run_dir = spec.runs / fingerprint
    main = is_main_process()
    if main and not common.resume and run_dir.exists():
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    staging = spec.output.with_name(f"{spec.output.name}.partial")
    if main:
        shutil.rmtree(staging, ignore_errors=True)
        write_json(run_dir / "fingerprint.json", {"stage": name, "fingerprint": fingerprint, "init": start_from})
    if main and last_checkpoint(run_dir):
        log.info("%s: found an interrupted run in %s", name, run_dir)

    data_stats = {
        "train_rows": len(train_rows),
        "eval_rows": len(eval_rows),
        "skipped_rows": train_raw.n_skipped + eval_raw.n_skipped + train_fit["prompt_too_long"]
        + eval_fit["prompt_too_long"] + train_fit["identical_after_truncation"],
        "truncated_responses": sum(v for k, v in train_fit.items() if k.endswith("_truncated")),
    }
    tracked_params = {
        "stage": name,
        "kind": spec.kind,
        "init_model": start_from,
        "fingerprint": fingerprint,
        "train": {"common": common.model_dump(mode="json"), name: stage.model_dump(mode="json")},
        "device": device.as_params(),
        "processes": world_size(),
        "gradient_accumulation_steps": accumulation,
        "data": data_stats,
    }
    data_files = {
        str(p.relative_to(root) if p.is_relative_to(root) else p).strip("/").replace("/", "."): p
        for p in inputs
    }
    with start_run(
        tracking, name, params=tracked_params, data_files=data_files, root=root, main_process=main
    ) as tracker:
        run = StageRun(
            spec, stage, common, device, init_model, tokenizer, max_length,
            train_rows, eval_rows, run_dir, staging, tracker, tuple(callbacks), extra,
        )
        if spec.kind == "rm":
            from janus.train.reward import train_reward_model

            outcome = train_reward_model(run)
        else:
            outcome = _train_single(run)
        log.info("%s: rank %s of %d trained (%d step(s), accumulation %d)", name, os.environ.get("RANK", "0"),
                 world_size(), outcome.metrics.get("global_step") or 0, accumulation)
        if not main:
            return outcome.metrics

        # 3. Outputs: the checkpoint with its prompt format, metrics, the loss curve, MLflow.
        tokenizer.save_pretrained(staging)
        save_format(staging, fmt, stage=name, init_model=start_from, fingerprint=fingerprint)
        # The pickled TrainingArguments hold absolute paths; params.yaml and MLflow have them all.
        (staging / "training_args.bin").unlink(missing_ok=True)
        final = spec.output
        finalize_checkpoint(staging, final)
        metrics = {**outcome.metrics, **data_stats}
        write_json(spec.metrics, metrics)
        write_plot(spec.plot, outcome.curve)
        runtime = {**run.runtime, "stage_wall_s": round(time.monotonic() - started, 2)}
        write_runtime(name, runtime, runtime_dir=root / "runtime")
        tracker.log_metrics(
            {f"final/{k}": v for k, v in {**metrics, **runtime}.items()}, step=metrics.get("global_step")
        )
        log.info("%s: checkpoint, metrics and plot written at %.1fs", name, time.monotonic() - started)
        if tracking.log_model:
            version = tracker.log_model_dir(
                final, registered_model_name(name), register=tracking.register_models,
                mode=tracking.model_artifacts, repo_root=root,
            )
            if version:
                tracker.set_tags({"janus.registered_version": version})
    if not common.keep_checkpoints:
        shutil.rmtree(run_dir, ignore_errors=True)
    log.info("%s: done in %.1fs; checkpoint in %s", name, time.monotonic() - started, final)
    return metrics
