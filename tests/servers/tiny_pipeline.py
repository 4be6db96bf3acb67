"""The whole tiny pipeline under real DVC, run once per test session and shared.

A full `dvc repro` of profiles/tiny.yaml is most of what the end-to-end tests cost (every stage
starts a Python process and DVC hashes its deps), so the tests that need one (the data and eval
end-to-end tests, the training reproducibility tests) read the same run. A test that changes
anything works on its own copy (`copy_of`): `cp -a` keeps the workspace's hard links into the DVC
cache as links, and the copy has its own warm LLM cache. Under pytest-xdist the first worker to
ask builds the run while holding a file lock; the others wait for it and reuse it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# what a project needs from this checkout: the pipeline, its code, and the inputs kept in git
FOLDERS = (
    "stages",
    "src",
    "configs",
    "data/sources",
    "data/taxonomy",
    "data/published",
    "data/paper",
    "metrics/alpaca_eval_judge",  # a dep of scorecard, kept in git by its README
)
FILES = (".dvcignore", ".gitignore", "dvc.yaml", "requirements.lock")


def project_env(root: Path) -> dict[str, str]:
    """The environment a project under `root` runs in: its own LLM cache, offline, one thread."""
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "DVC_", "MLFLOW_"))},
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "JANUS_CACHE_DIR": str(root / "llm-cache"),
        "HF_HUB_OFFLINE": "1",
        # the tiny model gains nothing from threads, and on a shared 2-core runner torch's
        # spinning intra-op threads make each step many times slower
        "OMP_NUM_THREADS": "1",
        "GIT_AUTHOR_NAME": "Janus Test",
        "GIT_AUTHOR_EMAIL": "janus@example.invalid",
        "GIT_COMMITTER_NAME": "Janus Test",
        "GIT_COMMITTER_EMAIL": "janus@example.invalid",
    }


def run(args: list[str], work: Path, env: dict[str, str], timeout: float = 1800) -> str:
    done = subprocess.run(args, cwd=work, env=env, capture_output=True, text=True, timeout=timeout)
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"{' '.join(args)} failed:\n{output[-6000:]}"
    return output


def dvc(*args: str) -> list[str]:
    return [sys.executable, "-m", "dvc", *args]


def stages_run(output: str) -> list[str]:
    return re.findall(r"Running stage '([^']+)'", output)


def make_project(work: Path, env: dict[str, str], profile: str = "tiny") -> None:
    """A fresh git + DVC repository with this checkout's pipeline, code, DVC config and plot
    templates, and `profiles/<profile>.yaml` as its params.yaml."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    work.mkdir(parents=True, exist_ok=True)
    for folder in FOLDERS:
        shutil.copytree(REPO / folder, work / folder, ignore=ignore, dirs_exist_ok=True)
    for name in FILES:
        shutil.copy(REPO / name, work / name)
    shutil.copy(REPO / "profiles" / f"{profile}.yaml", work / "params.yaml")
    run(["git", "init", "-q"], work, env)
    run(dvc("init", "-q"), work, env)
    shutil.copy(REPO / ".dvc/config", work / ".dvc/config")  # the committed cache link type
    shutil.copytree(REPO / ".dvc/plots", work / ".dvc/plots")


@dataclass(frozen=True)
class TinyPipeline:
    """A project whose whole pipeline has run once and is committed (`work`), the environment it
    runs in (`env`: its own LLM cache beside it) and what that `dvc repro` printed (`log`)."""

    work: Path
    env: dict[str, str]
    log: str


def build(root: Path) -> TinyPipeline:
    env = project_env(root)
    work = root / "repo"
    make_project(work, env)
    log = run(dvc("repro"), work, env, timeout=3600)
    run(["git", "add", "-A"], work, env)
    run(["git", "commit", "-q", "-m", "tiny pipeline"], work, env)
    (root / "repro.log").write_text(log)
    return TinyPipeline(work, env, log)


def shared(tmp_path_factory) -> TinyPipeline:
    """The session's one run, built by the first worker that asks. Read it; never change it."""
    from filelock import FileLock

    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # shared by the workers of one session
    root = base / "tiny-pipeline"
    with FileLock(f"{root}.lock"):
        if (root / "repro.log").exists():
            return TinyPipeline(root / "repo", project_env(root), (root / "repro.log").read_text())
        shutil.rmtree(root, ignore_errors=True)  # a build that failed half-way
        root.mkdir()
        return build(root)


def copy_of(pipeline: TinyPipeline, dest: Path) -> TinyPipeline:
    """A copy to change: the repository and its LLM cache, hard links kept (`cp -a`)."""
    source_root = pipeline.work.parent
    dest.mkdir(parents=True, exist_ok=True)
    for name in ("repo", "llm-cache"):
        if (source_root / name).exists():
            subprocess.run(["cp", "-a", str(source_root / name), str(dest / name)], check=True)
    return TinyPipeline(dest / "repo", project_env(dest), pipeline.log)
