"""The accelerators this process can use: the one place that asks torch about CUDA.

Tests fake a CUDA machine (to check refusals that must happen before any model loads) by setting
`JANUS_FAKE_CUDA_DEVICES` to a device count; nothing else reads CUDA state directly.
"""

from __future__ import annotations

import os

FAKE_CUDA_ENV = "JANUS_FAKE_CUDA_DEVICES"


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
SETUP_GPU_COMMAND = "make setup-gpu"


def cuda_device_memory() -> int:
    """Bytes of memory of the first visible CUDA device (0 without CUDA)."""
    fake = os.environ.get(FAKE_CUDA_MEMORY_ENV)
    if fake is not None:
        return int(float(fake) * 2**30)
    if not cuda_available():
        return 0
    import torch

    return torch.cuda.get_device_properties(0).total_memory


def machine_gpu_count() -> int:
    """NVIDIA GPUs this machine has, whatever torch build is installed (a CPU build sees none)."""
    fake = os.environ.get(FAKE_CUDA_ENV)
    if fake is not None:
        return int(fake)
    from pathlib import Path

    driver = Path("/proc/driver/nvidia/gpus")
    return sum(1 for _ in driver.iterdir()) if driver.is_dir() else 0


def cpu_torch_on_gpu_machine() -> str | None:
    """Why this environment cannot use this machine's GPUs (a CPU torch build), or None."""
    gpus = machine_gpu_count()
    if not gpus:
        return None
    import torch

    if torch.version.cuda is not None:
        return None
    return (
        f"this machine has {gpus} CUDA GPU(s) but torch {torch.__version__} is a CPU build; "
        f"install the pinned GPU environment with `{SETUP_GPU_COMMAND}` and rerun"
    )
