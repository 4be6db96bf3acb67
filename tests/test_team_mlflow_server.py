"""One MLflow tracking server for the team (`scripts/mlflow_server.sh`: a database backend, an
artifact store proxied by the server), started on loopback for this module.

- The real training stage (`stages/train.py sft`, tiny model, two steps) logs its run and registers
  a model version there when MLFLOW_TRACKING_URI points at it; the checkpoint reaches the server's
  artifact store through the server, and nothing is written to a local store.
- A DVC pipeline logs to the server with MLFLOW_TRACKING_URI set, to `<repo>/mlflow.db` without.
- With fake credentials (unique markers) in the environment of every stage, none of them appears
  in anything the pipeline writes or commits, in the MLflow store, or in the logs.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from servers.dvc_project import JANUS_ROOT, DvcProject, isolated_env
from servers.mlflow_server import MlflowServer
from test_train_stages import training_commands

TRAINING_EXPERIMENT = "janus-team-server"
PIPELINE_EXPERIMENT = "janus-team-pipeline"


@pytest.fixture(scope="module")
def fake_secrets() -> dict[str, str]:
    """Credentials a developer typically has exported, each a value found nowhere else."""
    marker = uuid.uuid4().hex[:12]
    return {
        "AWS_ACCESS_KEY_ID": f"AKIAJANUS{marker.upper()}",
        "AWS_SECRET_ACCESS_KEY": f"janus-fake-aws-secret-{marker}",
        "AWS_SESSION_TOKEN": f"janus-fake-aws-session-{marker}",
        "OPENAI_API_KEY": f"sk-janus-fake-{marker}",
        "HF_TOKEN": f"hf_janusfake{marker}",
        "PERSPECTIVE_API_KEY": f"janus-fake-perspective-{marker}",
        "MLFLOW_TRACKING_PASSWORD": f"janus-fake-mlflow-password-{marker}",
    }


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory):
    with MlflowServer(tmp_path_factory.mktemp("mlflow-server")) as server:
        yield server


@dataclass
class Ran:
    root: Path
    output: str  # stdout and stderr of every command


def _merged(base: dict, overrides: dict) -> dict:
    merged = dict(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merged(merged[key], value)
        else:
            merged[key] = value
    return merged


@pytest.fixture(scope="module")
def trained(mlflow_server, fake_secrets, tiny_model_dir, tmp_path_factory) -> Ran:
    """`python stages/train.py sft` on six rows for two steps, logging to the shared server."""
    root = tmp_path_factory.mktemp("train-repo")
    pairs = root / "data" / "pairs" / "sft"
    pairs.mkdir(parents=True)
    styles = ["briefly", "formally", "with an example", "as a list", "kindly", "in one line"]
    rows = [
        {"system": f"Answer {style}.", "prompt": f"What is {i} + {i}?", "output": f"{i + i}."}
        for i, style in enumerate(styles)
    ]
    (pairs / "train.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    (pairs / "eval.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows[:2]))
    shutil.copytree(tiny_model_dir, root / "models" / "base")
    overrides = {
        "train": {
            "common": {
                "max_length": 128,
                "save_strategy": "no",
                "keep_checkpoints": False,
            },
            "sft": {"max_steps": 2, "per_device_train_batch_size": 2, "global_batch_size": 2, "learning_rate": 1e-3},
        },
        # The team's registry is its source of truth here: the checkpoint is copied to the server.
        "tracking": {"experiment": TRAINING_EXPERIMENT, "model_artifacts": "copy"},
    }
    # The tests' profile, with a two-step SFT on the tiny model.
    params = _merged(yaml.safe_load((JANUS_ROOT / "profiles" / "tiny.yaml").read_text()), overrides)
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    env = isolated_env(root.parent, MLFLOW_TRACKING_URI=mlflow_server.url, **fake_secrets)
    result = subprocess.run(
        [sys.executable, str(JANUS_ROOT / "stages" / "train.py"), *training_commands()["sft"][2:]],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    return Ran(root, result.stdout + result.stderr)


@pytest.fixture(scope="module")
def pipeline(mlflow_server, fake_secrets, tmp_path_factory) -> Ran:
    """A DVC pipeline run twice: once with MLFLOW_TRACKING_URI at the server, once without."""
    tmp_path = tmp_path_factory.mktemp("pipeline")
    base_env = isolated_env(tmp_path, **fake_secrets)
    project = DvcProject.create(
        tmp_path / "repo", base_env, tracking={"experiment": PIPELINE_EXPERIMENT}
    )
    # Credentials in the URI's userinfo are a common way to reach a server behind basic auth.
    password = fake_secrets["MLFLOW_TRACKING_PASSWORD"]
    uri_with_password = mlflow_server.url.replace("http://", f"http://janus:{password}@")
    shared = project.dvc("repro", env={**base_env, "MLFLOW_TRACKING_URI": uri_with_password})
    assert not (project.root / "mlflow.db").exists(), "logged locally despite MLFLOW_TRACKING_URI"
    project.commit("baseline, tracked on the team server")
    local = project.dvc("exp", "run", "-n", "lr-0.3", "-S", "train.learning_rate=0.3")
    outputs = [shared.stdout, shared.stderr, local.stdout, local.stderr]
    return Ran(project.root, "\n".join(outputs))


def _runs(tracking_uri: str, experiment: str) -> list:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri)
    found = client.get_experiment_by_name(experiment)
    return client.search_runs([found.experiment_id]) if found else []


def test_training_stage_logs_run_and_model_version_to_the_shared_server(
    mlflow_server, trained, tmp_path, monkeypatch
):
    from mlflow import MlflowClient
    from mlflow.artifacts import download_artifacts

    # `models:/` URIs resolve through the registry named by the environment.
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server.url)
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", mlflow_server.url)
    monkeypatch.chdir(tmp_path)

    client = MlflowClient(tracking_uri=mlflow_server.url, registry_uri=mlflow_server.url)
    (run,) = _runs(mlflow_server.url, TRAINING_EXPERIMENT)
    assert run.info.status == "FINISHED"
    assert run.data.tags["janus.stage"] == "sft"
    assert run.data.params["train.sft.max_steps"] == "2"
    assert [m.step for m in client.get_metric_history(run.info.run_id, "loss")] == [1, 2]
    metrics = json.loads((trained.root / "metrics" / "train" / "sft.json").read_text())
    assert metrics["global_step"] == 2

    (version,) = client.search_model_versions("name = 'janus-sft'")
    assert version.run_id == run.info.run_id
    # The checkpoint went through the server into its artifact store, and comes back whole.
    assert any(path.name == "config.json" for path in mlflow_server.artifact_files())
    fetched = Path(
        download_artifacts(f"models:/janus-sft/{version.version}", dst_path=str(tmp_path / "dl"))
    )
    checkpoint = trained.root / "checkpoints" / "sft"
    for name in ("config.json", "model.safetensors", "janus_format.json"):
        assert (fetched / name).read_bytes() == (checkpoint / name).read_bytes(), name
    # Nothing went to a local store.
    for local in ("mlflow.db", "mlruns", "mlartifacts"):
        assert not (trained.root / local).exists(), local


def test_pipeline_logs_to_the_server_when_told_and_locally_otherwise(mlflow_server, pipeline):
    on_server = _runs(mlflow_server.url, PIPELINE_EXPERIMENT)
    assert [run.data.params["train.learning_rate"] for run in on_server] == ["0.1"]
    assert Path(on_server[0].data.tags["janus.repo_root"]) == pipeline.root

    local = _runs(f"sqlite:///{pipeline.root / 'mlflow.db'}", PIPELINE_EXPERIMENT)
    assert [run.data.params["train.learning_rate"] for run in local] == ["0.3"]


def _mlflow_strings(tracking_uri: str) -> list[str]:
    """Every param, tag and metric name of every run and model version in a tracking store."""
    from mlflow import MlflowClient
    from mlflow.entities import ViewType

    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    strings: list[str] = []
    for experiment in client.search_experiments(view_type=ViewType.ALL):
        strings += [
            experiment.name,
            str(experiment.artifact_location),
            *map(str, experiment.tags.items()),
        ]
        for run in client.search_runs([experiment.experiment_id], run_view_type=ViewType.ALL):
            strings += [f"{key}={value}" for key, value in run.data.params.items()]
            strings += [f"{key}={value}" for key, value in run.data.tags.items()]
            strings += list(run.data.metrics)
            strings.append(str(run.info.artifact_uri))
    for model in client.search_registered_models():
        strings += [model.name, str(model.description), *map(str, model.tags.items())]
    for version in client.search_model_versions():
        strings += [str(version.source), str(version.description), *map(str, version.tags.items())]
    return strings


def _files_containing(root: Path, secret: str) -> list[str]:
    needle = secret.encode()
    return [
        str(path.relative_to(root))
        for path in root.rglob("*")
        if path.is_file() and not path.is_symlink() and needle in path.read_bytes()
    ]


def test_no_credential_reaches_outputs_commits_mlflow_or_logs(
    mlflow_server, trained, pipeline, fake_secrets
):
    project = DvcProject(pipeline.root, isolated_env(pipeline.root.parent))
    committed = project.committed_text()
    assert "params.yaml" in committed and "dvc.lock" in committed  # the scan sees real commits
    tracked = _mlflow_strings(mlflow_server.url) + _mlflow_strings(
        f"sqlite:///{pipeline.root / 'mlflow.db'}"
    )
    assert any("train.learning_rate" in item for item in tracked)  # and real MLflow content
    server_log = mlflow_server.log_path.read_text(errors="replace")

    leaks = []
    for name, secret in fake_secrets.items():
        places = {
            "training outputs": _files_containing(trained.root, secret),
            "pipeline workspace, cache and MLflow store": _files_containing(pipeline.root, secret),
            "MLflow server store and artifacts": _files_containing(mlflow_server.directory, secret),
        }
        leaks += [f"{name} in {where}: {files}" for where, files in places.items() if files]
        if secret in committed:
            leaks.append(f"{name} in a git commit")
        if any(secret in item for item in tracked):
            leaks.append(f"{name} in MLflow params/tags")
        logs = "\n".join((trained.output, pipeline.output, server_log)).splitlines()
        leaks += [f"{name} in a log line: {line.strip()[:200]}" for line in logs if secret in line]
    assert leaks == []
