"""Check the free disk space for the checkpoints training writes (parameters x bytes per
parameter x checkpoints, parameters counted from the base model's config)."""

from __future__ import annotations

import shutil
from pathlib import Path

from pydantic import BaseModel

from janus.preflight.common import FAIL, OK, SKIP, Check
from janus.train.memory import count_parameters

# Trainer checkpoints (runs/<stage>/...) hold the optimizer's two fp32 moments beside the weights.
OPTIMIZER_BYTES_PER_PARAM = 8


def _base_config(params: BaseModel, base_dir: Path | None, offline: bool):
    built = base_dir is not None and (base_dir / "config.json").exists()
    if not built and not (params.models.source == "hub" and params.models.hub_id):
        return None, None
    from transformers import AutoConfig

    if built:
        return AutoConfig.from_pretrained(base_dir), str(base_dir)
    if params.models.source == "hub" and params.models.hub_id:
        revision = getattr(params.models, "revision", None)
        config = AutoConfig.from_pretrained(
            params.models.hub_id, revision=revision, local_files_only=offline
        )
        return config, params.models.hub_id
    return None, None


def disk_checks(
    params: BaseModel, root: Path, base_dir: Path | None, gpus: bool, offline: bool = False
) -> list[Check]:
    from janus.config.train import TrainStage

    common = params.train.common
    stages = [
        name for name in type(params.train).model_fields
        if isinstance(getattr(params.train, name), TrainStage)
    ]  # fmt: skip
    try:
        config, source = _base_config(params, base_dir, offline)
    except Exception as error:  # noqa: BLE001 - e.g. offline and not cached: say so, go on
        reason = " ".join(str(error).split())[:160]
        return [Check("disk", "models", SKIP, f"base model config unreadable: {reason}")]
    if config is None:
        return [Check("disk", "models", SKIP, "base model config unknown until `models` runs")]
    count = count_parameters(config, "sft")
    bf16 = common.bf16 is True or (common.bf16 == "auto" and gpus)
    per_param = 2 if bf16 else 4
    weights = count * per_param
    trainer = 0
    if common.save_strategy != "no":
        kept = common.save_total_limit or 1
        one_stage = kept * count * (per_param + OPTIMIZER_BYTES_PER_PARAM)
        trainer = one_stage * (len(stages) if common.keep_checkpoints else 1)
    needed = weights * len(stages) + trainer
    free = shutil.disk_usage(root).free
    detail = (
        f"~{needed / 1e9:,.1f} GB for {len(stages)} checkpoints of {count / 1e9:.2f}B parameters"
        f" ({source}) at {per_param} bytes + trainer checkpoints; {free / 1e9:,.1f} GB free"
    )
    return [Check("disk", "train", OK if free >= needed else FAIL, detail)]
