"""Device settings for this machine and the checks that run before any training: the optimizer
and packing a stage asks for must work on the device it gets.

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

import importlib.util
import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from janus.config.train import TrainCommon, TrainStage
from janus.logging_utils import get_logger
from janus.train.data import TrainingInputError

log = get_logger(__name__)


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


def stage_max_length(stage: TrainStage, common: TrainCommon) -> int:
    return stage.max_length or common.max_length
