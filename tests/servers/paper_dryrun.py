"""The paper profile's dry run: every stage of profiles/paper.yaml, at toy size, under real
`dvc repro`, in a fresh copy of the pipeline, offline.

- params.yaml is profiles/paper_dryrun.yaml regenerated for the port the fake serves on
  (scripts/make_paper_dryrun.py: paper.yaml plus the overlay);
- the OpenAI API (teacher and judge in batch mode, the baseline endpoints as a fleet) is the
  loopback fake in answer-all mode (servers.fake_batches), in this process;
- hub models keep the paper's ids and revisions and load from an offline hub cache
  (HF_HUB_OFFLINE=1) laid out from the stand-ins in data/hub_samples.

Used by tests/test_paper_dryrun.py and `make paper-dryrun`
(`PYTHONPATH=tests python -m servers.paper_dryrun --work DIR`).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import resource
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from servers.fake_batches import FakeBatchesServer

REPO = Path(__file__).resolve().parents[2]
HUB_SAMPLES = REPO / "data" / "hub_samples"
# what a fresh clone of janus carries that the pipeline reads (outputs are made by the run)
COPIED = ("stages", "src", "data", "configs", "metrics/alpaca_eval_judge")
COPIED_FILES = (".dvcignore", ".gitignore", "dvc.yaml", "requirements.lock")
FAKE_KEY = "sk-dryrun-not-a-real-key"


def _make_dryrun_module():
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "make_paper_dryrun", REPO / "scripts" / "make_paper_dryrun.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def api_models(params: dict) -> list[str]:
    """The model names params ask the OpenAI API for: what the fake lists as served."""
    roles = [c for c in params["llm"].values() if isinstance(c, dict)]
    configs = roles + list(params["infer"]["endpoints"].values())
    return sorted({c["model"] for c in configs if c.get("backend") == "openai"})


def hub_models(params: Any) -> set[tuple[str, str | None]]:
    """(hub id, revision) of every model params reads from the hub that has a stand-in."""
    found: set[tuple[str, str | None]] = set()
    if isinstance(params, dict):
        if "revision" in params:
            hub_id = params.get("hub_id") or params.get("model")
            if isinstance(hub_id, str) and (HUB_SAMPLES / hub_id / "config.json").is_file():
                found.add((hub_id, params["revision"]))
        for value in params.values():
            found |= hub_models(value)
    elif isinstance(params, list):
        for value in params:
            found |= hub_models(value)
    return found


def lay_out_hub_cache(models: set[tuple[str, str | None]], cache: Path) -> None:
    """The stand-ins in huggingface_hub's cache layout (`models--owner--name/snapshots/<commit>`,
    `refs/<branch>`), so `from_pretrained(hub_id, revision=...)` finds them offline."""
    for hub_id, revision in sorted(models, key=str):
        source = HUB_SAMPLES / hub_id
        files = sorted(p for p in source.iterdir() if p.is_file())
        if revision and re.fullmatch(r"[0-9a-f]{40}", revision):
            commit = revision  # pinned: the stand-in answers for exactly that commit
        else:
            digest = hashlib.sha1()
            for path in files:
                digest.update(path.name.encode() + path.read_bytes())
            commit = digest.hexdigest()
        repo_dir = cache / ("models--" + hub_id.replace("/", "--"))
        snapshot = repo_dir / "snapshots" / commit
        snapshot.mkdir(parents=True, exist_ok=True)
        for path in files:
            shutil.copy(path, snapshot / path.name)
        if not (revision and revision == commit):
            (repo_dir / "refs").mkdir(exist_ok=True)
            (repo_dir / "refs" / (revision or "main")).write_text(commit)


def copy_pipeline(work: Path, fake_port: int) -> dict:
    """A fresh git + DVC repository at `work` with the pipeline and the dry-run params."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for folder in COPIED:
        shutil.copytree(REPO / folder, work / folder, ignore=ignore)
    for name in COPIED_FILES:
        shutil.copy(REPO / name, work / name)
    for lock in REPO.glob("requirements*.lock"):  # whichever environment.lock_file names
        shutil.copy(lock, work / lock.name)
    text = _make_dryrun_module().render(fake_port)
    (work / "params.yaml").write_text(text)
    return yaml.safe_load(text)


def environment(work: Path, state: Path) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("GIT_", "DVC_", "MLFLOW_", "HF_", "OPENAI_", "PERSPECTIVE_"))
    }
    env.update(
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        PYTHONPATH=str(work / "src"),
        JANUS_CACHE_DIR=str(state / "llm-cache"),
        HF_HUB_CACHE=str(state / "hub-cache"),
        HF_HUB_OFFLINE="1",
        HF_DATASETS_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        OPENAI_API_KEY=FAKE_KEY,
        OMP_NUM_THREADS="1",  # tiny models gain nothing from threads on a shared 2-core runner
        TOKENIZERS_PARALLELISM="false",
        DVC_NO_ANALYTICS="1",
        GIT_AUTHOR_NAME="Janus Dry Run",
        GIT_AUTHOR_EMAIL="janus@example.invalid",
        GIT_COMMITTER_NAME="Janus Dry Run",
        GIT_COMMITTER_EMAIL="janus@example.invalid",
    )
    return env


@dataclass
class DryRun:
    work: Path
    params: dict
    stages: list[str]  # every stage of the pipeline (dvc stage list)
    first: str  # the output of the first `dvc repro`
    second: str  # the output of the second
    requests: list[dict[str, Any]] = field(default_factory=list)  # the fake's log
    seconds: dict[str, float] = field(default_factory=dict)


def _children_cpu_s() -> float:
    """CPU seconds (user + system) of the finished child processes so far: on a shared machine,
    a better measure of what the run costs than its wall time."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _run(args: list[str], cwd: Path, env: dict[str, str], timeout: float) -> str:
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    output = done.stdout + done.stderr
    if done.returncode != 0:
        raise AssertionError(f"{' '.join(args)} exited {done.returncode}:\n{output[-8000:]}")
    return output


def stages_run(output: str) -> list[str]:
    return re.findall(r"Running stage '([^']+)'", output)


def dry_run(work: Path, state: Path, timeout: float = 1200) -> DryRun:
    """Copy, serve the fake, `dvc repro` twice; the caller checks the result."""
    work.mkdir(parents=True)
    state.mkdir(parents=True, exist_ok=True)
    env = environment(work, state)
    dvc = [sys.executable, "-m", "dvc"]
    log = str(state / "fake_openai.jsonl")
    with FakeBatchesServer(answer_all=True, log_path=log) as fake:
        params = copy_pipeline(work, fake.port)
        fake.served_models = api_models(params)  # for the stages' preflight
        lay_out_hub_cache(hub_models(params), state / "hub-cache")
        _run(["git", "init", "-q"], work, env, 60)
        _run([*dvc, "init", "-q"], work, env, 120)
        shutil.copytree(REPO / ".dvc" / "plots", work / ".dvc" / "plots")  # plot templates
        stages = _run([*dvc, "stage", "list", "--name-only"], work, env, 120).split()
        started, cpu_started = time.monotonic(), _children_cpu_s()
        first = _run([*dvc, "repro"], work, env, timeout)
        middle, cpu_middle = time.monotonic(), _children_cpu_s()
        second = _run([*dvc, "repro"], work, env, timeout)
        ended, cpu_ended = time.monotonic(), _children_cpu_s()
        requests = list(fake.requests)
    return DryRun(
        work,
        params,
        stages,
        first,
        second,
        requests,
        {
            "first_repro": middle - started,
            "second_repro": ended - middle,
            "first_repro_cpu": cpu_middle - cpu_started,
            "second_repro_cpu": cpu_ended - cpu_middle,
        },
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, required=True, help="a new folder for the copy")
    args = parser.parse_args()
    if args.work.exists():
        sys.exit(f"{args.work} exists; remove it or name another folder")
    result = dry_run(args.work / "repo", args.work / "state")
    print(result.first[-3000:])
    ran = stages_run(result.first)
    print(
        f"dry run: {len(ran)} of {len(result.stages)} stages ran in "
        f"{result.seconds['first_repro']:.0f} s ({result.seconds['first_repro_cpu']:.0f} CPU s); "
        f"a second `dvc repro` ran {len(stages_run(result.second))} "
        f"({result.seconds['second_repro']:.0f} s); "
        f"the fake answered {len(result.requests)} requests; outputs in {args.work / 'repo'}"
    )


if __name__ == "__main__":
    main()
