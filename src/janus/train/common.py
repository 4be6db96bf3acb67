"""What every training stage shares: the stage's row of dvc.yaml's `train` table (StageSpec),
device settings and the checks that run before any training, run fingerprints for resuming, the
TRL config (params passed through, see janus.train.configs), and final outputs.

Device policy (one stage command for CPU, one GPU and many):
- bf16 "auto": mixed bf16 on a CUDA device that supports it, fp32 elsewhere. Weights stay fp32
  masters (the trainer autocasts), so a 5e-7 learning rate still moves them.
- attention "auto": flash_attention_2 on CUDA when flash-attn is installed, sdpa otherwise.
- packing / padding_free (SFT only) need an attention that keeps packed sequences apart:
  flash-attention (varlen kernels), or flex_attention / sdpa / eager with the document masks that
  transformers builds from position_ids (flex: block-sparse; sdpa, eager: dense). On CUDA, "auto"
  without flash-attn is refused (it would be silently slow); naming the kernel accepts it.
- Liger kernels "auto": on CUDA when liger-kernel is installed.
- DeepSpeed: `deepspeed_config` on CUDA (needs deepspeed); ignored with a warning on the CPU.
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from janus.config.train import TrainCommon, TrainStage
from janus.hashing import file_digest
from janus.io import write_json
from janus.logging_utils import get_logger
from janus.train.data import TrainingInputError

log = get_logger(__name__)

Kind = Literal["sft", "dpo", "orpo", "rm"]


KINDS: tuple[Kind, ...] = ("sft", "dpo", "orpo", "rm")
CODE_FILES = ("chat_format.py", "hf_loading.py", "train/batch.py", "train/common.py", "train/configs.py", "train/data.py",
              "train/sft.py", "train/preference.py", "train/reward.py", "train/helpfulness.py", "train/run.py")
# Fields that say how long to train, not what: a run extended with more steps resumes.
LENGTH_FIELDS = {"max_steps", "num_train_epochs", "helpfulness_max_steps"}
COMMON_FINGERPRINT_FIELDS = ("prompt_format", "max_length", "seed", "full_determinism")


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


@dataclass(frozen=True)
class DeviceSettings:
    cuda: bool
    bf16: bool
    attn_implementation: str
    use_liger_kernel: bool
    deepspeed_config: str | None

    def as_params(self) -> dict[str, Any]:
        return {
            "cuda": self.cuda,
            "bf16": self.bf16,
            "attn_implementation": self.attn_implementation,
            "use_liger_kernel": self.use_liger_kernel,
            "deepspeed": bool(self.deepspeed_config),
        }


def installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def resolve_device(common: TrainCommon, root: Path, cuda: bool | None = None) -> DeviceSettings:
    """Concrete settings for this machine; contradictions are errors that name the key."""
    import torch

    from janus.accelerators import cuda_available

    cuda = cuda_available() if cuda is None else cuda
    if common.bf16 == "auto":
        bf16 = cuda and torch.cuda.is_bf16_supported()
    else:
        bf16 = bool(common.bf16)
        if bf16 and cuda and not torch.cuda.is_bf16_supported():
            raise TrainingInputError("train.common.bf16: true, but this CUDA device has no bf16 support")

    flash = cuda and installed("flash_attn")
    if common.attn_implementation == "auto":
        attn = "flash_attention_2" if flash else "sdpa"
    else:
        attn = common.attn_implementation
        if attn == "flash_attention_2" and not flash:
            raise TrainingInputError(
                "train.common.attn_implementation: flash_attention_2 needs CUDA and the flash-attn "
                "package (pip install 'janus[gpu]'); use auto or sdpa"
            )

    if common.use_liger_kernel == "auto":
        liger = cuda and installed("liger_kernel")
    else:
        liger = bool(common.use_liger_kernel)
        if liger and not installed("liger_kernel"):
            raise TrainingInputError(
                "train.common.use_liger_kernel: true, but liger-kernel is not installed; use auto"
            )

    deepspeed = None
    if common.deepspeed_config:
        path = root / common.deepspeed_config
        if not path.exists():
            raise TrainingInputError(f"train.common.deepspeed_config: {path} not found")
        if not cuda:
            log.warning("train.common.deepspeed_config is ignored without CUDA: training on the CPU")
        elif not installed("deepspeed"):
            raise TrainingInputError(
                "train.common.deepspeed_config is set, but deepspeed is not installed "
                "(pip install 'janus[gpu]')"
            )
        else:
            deepspeed = str(path)
    return DeviceSettings(cuda, bf16, attn, liger, deepspeed)


def check_optimizer(stage_name: str, stage: TrainStage, device: DeviceSettings) -> None:
    """bitsandbytes' 8-bit optimizers need it installed, and CUDA (the CPU profiles use adamw_torch)."""
    if "bnb" not in stage.optim and "8bit" not in stage.optim:
        return
    if not device.cuda:
        raise TrainingInputError(
            f"train.{stage_name}.optim: {stage.optim} runs on CUDA only (bitsandbytes); use adamw_torch on the CPU"
        )
    if not installed("bitsandbytes"):
        from janus.accelerators import GPU_SETUP_COMMAND

        raise TrainingInputError(
            f"train.{stage_name}.optim: {stage.optim} needs bitsandbytes, which is not installed: "
            f"run `{GPU_SETUP_COMMAND}` (the pinned GPU environment) or use adamw_torch"
        )


def check_packing(
    stage_name: str, stage: TrainStage, common: TrainCommon, device: DeviceSettings, model_config: Any
) -> None:
    """Packing/padding-free only where sequence boundaries survive; an error otherwise."""
    packing, padding_free = getattr(stage, "packing", False), getattr(stage, "padding_free", False)
    if not (packing or padding_free):
        return
    key = f"train.{stage_name}"
    if padding_free and not packing:
        raise TrainingInputError(
            f"{key}.padding_free without packing leaves max_length unenforced in TRL; set "
            "packing: true (best-fit-decreasing packing is padding-free)"
        )
    from transformers import MODEL_FOR_CAUSAL_LM_MAPPING

    model_class = MODEL_FOR_CAUSAL_LM_MAPPING.get(type(model_config), None)
    if getattr(model_config, "is_encoder_decoder", False) or model_class is None:
        raise TrainingInputError(f"{key}.packing: {type(model_config).__name__} is not a decoder-only model")
    if "position_ids" not in inspect.signature(model_class.forward).parameters:
        raise TrainingInputError(
            f"{key}.packing: {model_class.__name__} takes no position_ids, so packed sequences "
            "cannot be kept apart; set packing: false"
        )
    if device.attn_implementation.startswith("flash_attention"):
        return  # varlen kernels: each document attends to itself only
    if device.cuda and common.attn_implementation == "auto":
        raise TrainingInputError(
            f"{key}.packing on GPU needs flash-attention (pip install 'janus[gpu]'), or an explicit "
            "train.common.attn_implementation: flex_attention (block-sparse document masks) or "
            "sdpa (dense block-diagonal masks: attention costs grow with the packed length squared)"
        )
    if device.attn_implementation == "flex_attention" and stage_max_length(stage, common) < 128:
        # Seen with torch 2.11: inductor finds no flex-attention kernel configuration for packed
        # batches shorter than one 128-token block once shapes turn dynamic (NoValidChoicesError).
        log.warning("%s: flex_attention with max_length < 128 may fail to compile; use sdpa", key)
    import transformers.masking_utils as masking

    if not hasattr(masking, "find_packed_sequence_indices"):
        raise TrainingInputError(
            f"{key}.packing with {device.attn_implementation} attention needs transformers>=4.53 "
            "(packed-sequence masks) or flash-attention"
        )


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


def _model_fingerprint(name_or_path: str) -> str:
    """Cheap content fingerprint of a checkpoint: config, and size + head + tail of each file."""
    path = Path(name_or_path)
    if not path.is_dir():
        return name_or_path
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        size = file.stat().st_size
        digest.update(f"{file.relative_to(path)}:{size}".encode())
        with file.open("rb") as handle:
            digest.update(handle.read(1 << 20))
            if size > 2 << 20:
                handle.seek(-(1 << 20), 2)
                digest.update(handle.read())
    return digest.hexdigest()


def run_fingerprint(
    stage_name: str,
    stage: TrainStage,
    common: TrainCommon,
    device: DeviceSettings,
    init_model: str,
    inputs: list[Path],
) -> str:
    """Identifies a training run: same data, code, start model and params (training length
    aside). Only a run with the same fingerprint resumes from runs/<stage>/<fingerprint>/."""
    import torch
    import transformers
    import trl

    package = Path(__file__).resolve().parents[1]
    payload = {
        "stage": stage_name,
        "params": {k: v for k, v in stage.model_dump(mode="json").items() if k not in LENGTH_FIELDS},
        "common": {k: getattr(common, k) for k in COMMON_FINGERPRINT_FIELDS},
        "bf16": device.bf16,
        "init": _model_fingerprint(init_model),
        "inputs": {f"{p.parent.name}/{p.name}": file_digest(p) for p in sorted(inputs)},
        "code": {name: file_digest(package / name) for name in CODE_FILES if (package / name).exists()},
        "versions": [torch.__version__, transformers.__version__, trl.__version__],
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


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


def stage_max_length(stage: TrainStage, common: TrainCommon) -> int:
    return stage.max_length or common.max_length


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
