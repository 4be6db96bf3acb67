"""MLflow tracking on a real SQLite store: where runs go, what they record, and clean degradation."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from janus.config.tracking import TrackingSection
from janus.tracking import (
    default_tracking_uri,
    dvc_md5,
    flatten_params,
    registered_model_name,
    resolve_repo_root,
    start_run,
    tracking_uri,
)


@pytest.fixture(autouse=True)
def _no_ambient_uri(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)


def make_repo(root: Path) -> Path:
    (root / ".git").mkdir(parents=True)
    (root / ".dvc").mkdir()
    return root


def client_for(root: Path):
    from mlflow import MlflowClient

    uri = default_tracking_uri(root)
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def test_repo_root_of_a_temporary_experiment_copy(tmp_path):
    repo = make_repo(tmp_path / "repo")
    copy = repo / ".dvc" / "tmp" / "exps" / "tmpab12cd"
    (copy / ".dvc").mkdir(parents=True)
    (copy / "stages").mkdir()
    assert resolve_repo_root(copy) == repo
    assert resolve_repo_root(copy / "stages") == repo
    (repo / "src").mkdir()
    assert resolve_repo_root(repo / "src") == repo


def test_tracking_uri_is_absolute_and_overridable(tmp_path, monkeypatch):
    config = TrackingSection()
    uri = tracking_uri(config, tmp_path)
    assert uri == f"sqlite:///{tmp_path.resolve()}/mlflow.db" and uri.startswith("sqlite:////")
    assert tracking_uri(TrackingSection(tracking_uri="http://mlflow:5000"), tmp_path) == "http://mlflow:5000"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:////elsewhere/m.db")
    assert tracking_uri(TrackingSection(tracking_uri="http://mlflow:5000"), tmp_path) == "sqlite:////elsewhere/m.db"
    assert registered_model_name("sft_third") == "janus-sft-third"


def test_runs_from_an_experiment_copy_land_in_the_original_store(tmp_path, monkeypatch):
    repo = make_repo(tmp_path / "repo")
    copy = repo / ".dvc" / "tmp" / "exps" / "tmpxyz"
    (copy / ".dvc").mkdir(parents=True)
    monkeypatch.chdir(copy)
    with start_run(TrackingSection(), "sft", params={"lr": 1}) as run:
        run.log_metrics({"loss": 2.0}, step=1)
    assert (repo / "mlflow.db").exists() and not (copy / "mlflow.db").exists()
    client = client_for(repo)
    experiment = client.get_experiment_by_name("janus")
    assert experiment.artifact_location == (repo / "mlartifacts").as_uri()
    (stored,) = client.search_runs([experiment.experiment_id])
    assert stored.info.status == "FINISHED" and stored.data.metrics["loss"] == 2.0
    assert stored.data.tags["janus.repo_root"] == str(repo.resolve())


def test_run_records_params_tags_curves_and_registers_versions(tmp_path, monkeypatch):
    repo = make_repo(tmp_path / "repo")
    monkeypatch.chdir(repo)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-live-secret-123")
    data = repo / "train.jsonl"
    data.write_text('{"prompt": "p"}\n')
    checkpoint = repo / "ckpt"
    checkpoint.mkdir()
    (checkpoint / "model.safetensors").write_bytes(b"\0" * 64)
    (checkpoint / "janus_format.json").write_text('{"prompt_format": "mistral"}')
    params = {"train": {"dpo": {"beta": 0.1}}, "llm": {"api_key": "sk-live-secret-123", "api_key_env": "OPENAI_API_KEY"}}
    versions = []
    for _ in range(2):
        with start_run(TrackingSection(), "dpo", params=params, data_files={"train": data}) as run:
            for step in (1, 2, 3):
                run.log_metrics({"loss": 1.0 / step, "rewards/accuracies": 0.5, "note": "text"}, step=step)
            versions.append(run.log_model_dir(checkpoint, "janus-dpo"))
    assert versions == ["1", "2"]
    client = client_for(repo)
    stored = client.search_runs([client.get_experiment_by_name("janus").experiment_id])[0]
    assert stored.data.params == {"train.dpo.beta": "0.1"}  # credential-like keys are dropped
    recorded = str(stored.data.params) + str(stored.data.tags)
    assert "sk-live-secret-123" not in recorded
    assert stored.data.tags["dvc.stage"] == "dpo"
    assert len(stored.data.tags["data.train.sha256"]) == 64
    assert [m.value for m in client.get_metric_history(stored.info.run_id, "loss")] == [1.0, 0.5, 1 / 3]
    assert "rewards/accuracies" in stored.data.metrics and "note" not in stored.data.metrics
    latest = client.get_model_version("janus-dpo", "2")
    assert latest.run_id == stored.info.run_id
    model_id = latest.source.removeprefix("models:/")
    # By default the version references the DVC-versioned checkpoint; no weights are copied.
    assert {a.path for a in client.list_logged_model_artifacts(model_id)} == {"dvc_reference.json"}
    assert latest.tags["dvc.path"] == "ckpt" and latest.tags["dvc.md5"] == dvc_md5(checkpoint)
    assert latest.tags["git.commit"] == client.get_run(latest.run_id).data.tags["git.commit"]
    with start_run(TrackingSection(), "dpo", params=params) as run:
        copied = run.log_model_dir(checkpoint, "janus-dpo", mode="copy")
    model_id = client.get_model_version("janus-dpo", copied).source.removeprefix("models:/")
    assert {a.path for a in client.list_logged_model_artifacts(model_id)} == {
        "model.safetensors", "janus_format.json", "dvc_reference.json"
    }


def test_dvc_md5_is_the_one_dvc_records(tmp_path):
    """dvc_md5 of a directory equals what DVC itself computes for it (`dvc add`)."""
    import subprocess
    import sys

    import yaml

    (tmp_path / "ckpt" / "sub").mkdir(parents=True)
    (tmp_path / "ckpt" / "a.bin").write_bytes(b"\1" * 100)
    (tmp_path / "ckpt" / "sub" / "b.json").write_text("{}")
    for args in (["init", "--no-scm", "-q"], ["add", "-q", "ckpt"]):
        subprocess.run([sys.executable, "-m", "dvc", *args], cwd=tmp_path, check=True, capture_output=True)
    recorded = yaml.safe_load((tmp_path / "ckpt.dvc").read_text())["outs"][0]["md5"]
    assert dvc_md5(tmp_path / "ckpt") == recorded and recorded.endswith(".dir")


def test_a_failing_stage_marks_its_run_failed(tmp_path, monkeypatch):
    repo = make_repo(tmp_path / "repo")
    monkeypatch.chdir(repo)
    with pytest.raises(RuntimeError, match="boom"), start_run(TrackingSection(), "sft", params={}):
        raise RuntimeError("boom")
    client = client_for(repo)
    (stored,) = client.search_runs([client.get_experiment_by_name("janus").experiment_id])
    assert stored.info.status == "FAILED"


def test_disabled_tracking_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with start_run(TrackingSection(enabled=False), "sft", params={"a": 1}) as run:
        assert not run.active
        run.log_metrics({"loss": 1.0}, step=1)
        assert run.log_model_dir(tmp_path, "janus-sft") is None
    assert not (tmp_path / "mlflow.db").exists()


def test_missing_mlflow_degrades_to_no_tracking(tmp_path, monkeypatch, caplog):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(sys.modules, "mlflow", None)  # `import mlflow` now raises ImportError
    with start_run(TrackingSection(), "rm", params={}) as run:
        assert not run.active
        callback = run.trainer_callback()
        callback.on_log(None, type("State", (), {"is_world_process_zero": True, "global_step": 1})(), None, logs={"loss": 1.0})
    assert "mlflow is not installed" in caplog.text
    assert not (tmp_path / "mlflow.db").exists()


def test_flatten_params_nests_and_filters():
    flat = flatten_params(
        {"a": {"b": 1, "max_tokens": 3, "hub_token": "hf_x"}, "db_password": "x", "c": [1, 2], "S3_SECRET": "y"}
    )
    assert flat == {"a.b": "1", "a.max_tokens": "3", "c": "[1, 2]"}
