"""The accelerators this process can use: the one place that asks torch about CUDA.

Tests fake a CUDA machine (to check refusals that must happen before any model loads) by setting
`JANUS_FAKE_CUDA_DEVICES` to a device count; nothing else reads CUDA state directly.
"""

from __future__ import annotations

import os
from pathlib import Path

FAKE_CUDA_ENV = "JANUS_FAKE_CUDA_DEVICES"
# The NVIDIA driver lists one directory per GPU here, whatever torch build is installed (a CPU
# torch sees no CUDA device at all, which is the very case `require_gpu_environment` must catch).
NVIDIA_GPUS_DIR = Path("/proc/driver/nvidia/gpus")
GPU_SETUP_COMMAND = "make setup-gpu"
GPU_LOCK = "requirements-gpu.lock"


class GPUEnvironmentError(RuntimeError):
    """GPUs are there but the installed packages cannot use them: the stage stops before loading."""


def cuda_device_count() -> int:
    """CUDA devices visible to this process (0 without CUDA)."""
    fake = os.environ.get(FAKE_CUDA_ENV)
    if fake is not None:
        return int(fake)
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def cuda_available() -> bool:
    return cuda_device_count() > 0


FAKE_CUDA_MEMORY_ENV = "JANUS_FAKE_CUDA_MEMORY_GIB"


def cuda_device_memory() -> int:
    """Bytes of memory of the first visible CUDA device (0 without CUDA); faked in GiB by
    JANUS_FAKE_CUDA_MEMORY_GIB."""
    fake = os.environ.get(FAKE_CUDA_MEMORY_ENV)
    if fake is not None:
        return int(float(fake) * 2**30)
    if not cuda_available():
        return 0
    import torch

    return torch.cuda.get_device_properties(0).total_memory


def visible_gpu_ids() -> list[str]:
    """The ids to put in a child's CUDA_VISIBLE_DEVICES, one per device this process sees (the
    entries of our own CUDA_VISIBLE_DEVICES when it is set, else 0..n-1)."""
    count = cuda_device_count()
    inherited = os.environ.get("CUDA_VISIBLE_DEVICES")
    if inherited:
        ids = [part.strip() for part in inherited.split(",") if part.strip()]
        return ids[:count]
    return [str(index) for index in range(count)]


def driver_gpu_count() -> int:
    """NVIDIA GPUs this process could use, asked of the driver rather than torch (0 without any,
    or when CUDA_VISIBLE_DEVICES hides them all)."""
    fake = os.environ.get(FAKE_CUDA_ENV)
    if fake is not None:
        return int(fake)
    present = len(list(NVIDIA_GPUS_DIR.iterdir())) if NVIDIA_GPUS_DIR.is_dir() else 0
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None and present:
        entries = [part for part in visible.split(",") if part.strip() and part.strip() != "-1"]
        return min(present, len(entries))
    return present


def torch_cuda_build() -> str | None:
    """The CUDA version torch was built for; None for a CPU build."""
    import torch

    return torch.version.cuda


def require_gpu_environment(stage: str) -> None:
    """Stop `stage` at once, before any model loads, on a machine with GPUs whose torch is the
    CPU build (the environment of requirements.lock): it would otherwise run, slowly and in fp32,
    on the CPU. Shared by every stage that runs a model."""
    gpus = driver_gpu_count()
    if gpus and torch_cuda_build() is None:
        import torch

        raise GPUEnvironmentError(
            f"{stage}: {gpus} GPU(s) visible, but torch {torch.__version__} is a CPU build (the "
            f"environment of requirements.lock). Run `{GPU_SETUP_COMMAND}` (installs {GPU_LOCK}: "
            f"CUDA torch, vLLM, DeepSpeed, flash-attn, Liger, bitsandbytes) and set "
            f"environment.lock_file: {GPU_LOCK} in params, then rerun."
        )
