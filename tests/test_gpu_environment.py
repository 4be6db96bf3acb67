"""The GPU environment (requirements-gpu.lock, `make setup-gpu`) is complete: on a machine with
GPUs these fail, naming the missing package, instead of skipping (tests/conftest.py runs `gpu`
tests wherever the driver shows a GPU, whatever torch build is installed)."""

from __future__ import annotations

import importlib

import pytest

pytestmark = pytest.mark.gpu

GPU_PACKAGES = ["vllm", "deepspeed", "flash_attn", "liger_kernel", "bitsandbytes"]


def test_torch_is_a_cuda_build_that_sees_the_gpus():
    import torch

    assert torch.version.cuda is not None, "torch is the CPU build: run `make setup-gpu`"
    assert torch.cuda.is_available() and torch.cuda.device_count() > 0


@pytest.mark.parametrize("package", GPU_PACKAGES)
def test_gpu_package_is_installed(package):
    importlib.import_module(package)  # ImportError fails the test: run `make setup-gpu`
