"""Under real DVC: `helpfulness@<benchmark>` from the tiny profile, and `scorecard`, whose deltas
`dvc metrics diff` shows when a judge score moves."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]


def _run(args, work, env, stdout_only=False):
    done = subprocess.run(args, cwd=work, env=env, capture_output=True, text=True, timeout=900)
    if stdout_only and done.returncode == 0:
        return done.stdout  # other metrics files of dvc.yaml are absent here: a stderr note
    assert done.returncode == 0, (
        f"{' '.join(map(str, args))}:\n{(done.stdout + done.stderr)[-4000:]}"
    )
    return done.stdout + done.stderr


@pytest.fixture()
def work(tmp_path):
    work = tmp_path / "repo"
    work.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for folder in ("stages", "src", "data/sources", "data/paper"):
        shutil.copytree(REPO / folder, work / folder, ignore=ignore)
    for name in (".dvcignore", ".gitignore", "dvc.yaml", "requirements.lock"):
        shutil.copy(REPO / name, work / name)
    shutil.copy(REPO / "profiles/tiny.yaml", work / "params.yaml")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "DVC_", "MLFLOW_"))},
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "JANUS_CACHE_DIR": str(tmp_path / "llm-cache"),
        "HF_HUB_OFFLINE": "1",
        "OMP_NUM_THREADS": "1",
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.invalid",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.invalid",
    }
    _run(["git", "init", "-q"], work, env)
    _run([sys.executable, "-m", "dvc", "init", "-q"], work, env)
    return work, env


def _judge(mean: float) -> dict:
    entry = {"items": 2, "mean": mean, "std": None, "repeats": 1, "ci95": [mean - 0.1, mean + 0.1]}
    return {"scores": {"sft": {"system": {"overall": entry}, "no_system": {"overall": entry}}}}


def test_scorecard_deltas_show_in_dvc_metrics_diff(work):
    work, env = work
    dvc = [sys.executable, "-m", "dvc"]
    (work / "metrics").mkdir()
    (work / "metrics/judge.json").write_text(json.dumps(_judge(4.0)))
    (work / "metrics/toxicity.json").write_text(json.dumps({}))
    (work / "outputs/judge").mkdir(parents=True)  # the judge stage's folder: no per-item scores
    (work / "outputs/judge/item_scores.jsonl").write_text("")
    _run([*dvc, "repro", "--single-item", "scorecard"], work, env)
    card = json.loads((work / "metrics/reproduction.json").read_text())
    assert card["tables"]["Table 2"]["Janus 7B"]["Average"]["delta"] == pytest.approx(4.0 - 4.17)
    assert card["tables"]["Table 4"]["Janus 7B"]["Toxic prob"]["ours"] is None
    assert "not run" in (work / "reports/reproduction.md").read_text()
    _run(["git", "add", "-A"], work, env)
    _run(["git", "commit", "-qm", "run 1"], work, env)
    (work / "metrics/judge.json").write_text(json.dumps(_judge(4.2)))
    second = _run([*dvc, "repro", "--single-item", "scorecard"], work, env)
    assert "Running stage 'scorecard'" in second
    diff = json.loads(_run([*dvc, "metrics", "diff", "--json"], work, env, stdout_only=True))
    changed = diff["metrics/reproduction.json"]
    key = "tables.Table 2.Janus 7B.Average.delta"
    assert changed[key]["new"] == pytest.approx(4.2 - 4.17)
    assert changed[key]["old"] == pytest.approx(4.0 - 4.17)


def test_helpfulness_stage_under_dvc_writes_the_tools_answer_files(work, tiny_model_dir):
    work, env = work
    shutil.copytree(tiny_model_dir, work / "models/base")
    shutil.copytree(tiny_model_dir, work / "checkpoints/sft")
    params = yaml.safe_load((work / "params.yaml").read_text())
    assert params["helpfulness"]["models"] == ["sft"]
    dvc = [sys.executable, "-m", "dvc", "repro", "--single-item"]
    out = _run([*dvc, "helpfulness_prompts@mt_bench"], work, env)
    out += _run([*dvc, "helpfulness@mt_bench"], work, env)
    # the prompts file is an input stage's output, made from the bundled sample
    assert "Running stage 'helpfulness_prompts@mt_bench'" in out
    assert "Running stage 'helpfulness@mt_bench'" in out
    made = work / params["helpfulness"]["benchmarks"]["mt_bench"]["prompts_path"]
    source = work / params["helpfulness"]["benchmarks"]["mt_bench"]["source"]["path"]
    assert [json.loads(line)["turns"] for line in made.open()] == [
        json.loads(line)["turns"] for line in source.open()
    ]
    rows = [
        json.loads(line)
        for line in (work / "outputs/helpfulness/mt_bench/model_answer/sft.jsonl").open()
    ]
    assert len(rows) == 2 and all(len(r["choices"][0]["turns"]) == 2 for r in rows)
    metrics = json.loads((work / "metrics/helpfulness/mt_bench.json").read_text())
    assert metrics["models"]["sft"]["turns"] == 4
    assert not any("second" in key for key in json.dumps(metrics).split('"'))  # no timings
