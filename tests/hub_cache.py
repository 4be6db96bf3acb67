"""A hub repository at a commit, offline: the hub cache's own layout
(`<type>s--owner--name/snapshots/<sha>/...`, refs/main -> sha) with HF_HUB_OFFLINE, so the real
loading code (janus.hf_loading: snapshot_download at a revision, then datasets/from_pretrained)
runs without the network."""

from __future__ import annotations

from pathlib import Path

SHA = "0123456789abcdef0123456789abcdef01234567"
OTHER_SHA = "fedcba9876543210fedcba9876543210fedcba98"


def offline_hub(monkeypatch, tmp_path: Path) -> Path:
    """Point huggingface_hub and datasets at an empty offline cache under tmp_path."""
    import datasets
    import huggingface_hub.constants as constants

    cache = tmp_path / "hf" / "hub"
    cache.mkdir(parents=True, exist_ok=True)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf" / "datasets")
    return cache


def hub_repo(monkeypatch, tmp_path: Path, repo_id: str, repo_type: str = "dataset") -> Path:
    """The snapshot folder of `repo_id` at SHA (refs/main points at it): write its files there."""
    cache = offline_hub(monkeypatch, tmp_path)
    folder = cache / f"{repo_type}s--{repo_id.replace('/', '--')}"
    snapshot = folder / "snapshots" / SHA
    snapshot.mkdir(parents=True, exist_ok=True)
    (folder / "refs").mkdir(exist_ok=True)
    (folder / "refs" / "main").write_text(SHA)
    return snapshot
