"""A small real git + DVC repository shaped like janus, for the team-workflow tests.

It carries janus's own `.dvc/config` (remotes) and `.gitignore`, so the tests exercise the committed
remote setup, and three fast stages with the same kinds of outputs as the real pipeline: a dataset
file (`make_data`), a checkpoint directory plus metrics and a loss curve (`train`), and scores
(`evaluate`). Every git/dvc call is a real subprocess, as a user would type it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

JANUS_ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent

MAKE_DATA = '''\
"""Writes a few rows; their number comes from params."""
import json
from pathlib import Path

import yaml

params = yaml.safe_load(Path("params.yaml").read_text())["make_data"]
out = Path("data/rows.jsonl")
out.parent.mkdir(parents=True, exist_ok=True)
out.write_text("".join(json.dumps({"id": i, "text": f"row {i}"}) + "\\n" for i in range(params["rows"])))
'''

# The checkpoint's bytes depend on every param, so a changed param is a changed output.
TRAIN = '''\
"""A stand-in trainer: a checkpoint directory, metrics, a loss curve{tracking_doc}."""
import hashlib
import json
from pathlib import Path

import yaml

params = yaml.safe_load(Path("params.yaml").read_text())["train"]
rows = len(Path("data/rows.jsonl").read_text().splitlines())
ckpt = Path("models/ckpt")
ckpt.mkdir(parents=True, exist_ok=True)
seed = hashlib.sha256(json.dumps([params, rows], sort_keys=True).encode()).digest()
(ckpt / "weights.bin").write_bytes(seed * 2048)
(ckpt / "config.json").write_text(json.dumps(params, sort_keys=True))
curve = [
    {{"step": step, "loss": round(1.0 / (1.0 + params["learning_rate"] * step * rows), 6)}}
    for step in range(1, params["steps"] + 1)
]
Path("metrics").mkdir(exist_ok=True)
Path("metrics/train.json").write_text(json.dumps({{"loss": curve[-1]["loss"], "steps": params["steps"]}}))
Path("metrics/train_curve.json").write_text(json.dumps(curve))
{tracking_code}
# Proof that the command really ran (the run-cache test expects it not to).
with open("runs.log", "a") as log:
    log.write("train\\n")
'''

EVALUATE = '''\
"""Scores per source, from the checkpoint's bytes."""
import json
from pathlib import Path

weights = Path("models/ckpt/weights.bin").read_bytes()
scores = {"source_a": weights[0] / 255, "source_b": weights[1] / 255}
metrics = {"score": round(sum(scores.values()) / 2, 6), "per_source": scores}
Path("metrics").mkdir(exist_ok=True)
Path("metrics/evaluate.json").write_text(json.dumps(metrics))
'''

# The stand-in trainer's MLflow logging goes through janus.tracking, as the real trainers' does.
TRACKING_CODE = """
from janus.config.tracking import TrackingSection
from janus.tracking import start_run

tracking = TrackingSection.model_validate(yaml.safe_load(Path("params.yaml").read_text())["tracking"])
with start_run(tracking, "train", params={"train": params}, data_files={"rows": Path("data/rows.jsonl")}) as run:
    for point in curve:
        run.log_metrics({"loss": point["loss"]}, step=point["step"])
"""

DEFAULT_PARAMS = {
    "make_data": {"rows": 4},
    "train": {"learning_rate": 0.1, "steps": 3},
}


def dvc_yaml(tracking: bool) -> dict:
    train_deps = ["stages/train.py", "data/rows.jsonl"]
    train_params: list = ["train"]
    if tracking:
        train_params.append("tracking")
    return {
        "stages": {
            "make_data": {
                "cmd": "python stages/make_data.py",
                "deps": ["stages/make_data.py"],
                "params": ["make_data"],
                "outs": ["data/rows.jsonl"],
            },
            "train": {
                "cmd": "python stages/train.py",
                "deps": train_deps,
                "params": train_params,
                "outs": ["models/ckpt"],
                "metrics": [{"metrics/train.json": {"cache": False}}],
                "plots": [{"metrics/train_curve.json": {"cache": False, "x": "step", "y": "loss"}}],
            },
            "evaluate": {
                "cmd": "python stages/evaluate.py",
                "deps": ["stages/evaluate.py", "models/ckpt"],
                "metrics": [{"metrics/evaluate.json": {"cache": False}}],
            },
        }
    }


def isolated_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The caller's environment minus cloud/MLflow/DVC settings, with DVC and AWS config isolated.

    Nothing from the developer's own ~/.aws, DVC global config or MLflow server can leak in, and
    botocore never waits on the EC2 metadata service for credentials that are not there.
    """
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AWS_", "MLFLOW_", "DVC_", "GIT_"))
    }
    home = tmp_path / "dvc-home"
    env.update(
        PATH=f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}",
        DVC_GLOBAL_CONFIG_DIR=str(home / "global"),
        DVC_SYSTEM_CONFIG_DIR=str(home / "system"),
        DVC_SITE_CACHE_DIR=str(home / "site-cache"),
        DVC_NO_ANALYTICS="1",
        AWS_CONFIG_FILE=str(home / "no-aws-config"),
        AWS_SHARED_CREDENTIALS_FILE=str(home / "no-aws-credentials"),
        AWS_EC2_METADATA_DISABLED="true",
        GIT_AUTHOR_NAME="Janus Test",
        GIT_AUTHOR_EMAIL="janus@example.invalid",
        GIT_COMMITTER_NAME="Janus Test",
        GIT_COMMITTER_EMAIL="janus@example.invalid",
        GIT_CONFIG_NOSYSTEM="1",
    )
    env.update(extra)
    return env


class CommandFailed(AssertionError):
    pass


def run(args: list[str], cwd: Path, env: dict[str, str], check: bool = True, timeout: float = 300):
    result = subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and result.returncode != 0:
        raise CommandFailed(
            f"{' '.join(args)} (in {cwd}) exited {result.returncode}\n"
            f"--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
        )
    return result


class DvcProject:
    def __init__(self, root: Path, env: dict[str, str]) -> None:
        self.root = root
        self.env = env

    # -- commands ------------------------------------------------------------------------------
    def dvc(self, *args: str, env: dict[str, str] | None = None, check: bool = True):
        return run([sys.executable, "-m", "dvc", *args], self.root, env or self.env, check)

    def git(self, *args: str, check: bool = True):
        return run(["git", *args], self.root, self.env, check)

    def commit(self, message: str) -> str:
        self.git("add", "-A")
        self.git("commit", "-q", "-m", message)
        return self.git("rev-parse", "HEAD").stdout.strip()

    # -- construction --------------------------------------------------------------------------
    @classmethod
    def create(cls, root: Path, env: dict[str, str], *, tracking: dict | None = None) -> DvcProject:
        """git init + dvc init with janus's remotes, the three stages and params; one commit.

        `tracking`: the params section for janus.tracking; given, the trainer logs to MLflow."""
        root.mkdir(parents=True)
        project = cls(root, env)
        project.git("init", "-q", "-b", "main")
        project.dvc("init", "-q")
        shutil.copy(JANUS_ROOT / ".dvc" / "config", root / ".dvc" / "config")
        gitignore = (JANUS_ROOT / ".gitignore").read_text()
        (root / ".gitignore").write_text(gitignore + "\n# stand-in stages' run log\nruns.log\n")
        stages = root / "stages"
        stages.mkdir()
        (stages / "make_data.py").write_text(MAKE_DATA)
        (stages / "train.py").write_text(
            TRAIN.format(
                tracking_doc=", logged to MLflow" if tracking is not None else "",
                tracking_code=TRACKING_CODE if tracking is not None else "",
            )
        )
        (stages / "evaluate.py").write_text(EVALUATE)
        params = dict(DEFAULT_PARAMS)
        if tracking is not None:
            params["tracking"] = tracking
        project.write_params(params)
        (root / "dvc.yaml").write_text(
            yaml.safe_dump(dvc_yaml(tracking=tracking is not None), sort_keys=False)
        )
        project.commit("pipeline")
        return project

    def clone(self, dest: Path, env: dict[str, str] | None = None) -> DvcProject:
        run(["git", "clone", "-q", str(self.root), str(dest)], dest.parent, self.env)
        return DvcProject(dest, env or self.env)

    # -- files ---------------------------------------------------------------------------------
    def params(self) -> dict:
        return yaml.safe_load((self.root / "params.yaml").read_text())

    def write_params(self, params: dict) -> None:
        (self.root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))

    def lock(self) -> dict:
        return yaml.safe_load((self.root / "dvc.lock").read_text())

    def out_digests(self, *paths: str) -> dict[str, str]:
        """sha256 of every file under the given workspace paths, keyed by repo-relative path."""
        digests = {}
        for path in paths:
            target = self.root / path
            files = (
                [target]
                if target.is_file()
                else sorted(p for p in target.rglob("*") if p.is_file())
            )
            for file in files:
                digests[file.relative_to(self.root).as_posix()] = hashlib.sha256(
                    file.read_bytes()
                ).hexdigest()
        return digests

    def cache_files(self) -> list[Path]:
        cache = self.root / ".dvc" / "cache"
        return sorted(p for p in cache.rglob("*") if p.is_file()) if cache.exists() else []

    def lock_md5s(self, stage: str, *paths: str) -> set[str]:
        """Object ids (md5; `.dir` for directories) of a stage's outputs in dvc.lock, all or some."""
        return {
            out["md5"]
            for out in self.lock()["stages"][stage].get("outs", [])
            if not paths or out["path"] in paths
        }

    def committed_text(self) -> str:
        """Every version of every committed file, for secret scans."""
        return self.git("log", "--all", "-p", "--format=%H %s").stdout
