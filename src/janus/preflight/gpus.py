"""Check that CUDA has as many devices as the launch settings ask for (the accelerate config of
training, the engines' tensor and data parallel sizes, local LLM roles on cuda)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from pydantic import BaseModel

from janus.config.engine import EngineParams
from janus.preflight.common import FAIL, OK, Check, llm_configs


def gpu_requirements(
    params: BaseModel, root: Path, keys: Iterable[str] | None = None
) -> list[tuple[str, int]]:
    """(params key, GPUs per node it asks for) of each launch setting (only `keys` if given)."""
    wanted = None if keys is None else set(keys)
    found: list[tuple[str, int]] = []
    accelerate_key = "train.common.accelerate_config"
    train = getattr(params, "train", None)  # a stage's params hold only its sections
    launch = train.common.accelerate_config if train is not None else None
    if launch and (wanted is None or accelerate_key in wanted):
        from accelerate.commands.config.config_args import load_config_from_file

        config = load_config_from_file(str(root / launch))
        distributed = str(getattr(config, "distributed_type", "NO")).split(".")[-1]
        per_node = (
            train.common.processes_per_node
        )  # the config file holds no counts (janus.train.launch)
        if not config.use_cpu and distributed != "NO" and train.common.launcher == "local":
            # auto: the GPUs visible, so at least one; Slurm allocates its nodes' GPUs itself
            found.append((accelerate_key, per_node if isinstance(per_node, int) else 1))
    for section in ("infer", "toxicity", "helpfulness"):
        engine = getattr(params, section, None)
        engine = getattr(engine, "engine", None)
        key = f"{section}.engine"
        if not isinstance(engine, EngineParams) or (wanted is not None and key not in wanted):
            continue
        if engine.backend == "vllm" or engine.tensor_parallel_size > 1:
            # an explicit data_parallel_size asks for that many replicas of tensor_parallel_size
            replicas = (engine.data_parallel_size or 1) if engine.backend == "vllm" else 1
            found.append((f"{key}.tensor_parallel_size", engine.tensor_parallel_size * replicas))
        elif engine.device.startswith("cuda"):
            found.append((f"{key}.device", 1))
    for key, config in llm_configs(params):
        local_cuda = config.backend == "local" and config.device.startswith("cuda")
        if local_cuda and (wanted is None or key in wanted):
            found.append((f"{key}.device", 1))
    return found


def gpu_checks(params: BaseModel, root: Path, keys: Iterable[str] | None = None) -> list[Check]:
    from janus.accelerators import cuda_device_count

    needs = gpu_requirements(params, root, keys)
    if not needs:
        return [] if keys is not None else [Check("gpu", "-", OK, "no setting asks for a GPU")]
    present = cuda_device_count()
    rows = []
    for key, count in needs:
        if present >= count:
            rows.append(Check("gpu", key, OK, f"asks for {count} GPU(s); {present} present"))
        else:
            have = f"{present} present" if present else "CUDA is not available"
            rows.append(Check("gpu", key, FAIL, f"asks for {count} GPU(s); {have}"))
    return rows
