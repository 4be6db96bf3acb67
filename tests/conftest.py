"""Shared fixtures: a tiny random model with the bundled tokenizer, and CUDA-gated tests."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def pytest_collection_modifyitems(config, items):
    # GPU tests are collected everywhere and left out on a machine without GPUs. The GPUs are
    # asked of the driver, not torch: on a GPU machine with the CPU torch (or without vLLM, ...)
    # the GPU tests run and fail, naming what is missing, rather than skip.
    from janus.accelerators import driver_gpu_count

    if driver_gpu_count() > 0:
        return
    skip = pytest.mark.skip(reason="needs CUDA")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A randomly initialised 2-layer llama with SmolLM2's tokenizer and chat template."""
    from janus.config.params import load_params
    from janus.models import prepare_base_model

    out = tmp_path_factory.mktemp("models") / "tiny"
    prepare_base_model(load_params(REPO_ROOT / "profiles" / "tiny.yaml").models, out)
    return out


@pytest.fixture(scope="session")
def tiny_pipeline(tmp_path_factory):
    """The whole tiny pipeline, run once per session under real DVC and shared by the tests that
    read it (tests/servers/tiny_pipeline.py); a test that changes it works on `copy_of` it."""
    from servers.tiny_pipeline import shared

    return shared(tmp_path_factory)


@pytest.fixture(autouse=True)
def _isolated_llm_cache(tmp_path, monkeypatch):
    """Tests never read or write the user's real LLM cache."""
    monkeypatch.setenv("JANUS_CACHE_DIR", str(tmp_path / "llm-cache"))
