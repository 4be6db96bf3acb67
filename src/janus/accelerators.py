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
