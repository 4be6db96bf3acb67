"""Same inputs, same bytes; one copy of each checkpoint; metrics that are results only.

Under real DVC, in two fresh repositories with the tiny profile: the training stages (the `train`
table and `rm`) run in each give identical md5s for every output in dvc.lock. Each checkpoint then
exists once on disk (the workspace files are links into the DVC cache) and its MLflow model
version points at it (path, the md5 dvc.lock records, the git commit), with no weights copied into
mlartifacts/. The whole tiny pipeline, forced to rerun from a warm LLM cache, leaves
`dvc metrics diff` empty: no timings in the DVC metrics.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from test_train_stages import make_repo, training_commands

REPO = Path(__file__).resolve().parents[1]
CHAIN = ("train@sft", "train@sft_third", "train@sft_one_epoch", "train@dpo", "train@orpo", "rm")


def _env(tmp_path: Path) -> dict[str, str]:
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "DVC_", "MLFLOW_"))},
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "JANUS_CACHE_DIR": str(tmp_path / "llm-cache"),
        "HF_HUB_OFFLINE": "1",
        "OMP_NUM_THREADS": "1",
        "GIT_AUTHOR_NAME": "Janus Test",
        "GIT_AUTHOR_EMAIL": "janus@example.invalid",
        "GIT_COMMITTER_NAME": "Janus Test",
        "GIT_COMMITTER_EMAIL": "janus@example.invalid",
    }


def _run(args: list[str], work: Path, env: dict[str, str], timeout: float = 1800) -> str:
    done = subprocess.run(args, cwd=work, env=env, capture_output=True, text=True, timeout=timeout)
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"{' '.join(args)} failed:\n{output[-6000:]}"
    return output


def _project(work: Path, env: dict[str, str], model_dir: Path | None = None) -> None:
    """A fresh git + DVC repository with this checkout's pipeline, code, lock and DVC config."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    work.mkdir(parents=True)
    if model_dir is not None:
        make_repo(work, model_dir)  # models/base and data/pairs, without the upstream stages
    folders = ("stages", "src", "configs", "data/sources", "data/taxonomy", "data/published")
    for folder in (*folders, "data/paper", "metrics/alpaca_eval_judge"):
        shutil.copytree(REPO / folder, work / folder, ignore=ignore, dirs_exist_ok=True)
    for name in (".dvcignore", ".gitignore", "dvc.yaml", "requirements.lock"):
        shutil.copy(REPO / name, work / name)
    shutil.copy(REPO / "profiles/tiny.yaml", work / "params.yaml")
    _run(["git", "init", "-q"], work, env)
    _run([sys.executable, "-m", "dvc", "init", "-q"], work, env)
    shutil.copy(REPO / ".dvc/config", work / ".dvc/config")  # the committed cache link type
    shutil.copytree(REPO / ".dvc/plots", work / ".dvc/plots")


def _lock_outs(work: Path, stages: tuple[str, ...]) -> dict[str, str]:
    lock = yaml.safe_load((work / "dvc.lock").read_text())["stages"]
    return {out["path"]: out["md5"] for name in stages for out in lock[name]["outs"]}


def test_training_table_is_the_dvc_yaml_table():
    commands = training_commands()
    assert set(commands) == {"sft", "sft_third", "sft_one_epoch", "dpo", "orpo", "rm"}
    assert commands["dpo"][commands["dpo"].index("--init") + 1] == "checkpoints/sft_third"
    assert commands["rm"][commands["rm"].index("--trainer") + 1] == "rm"


@pytest.mark.slow
def test_training_stages_twice_give_the_same_bytes_and_one_copy(tmp_path, tiny_model_dir):
    env = _env(tmp_path)
    works = [tmp_path / "first", tmp_path / "second"]
    runs = []
    for work in works:
        _project(work, env, tiny_model_dir)
        # -s: only these stages (their inputs are already there); both repositories at once.
        runs.append(subprocess.Popen(
            [sys.executable, "-m", "dvc", "repro", "-s", *CHAIN], cwd=work, env=env,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        ))
    for run in runs:
        output, _ = run.communicate(timeout=1800)
        assert run.returncode == 0, output[-6000:]

    first, second = (_lock_outs(work, CHAIN) for work in works)
    assert set(first) >= {f"checkpoints/{name}" for name in ("sft", "dpo", "orpo", "rm")}
    assert first == second  # every checkpoint (rm included), metrics file and loss curve

    # One copy: each weight file in the workspace is the DVC cache's file (a link), and MLflow's
    # model version points at it instead of holding another copy.
    work = works[0]
    from janus.tracking import dvc_md5

    def linked(file: Path) -> bool:
        md5 = dvc_md5(file)
        cached = work / ".dvc/cache/files/md5" / md5[:2] / md5[2:]
        return cached.exists() and os.path.samefile(file, cached)

    checkpoints = [work / "checkpoints" / name for name in ("sft", "sft_third", "dpo", "orpo", "rm")]
    for checkpoint in checkpoints:
        assert dvc_md5(checkpoint) == first[f"checkpoints/{checkpoint.name}"]
    # New bytes are linked as soon as the stage is committed: the weights are one file. (Here
    # sft_third trains on sft's rows with sft's params, so its weights are sft's bytes: a copy.)
    for name in ("sft", "dpo", "orpo", "rm"):
        assert linked(work / "checkpoints" / name / "model.safetensors"), name
    # DVC links only content new to its cache; files equal to an earlier output's (the same
    # tokenizer in every checkpoint) stay copies until `dvc checkout --relink` (`make demo`).
    _run([sys.executable, "-m", "dvc", "checkout", "--relink", "-q", *CHAIN], work, env)
    for checkpoint in checkpoints:
        assert all(linked(file) for file in checkpoint.rglob("*") if file.is_file()), checkpoint
    assert not list((work / "mlartifacts").rglob("*.safetensors"))

    from mlflow import MlflowClient

    uri = f"sqlite:///{work / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=work, capture_output=True, text=True).stdout
    for name in ("rm", "dpo"):
        (version,) = client.search_model_versions(f"name='janus-{name}'")
        assert version.tags["dvc.path"] == f"checkpoints/{name}"
        assert version.tags["dvc.md5"] == first[f"checkpoints/{name}"]  # what dvc.lock records
        assert version.tags["git.commit"] in (commit.strip() or "unknown", "unknown")
        model_id = version.source.removeprefix("models:/")
        assert {a.path for a in client.list_logged_model_artifacts(model_id)} == {"dvc_reference.json"}
    # Timings went to runtime/ (git-ignored, not in dvc.yaml), not to the DVC metrics.
    for name in ("sft", "rm"):
        metrics = json.loads((work / "metrics/train" / f"{name}.json").read_text())
        assert not [key for key in metrics if key.endswith(("_s", "_seconds", "per_second"))]
        assert "stage_wall_s" in json.loads((work / "runtime" / f"{name}.json").read_text())


@pytest.mark.slow
def test_forced_rerun_of_the_tiny_pipeline_leaves_metrics_unchanged(tmp_path):
    env = _env(tmp_path)
    work = tmp_path / "repo"
    _project(work, env)
    dvc = [sys.executable, "-m", "dvc"]
    _run([*dvc, "repro"], work, env, timeout=3600)
    _run(["git", "add", "-A"], work, env)
    _run(["git", "commit", "-q", "-m", "tiny pipeline"], work, env)
    # Every stage again, from the warm LLM cache: results are the same, so are the metrics.
    _run([*dvc, "repro", "-f"], work, env, timeout=3600)
    diff = json.loads(_run([*dvc, "metrics", "diff", "--json"], work, env))
    changed = {path: sorted(keys) for path, keys in diff.items() if keys}
    assert changed == {}, json.dumps(changed, indent=1)
    status = _run(["git", "status", "--porcelain", "dvc.lock"], work, env)
    assert status.strip() == ""  # and every output's md5 in dvc.lock is the same
