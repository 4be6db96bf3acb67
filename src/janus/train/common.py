"""What every training stage shares: the stage's row of dvc.yaml's `train` table (StageSpec),
loading the start model, the TRL config (params passed through, see janus.train.configs), and final
outputs. Device settings and the checks before training are janus.train.device; run fingerprints
for resuming janus.train.fingerprint.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from janus.config.train import TrainCommon, TrainStage
from janus.io import write_json
from janus.train.data import TrainingInputError
from janus.train.device import DeviceSettings

Kind = Literal["sft", "dpo", "orpo", "rm"]


KINDS: tuple[Kind, ...] = ("sft", "dpo", "orpo", "rm")


@dataclass(frozen=True)
class StageSpec:
    """One row of dvc.yaml's `train` table, as the stage command passes it: the trainer, the
    data folder, the starting checkpoint, and where the outputs go (relative to `root`)."""

    name: str
    kind: Kind
    data: Path  # the build_pairs folder it trains on (train.jsonl, eval.jsonl)
    init: Path  # the checkpoint it starts from
    output: Path  # the final checkpoint folder (the DVC output)
    metrics: Path  # metrics/train/<stage>.json
    plot: Path  # plots/train/<stage>.json
    root: Path  # the repository root: runs/<stage>/ lives under it

    @classmethod
    def from_args(cls, root: str | Path, name: str, kind: str, **paths: str | Path) -> StageSpec:
        if kind not in KINDS:
            raise TrainingInputError(f"{name}: unknown trainer {kind!r}; known: {list(KINDS)}")
        root = Path(root).resolve()
        resolved = {key: (root / value if not Path(value).is_absolute() else Path(value))
                    for key, value in paths.items()}
        return cls(name=name, kind=kind, root=root, **resolved)  # type: ignore[arg-type]

    @property
    def runs(self) -> Path:
        return self.root / "runs" / self.name


def resolve_init_model(spec: StageSpec) -> str:
    """The checkpoint a stage starts from (a previous stage's output, or the base model)."""
    if not (spec.init / "config.json").exists():
        raise TrainingInputError(
            f"{spec.name} starts from {spec.init}, which does not exist or is not a checkpoint; "
            "run the stage that makes it first (`dvc repro`)"
        )
    return str(spec.init)


def load_model_config(name_or_path: str, what: str) -> Any:
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(name_or_path)
    except Exception as error:  # OSError, ValueError, hub errors: all mean "cannot load"
        raise TrainingInputError(f"{what} {name_or_path!r} cannot be loaded: {error}") from None


def load_tokenizer(name_or_path: str) -> Any:
    from janus import hf_loading

    try:
        return hf_loading.load_tokenizer(name_or_path)
    except Exception as error:
        raise TrainingInputError(f"tokenizer of {name_or_path!r} cannot be loaded: {error}") from None


def load_model(
    name_or_path: str,
    device: DeviceSettings,
    sequence_classification: bool = False,
    seed: int | None = None,
    pad_token_id: int | None = None,
) -> Any:
    """fp32 master weights (the trainer autocasts to bf16), the resolved attention kernel; left on
    the CPU for the trainer (or DeepSpeed) to place. `seed` makes a new reward head reproducible."""
    from janus import hf_loading

    try:
        return hf_loading.load_model(
            name_or_path,
            head="reward" if sequence_classification else "causal",
            dtype="float32",
            attn_implementation=device.attn_implementation,
            seed=seed,
            pad_token_id=pad_token_id,
        )
    except Exception as error:
        raise TrainingInputError(f"model {name_or_path!r} cannot be loaded: {error}") from None


def last_checkpoint(run_dir: Path) -> str | None:
    from transformers.trainer_utils import get_last_checkpoint

    return get_last_checkpoint(str(run_dir)) if run_dir.is_dir() else None


def checkpointing_arg() -> str:
    """transformers 5.2x renamed gradient_checkpointing (now a deprecated alias); older 5.x lacks
    the new name. TRL defaults the old one to True, so the flag is always passed explicitly."""
    import dataclasses

    from transformers import TrainingArguments

    names = {f.name for f in dataclasses.fields(TrainingArguments)}
    return "activation_checkpointing" if "activation_checkpointing" in names else "gradient_checkpointing"


def trainer_params(stage: TrainStage) -> dict[str, Any]:
    """A stage's params section as TRL config fields (janus's own reward-model keys left out)."""
    from janus.config.train import JANUS_STAGE_FIELDS, REWARD_STAGE_FIELDS

    own = REWARD_STAGE_FIELDS | JANUS_STAGE_FIELDS
    return {k: v for k, v in stage.model_dump(mode="python").items() if k not in own}


def trainer_config(
    kind: str,
    stage_name: str,
    stage: TrainStage,
    common: TrainCommon,
    device: DeviceSettings,
    output_dir: Path,
    max_length: int,
    max_steps: int | None = None,
):
    """The stage's TRL config: its params section passed through, plus what janus derives."""
    from janus.train.batch import gradient_accumulation, world_size
    from janus.train.configs import build_config

    params = trainer_params(stage)
    params["max_length"] = max_length
    if max_steps is not None:
        params["max_steps"] = max_steps
    if isinstance(params.get("warmup_steps"), float) and params["warmup_steps"].is_integer():
        params["warmup_steps"] = int(params["warmup_steps"])  # a count, not a ratio of 1.0
    janus_args = {
        "output_dir": str(output_dir),
        "per_device_eval_batch_size": common.eval_batch_size,
        "gradient_accumulation_steps": gradient_accumulation(
            stage_name, stage.global_batch_size, stage.per_device_train_batch_size, world_size()
        ),
        "bf16": device.bf16,
        "fp16": False,
        "use_cpu": not device.cuda,
        checkpointing_arg(): common.gradient_checkpointing,
        "use_liger_kernel": device.use_liger_kernel,
        "deepspeed": device.deepspeed_config,
        "logging_steps": common.logging_steps,
        "logging_first_step": True,
        "save_strategy": common.save_strategy,
        "save_steps": common.save_steps,
        "save_total_limit": common.save_total_limit,
        "eval_strategy": "no",  # evaluated once at the end, on the held-out split
        "report_to": "none",  # MLflow gets the curves through janus.tracking's callback
        "seed": common.seed,
        "data_seed": common.seed,
        "dataloader_num_workers": common.dataloader_num_workers,
        "full_determinism": common.full_determinism,
    }
    return build_config(kind, stage_name, params, janus_args)


def finalize_checkpoint(staging: Path, final: Path) -> None:
    """Move a fully written checkpoint into place (DVC has deleted the old one already)."""
    if final.exists():
        shutil.rmtree(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    staging.rename(final)


def loss_curve(log_history: list[dict[str, Any]], step_offset: int = 0, phase: str | None = None) -> list[dict]:
    """Per-step rows for `dvc plots` (x=step, y=loss), from a trainer's log history."""
    rows = []
    for entry in log_history:
        if "loss" not in entry:
            continue
        row = {"step": int(entry["step"]) + step_offset, "loss": float(entry["loss"])}
        for key in ("learning_rate", "grad_norm", "rewards/accuracies", "rewards/margins", "accuracy"):
            if isinstance(entry.get(key), (int, float)):
                row[key] = float(entry[key])
        if phase:
            row["phase"] = phase
        rows.append(row)
    return rows


def write_plot(path: Path, rows: list[dict[str, Any]]) -> None:
    write_json(path, rows)


@dataclass
class StageRun:
    """Everything a trainer runner needs for one stage, resolved and checked."""

    spec: StageSpec
    stage: TrainStage
    common: TrainCommon
    device: DeviceSettings
    init_model: str
    tokenizer: Any
    max_length: int
    train_rows: list[dict[str, Any]]
    eval_rows: list[dict[str, Any]]
    run_dir: Path
    staging: Path  # where the final model is written before it moves to checkpoints/<stage>
    tracker: Any  # janus.tracking.TrackedRun
    callbacks: tuple = ()
    extra: dict[str, Any] | None = None  # kind-specific inputs (the reward model's helpfulness data)
    runtime: dict[str, Any] = field(default_factory=dict)  # seconds etc.: runtime/, MLflow, not metrics

    def resume_from(self, run_dir: Path | None = None) -> str | None:
        return last_checkpoint(run_dir or self.run_dir) if self.common.resume else None


@dataclass
class Outcome:
    metrics: dict[str, Any]
    curve: list[dict[str, Any]]


def checkpoint_step(checkpoint: str | None) -> int:
    return int(Path(checkpoint).name.rsplit("-", 1)[-1]) if checkpoint else 0
