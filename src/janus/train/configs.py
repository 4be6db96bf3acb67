"""TRL's config classes, with what janus fixes for every run, and params passed through to them.

A stage's params section (`train.<stage>`) maps one-to-one onto the fields of its trainer's
config class: the keys are passed as they are. What janus decides itself (output folder, device
and precision from `train.common`, logging to MLflow through its own callback, one evaluation at
the end) is set here and cannot be overridden from a stage's section; a key that is not a field
of the class is an error that names it, before any model is loaded.
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import Any

import trl

from janus.train.data import TrainingInputError


@dataclasses.dataclass
class SFTConfig(trl.SFTConfig):
    """Janus SFT: prompt/completion rows with the loss on the completion only; packing, when on,
    is best-fit-decreasing (padding-free)."""

    completion_only_loss: bool | None = True
    packing_strategy: str = "bfd"


@dataclasses.dataclass
class DPOConfig(trl.DPOConfig):
    """Janus+DPO (E.1): the reference model is a frozen copy of the starting checkpoint."""


@dataclasses.dataclass
class RewardConfig(trl.RewardConfig):
    """Janus-RM (E.2): Bradley-Terry loss on a one-logit sequence-classification head."""


def _orpo_base() -> type:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*experimental.*")
        from trl.experimental.orpo import ORPOConfig

    return ORPOConfig


@dataclasses.dataclass
class ORPOConfig(_orpo_base()):
    """Janus+ORPO (E.1): reference-free; `beta` is ORPO's lambda (the paper's alpha)."""


CONFIG_CLASSES: dict[str, type] = {
    "sft": SFTConfig,
    "dpo": DPOConfig,
    "orpo": ORPOConfig,
    "rm": RewardConfig,
}

# Keys a stage's params must not set: janus derives them (from train.common, the device, the run
# directory) so that one profile runs unchanged on a CPU and on GPUs.
JANUS_SET = frozenset(
    (
        "output_dir", "per_device_eval_batch_size", "gradient_accumulation_steps", "bf16", "fp16", "use_cpu",
        "gradient_checkpointing", "activation_checkpointing", "use_liger_kernel", "deepspeed",
        "logging_steps", "logging_first_step", "save_strategy", "save_steps", "save_total_limit",
        "eval_strategy", "report_to", "seed", "data_seed", "dataloader_num_workers",
        "full_determinism",
    )
)


def config_fields(kind: str) -> set[str]:
    return {field.name for field in dataclasses.fields(CONFIG_CLASSES[kind]) if field.init}


def check_stage_keys(kind: str, stage_name: str, keys: set[str]) -> None:
    """Every params key of a stage is a field of its TRL config, and not one janus sets."""
    fields = config_fields(kind)
    unknown = sorted(keys - fields)
    if unknown:
        cls = CONFIG_CLASSES[kind].__mro__[1]
        raise TrainingInputError(
            f"train.{stage_name}: {unknown} not field(s) of {cls.__module__}.{cls.__name__}"
        )
    reserved = sorted(keys & JANUS_SET)
    if reserved:
        raise TrainingInputError(
            f"train.{stage_name}: {reserved} are set by janus (from train.common and the device)"
        )


def build_config(kind: str, stage_name: str, trainer_params: dict[str, Any], janus_args: dict[str, Any]):
    """The TRL config of one stage: its params section as is, plus what janus derives."""
    check_stage_keys(kind, stage_name, set(trainer_params))
    return CONFIG_CLASSES[kind](**janus_args, **trainer_params)
