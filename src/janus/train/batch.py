"""One global batch on any number of processes: gradient accumulation is derived, never a param.

global_batch_size = per_device_train_batch_size x processes x gradient_accumulation_steps, so 1,
2, 4 or 8 GPUs (or nodes of them) train the same recipe. A combination that does not divide is
an error that names the keys, raised before any model loads.
"""

from __future__ import annotations

import os

from janus.train.data import TrainingInputError


def world_size() -> int:
    """Processes of this run: set by `accelerate launch` / torchrun; a plain run is one."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def gradient_accumulation(stage_name: str, global_batch: int, micro_batch: int, processes: int) -> int:
    """The accumulation steps that make `global_batch` rows per optimizer step."""
    per_step = micro_batch * processes
    if global_batch % per_step:
        raise TrainingInputError(
            f"train.{stage_name}.global_batch_size {global_batch} is not a multiple of "
            f"train.{stage_name}.per_device_train_batch_size {micro_batch} x {processes} process(es) "
            f"(train.common.processes_per_node x nodes) = {per_step}; change one of these keys"
        )
    return global_batch // per_step
