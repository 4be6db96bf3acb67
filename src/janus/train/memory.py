"""Will a training stage fit one GPU? An estimate from the model's config, before any weights load.

Per GPU, in bytes (P = parameters, counted on the meta device from config.json):
- weights: 4P fp32, or 2P under DeepSpeed with bf16 (its fp32 master copy is optimizer state);
- gradients: like the weights;
- optimizer states: fp32 master copy 4P (DeepSpeed bf16 only) + AdamW's two moments, 8P in fp32
  or 2P with an 8-bit optimizer (bitsandbytes: one byte per moment);
- DPO's frozen reference model: weights again, without gradients or optimizer states;
- ZeRO sharding over the processes: stage 1 the optimizer states, 2 also gradients, 3 also
  weights; CPU offload (deepspeed_config's offload_optimizer / offload_param) moves them off the GPU;
- activations of one micro-batch at the configured length (every row padded or packed to
  max_length; chosen + rejected for the preference trainers), after Korthikanti et al. (2022):
  34 bytes x tokens x hidden per layer in bf16 (+ 5 x heads x length^2 per row with eager
  attention), or one layer's plus each layer's input with gradient checkpointing; the fp32 logits
  and their gradient (8 bytes x tokens x vocab) unless Liger's fused loss never materialises them;
- a fixed CUDA context and allocator reserve.
It is an estimate (fragmentation and kernel workspaces vary); it exists to refuse runs that
cannot fit, with the options that would, instead of an out-of-memory error an hour in.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from janus.train.data import TrainingInputError

GB = 1e9
CUDA_RESERVE_BYTES = 2 * 2**30  # CUDA context, NCCL buffers, allocator slack


@dataclass(frozen=True)
class ZeroSettings:
    stage: int = 0  # 0: no DeepSpeed
    offload_optimizer: bool = False
    offload_param: bool = False

    @classmethod
    def from_file(cls, path: Path | None) -> ZeroSettings:
        if path is None:
            return cls()
        zero = json.loads(Path(path).read_text()).get("zero_optimization", {})
        return cls(
            stage=int(zero.get("stage", 0)),
            offload_optimizer=zero.get("offload_optimizer", {}).get("device", "none") in ("cpu", "nvme"),
            offload_param=zero.get("offload_param", {}).get("device", "none") in ("cpu", "nvme"),
        )


@dataclass(frozen=True)
class TrainingShape:
    """What the memory of one training process depends on."""

    kind: str  # sft, dpo, orpo, rm
    parameters: int
    hidden_size: int
    layers: int
    heads: int
    vocab_size: int
    micro_batch: int
    max_length: int
    processes: int
    bf16: bool
    gradient_checkpointing: bool
    eight_bit_optimizer: bool
    zero: ZeroSettings
    liger: bool = False
    eager_attention: bool = False


@dataclass(frozen=True)
class MemoryEstimate:
    weights: float
    gradients: float
    optimizer: float
    reference: float
    activations: float
    reserve: float

    @property
    def total(self) -> float:
        return self.weights + self.gradients + self.optimizer + self.reference + self.activations + self.reserve

    def describe(self) -> str:
        parts = ("weights", "gradients", "optimizer", "reference", "activations", "reserve")
        shown = ", ".join(f"{name} {getattr(self, name) / GB:.1f}" for name in parts if getattr(self, name))
        return f"{self.total / GB:.1f} GB ({shown})"


def estimate(shape: TrainingShape) -> MemoryEstimate:
    """Bytes one GPU needs for this training shape (see the module docstring for each term)."""
    p, zero, world = shape.parameters, shape.zero, shape.processes
    deepspeed_bf16 = zero.stage > 0 and shape.bf16
    weight_bytes = 2 if deepspeed_bf16 else 4
    weights = p * weight_bytes / (world if zero.stage >= 3 else 1)
    if zero.offload_param:
        weights = 0.0
    gradients = p * weight_bytes / (world if zero.stage >= 2 else 1)
    optimizer = p * ((4 if deepspeed_bf16 else 0) + (2 if shape.eight_bit_optimizer else 8))
    optimizer /= world if zero.stage >= 1 else 1
    if zero.offload_optimizer:
        optimizer = 0.0
    reference = 0.0
    if shape.kind == "dpo":  # TRL's DPO keeps a frozen copy of the start model
        reference = p * (2 if shape.bf16 else 4) / (world if zero.stage >= 3 else 1)
        if zero.offload_param:
            reference = 0.0

    rows = shape.micro_batch * (2 if shape.kind in ("dpo", "orpo", "rm") else 1)
    tokens = rows * shape.max_length
    scale = 1 if shape.bf16 else 2  # the 34-byte rule is for 2-byte activations
    layer = 34 * tokens * shape.hidden_size * scale
    if shape.eager_attention:
        layer += 5 * shape.heads * shape.max_length**2 * rows * scale
    if shape.gradient_checkpointing:
        activations = shape.layers * tokens * shape.hidden_size * 2 * scale + layer
    else:
        activations = shape.layers * layer
    if shape.kind != "rm" and not shape.liger:
        activations += 8 * tokens * shape.vocab_size
    return MemoryEstimate(weights, gradients, optimizer, reference, float(activations), float(CUDA_RESERVE_BYTES))


def count_parameters(model_config: Any, kind: str) -> int:
    """Parameters of the model a stage trains, built on the meta device (no memory, no weights)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

    with torch.device("meta"):
        if kind == "rm":
            config = type(model_config).from_dict({**model_config.to_dict(), "num_labels": 1})
            model = AutoModelForSequenceClassification.from_config(config)
        else:
            model = AutoModelForCausalLM.from_config(model_config)
    return sum(parameter.numel() for parameter in model.parameters())


def options_that_fit(shape: TrainingShape, gpu_bytes: int) -> list[str]:
    """The changes (params keys) that would make this shape fit, each with its estimate."""
    z = shape.zero
    candidates = [
        ("optim: adamw_bnb_8bit (8-bit AdamW)", replace(shape, eight_bit_optimizer=True)),
        ("train.common.gradient_checkpointing: true", replace(shape, gradient_checkpointing=True)),
        (
            "ZeRO-3 with the optimizer offloaded to the CPU (train.common.deepspeed_config with "
            '"offload_optimizer": {"device": "cpu"})',
            replace(shape, zero=ZeroSettings(3, True, z.offload_param)),
        ),
        (
            "ZeRO-3 with optimizer and parameters offloaded to the CPU (also "
            '"offload_param": {"device": "cpu"})',
            replace(shape, zero=ZeroSettings(3, True, True)),
        ),
        ("half the tokens per micro-batch (per_device_train_batch_size or max_length)",
         replace(shape, max_length=max(16, shape.max_length // 2))
         if shape.micro_batch == 1 else replace(shape, micro_batch=shape.micro_batch // 2)),
    ]
    if z.stage < 3:
        candidates.insert(0, ("DeepSpeed ZeRO-3 (train.common.deepspeed_config: configs/deepspeed/zero3.json)",
                              replace(shape, zero=ZeroSettings(3, z.offload_optimizer, z.offload_param))))
    lines = []
    for label, changed in candidates:
        if changed == shape:
            continue
        total = estimate(changed).total
        lines.append(f"{label}: {total / GB:.1f} GB{'' if total <= gpu_bytes else ' (still too much)'}")
    return lines


def check_fits(stage_name: str, shape: TrainingShape, gpu_bytes: int) -> MemoryEstimate:
    """The estimate, or an error naming the options when it exceeds one GPU's memory."""
    needed = estimate(shape)
    if needed.total > gpu_bytes:
        options = "\n  ".join(options_that_fit(shape, gpu_bytes))
        raise TrainingInputError(
            f"train.{stage_name} needs about {needed.describe()} per GPU on {shape.processes} "
            f"process(es), more than the GPU's {gpu_bytes / GB:.1f} GB. Options (estimates):\n  {options}"
        )
    return needed


def stage_shape(
    kind: str, stage: Any, common: Any, device: Any, model_config: Any, max_length: int, processes: int, root: Path
) -> TrainingShape:
    """The training shape of one stage on this machine (device: janus.train.device.DeviceSettings)."""
    text = model_config.get_text_config() if hasattr(model_config, "get_text_config") else model_config
    deepspeed = Path(device.deepspeed_config) if device.deepspeed_config else None
    return TrainingShape(
        kind=kind,
        parameters=count_parameters(model_config, kind),
        hidden_size=text.hidden_size,
        layers=text.num_hidden_layers,
        heads=text.num_attention_heads,
        vocab_size=text.vocab_size,
        micro_batch=stage.per_device_train_batch_size,
        max_length=max_length,
        processes=processes,
        bf16=device.bf16,
        gradient_checkpointing=common.gradient_checkpointing,
        eight_bit_optimizer="8bit" in stage.optim,
        zero=ZeroSettings.from_file(root / deepspeed if deepspeed and not deepspeed.is_absolute() else deepspeed),
        liger=device.use_liger_kernel,
        eager_attention=device.attn_implementation == "eager",
    )
