"""End to end: the whole pipeline under real DVC in a fresh repository with the tiny profile, up to
`report` and `scorecard`, with two judges (their agreement, the same-judge scorecard); a changed
analysis param (an agreement CI seed, the same-judge margin) reruns only `report` and
`scorecard`, never the grading; then a changed judge param reruns exactly `judge` and `report`,
and `dvc metrics diff` shows changes in judge-derived keys only.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
EVAL_STAGES = ("bench", "judge", "report", "scorecard")
# What the evaluation needs from the other stages: data, checkpoints, responses, toxicity.
UPSTREAM_STAGES = (
    "models",
    "filter",
    "gold_responses",
    "train",  # the foreach table: sft, sft_third, sft_one_epoch, dpo, orpo
    "rm",
    "infer",
    "toxicity",
)
JUDGE_DERIVED = {"metrics/judge.json", "metrics/report.json"}


def _copy_pipeline(work: Path) -> None:
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for folder in ("stages", "src", "configs", "data/sources", "data/taxonomy", "data/paper"):
        shutil.copytree(REPO / folder, work / folder, ignore=ignore)
    for name in (".dvcignore", ".gitignore", "dvc.yaml", "requirements.lock"):
        shutil.copy(REPO / name, work / name)
    shutil.copy(REPO / "profiles/tiny.yaml", work / "params.yaml")


def _run(args: list[str], work: Path, env: dict[str, str], timeout: float = 1500) -> str:
    done = subprocess.run(args, cwd=work, env=env, capture_output=True, text=True, timeout=timeout)
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"{' '.join(args)} failed:\n{output[-6000:]}"
    return output


def _stages_run(output: str) -> list[str]:
    return re.findall(r"Running stage '([^']+)'", output)


def _missing_params(stages: dict, params: dict) -> list[str]:
    """Params keys that stages declare but the profile lacks (templated keys are not checked)."""
    missing = []
    for stage in stages.values():
        for key in stage.get("do", stage).get("params", []):
            if not isinstance(key, str) or "${" in key:
                continue
            node = params
            for part in key.split("."):
                if not isinstance(node, dict) or part not in node:
                    missing.append(key)
                    break
                node = node[part]
    return sorted(set(missing))


@pytest.mark.slow
def test_eval_stages_under_dvc(tmp_path):
    pipeline = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    missing = [stage for stage in (*UPSTREAM_STAGES, *EVAL_STAGES) if stage not in pipeline]
    if missing:
        pytest.skip(f"the pipeline has no {missing} stage(s) yet")
    missing = _missing_params(pipeline, yaml.safe_load((REPO / "profiles/tiny.yaml").read_text()))
    if missing:
        pytest.skip(f"profiles/tiny.yaml has no {missing} yet")
    work = tmp_path / "repo"
    work.mkdir()
    _copy_pipeline(work)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "DVC_", "MLFLOW_"))},
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "JANUS_CACHE_DIR": str(tmp_path / "llm-cache"),
        "HF_HUB_OFFLINE": "1",
        "OMP_NUM_THREADS": "1",  # the tiny model gains nothing from threads on a shared runner
        "GIT_AUTHOR_NAME": "Janus Test",
        "GIT_AUTHOR_EMAIL": "janus@example.invalid",
        "GIT_COMMITTER_NAME": "Janus Test",
        "GIT_COMMITTER_EMAIL": "janus@example.invalid",
    }
    dvc = [sys.executable, "-m", "dvc"]
    _run(["git", "init", "-q"], work, env)
    _run([*dvc, "init", "-q"], work, env)
    shutil.copytree(REPO / ".dvc/plots", work / ".dvc/plots")  # the plot templates

    first = _run([*dvc, "repro", "report", "scorecard"], work, env)
    assert set(EVAL_STAGES) <= set(_stages_run(first))

    bench = [json.loads(line) for line in (work / "data/bench.jsonl").read_text().splitlines()]
    assert len(bench) == 2  # 1 instruction x 2 system messages (tiny profile)
    assert {
        "id",
        "source",
        "system",
        "prompt",
        "reference_answer",
        "rubrics",
        "preference_set",
    } <= set(bench[0])
    judge = json.loads((work / "metrics/judge.json").read_text())
    params = yaml.safe_load((work / "params.yaml").read_text())
    models = [*params["infer"]["models"], *params["infer"]["best_of_n"]]
    assert set(judge["scores"]) <= set(models) and set(judge["counts"]) == set(models)
    for model in judge["scores"]:
        overall = judge["scores"][model]["system"]["overall"]
        assert overall["mean"] is None or 1 <= overall["mean"] <= 5
    assert set(judge["pairwise"]) == {"sft_vs_base"}
    report = (work / "reports/report.md").read_text()
    for heading in (
        "(Table 2)",
        "(Table 8)",
        "(Table 11)",
        "(Figure 3)",
        "(Figure 9)",
        "(Figure 5)",
        "(Table 4)",
    ):
        assert heading in report
    plots = json.loads(_run([*dvc, "plots", "show", "--json"], work, env))
    assert not plots.get("errors")
    declared = yaml.safe_load((work / "dvc.yaml").read_text())["plots"]
    for plot in declared:
        (title,) = plot
        assert plots["data"][title][0]["content"]["data"]["values"], title

    # two judges (tiny: judge.judges = [judge, open_judge]): their agreement, the same-judge card
    assert [entry["role"] for entry in judge["judges"]] == ["judge", "open_judge"]
    assert "Agreement between judges" in report and "κ (quadratic)" in report
    agreement = json.loads((work / "metrics/report.json").read_text())["judge_agreement"]
    overall = agreement["judge_vs_open_judge"]["overall"]
    assert overall["pairs"] > 0 and 0 <= overall["within_one"] <= 1
    card = json.loads((work / "metrics/reproduction.json").read_text())["same_judge"]
    for role in ("judge", "open_judge"):
        pair = card["pairs"][role]["sft_vs_base"]["overall"]  # tiny: base stands in as published
        assert pair["verdict"] in ("reproduced", "differs", "inconclusive")
        assert pair["paper"] == 4.17 and pair["paper_row"] == "Janus 7B"
    assert "## Same judge" in (work / "reports/reproduction.md").read_text()

    _run(["git", "add", "-A"], work, env)
    _run(["git", "commit", "-q", "-m", "tiny pipeline"], work, env)
    # analysis params: no judge is asked again
    params["report"]["agreement"]["bootstrap_seed"] += 1
    params["scorecard"]["same_judge"]["margin"] *= 2
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    analysis = _run([*dvc, "repro", "report", "scorecard"], work, env)
    assert sorted(_stages_run(analysis)) == ["report", "scorecard"]
    _run(["git", "add", "-A"], work, env)
    _run(["git", "commit", "-q", "-m", "analysis params"], work, env)
    params["judge"]["seed"] += 1
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    second = _run([*dvc, "repro", "report"], work, env)
    assert _stages_run(second) == ["judge", "report"]

    # stdout only: stages not reproduced here (helpfulness, scorecard) leave their declared
    # metrics absent, which DVC notes on stderr
    done = subprocess.run(
        [*dvc, "metrics", "diff", "--json"], cwd=work, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-4000:]
    diff = json.loads(done.stdout)
    changed = {path for path, keys in diff.items() if keys}
    assert changed and changed <= JUDGE_DERIVED, changed
    assert any(key.startswith("scores.") for key in diff.get("metrics/judge.json", {}))
    # diversity comes from the responses alone: a new judge seed cannot move it
    assert not any(key.startswith("diversity.") for key in diff.get("metrics/report.json", {}))
