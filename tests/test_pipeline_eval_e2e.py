"""End to end: the whole pipeline under real DVC with the tiny profile (the session's shared run,
tests/servers/tiny_pipeline.py), up to `report` and `scorecard`, with two judges (their
agreement, the same-judge scorecard); in a copy of it, changed analysis params (the judge's CI
seed, an agreement CI seed, the same-judge margin) rerun only `judge_scores`, `report` and
`scorecard`, never the grading; then a changed judge param reruns exactly `judge`, `judge_scores`
and `report`, and `dvc metrics diff` shows changes in judge-derived keys only.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from servers.tiny_pipeline import copy_of
from servers.tiny_pipeline import dvc as dvc_command
from servers.tiny_pipeline import run as _run
from servers.tiny_pipeline import stages_run as _stages_run

REPO = Path(__file__).resolve().parents[1]
EVAL_STAGES = ("bench", "judge", "judge_scores", "report", "scorecard")
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
def test_eval_stages_under_dvc(tiny_pipeline, tmp_path):
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    # a stage or a tiny-profile param gone missing is the regression this test exists to catch
    missing = [stage for stage in (*UPSTREAM_STAGES, *EVAL_STAGES) if stage not in stages]
    assert not missing, f"dvc.yaml has no {missing} stage(s)"
    missing = _missing_params(stages, yaml.safe_load((REPO / "profiles/tiny.yaml").read_text()))
    assert not missing, f"profiles/tiny.yaml lacks {missing}, which dvc.yaml's stages declare"
    pipeline = copy_of(tiny_pipeline, tmp_path / "copy")  # the params change below
    work, env = pipeline.work, pipeline.env
    dvc = dvc_command()
    assert set(EVAL_STAGES) <= set(_stages_run(pipeline.log))

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

    # analysis params (the judge's CIs among them): no judge is asked again
    params["judge_scores"]["bootstrap_seed"] += 1
    params["report"]["agreement"]["bootstrap_seed"] += 1
    params["scorecard"]["same_judge"]["margin"] *= 2
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    analysis = _run([*dvc, "repro", "report", "scorecard"], work, env)
    assert sorted(_stages_run(analysis)) == ["judge_scores", "report", "scorecard"]
    _run(["git", "add", "-A"], work, env)
    _run(["git", "commit", "-q", "-m", "analysis params"], work, env)
    params["judge"]["seed"] += 1
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    second = _run([*dvc, "repro", "report"], work, env)
    assert _stages_run(second) == ["judge", "judge_scores", "report"]

    # stdout only: DVC notes on stderr what it could not compare
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

    # the README's rerun table against real `dvc status`: an edit to the HTTP client marks
    # exactly the stages the table names (among those this run locked)
    locked = set(yaml.safe_load((work / "dvc.lock").read_text())["stages"])
    client = "src/janus/llm/openai_backend.py"
    (work / client).write_text((work / client).read_text() + "# an edit\n")
    done = subprocess.run(
        [*dvc, "status", "--json"], cwd=work, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-4000:]
    # the stages the edit marks (scorecard may be stale already: the second repro stopped at report)
    marked = {
        stage
        for stage, entries in json.loads(done.stdout).items()
        for entry in entries
        if isinstance(entry, dict)
        and any(
            client == dep or client.startswith(f"{dep.rstrip('/')}/")  # the file or its folder
            for dep in entry.get("changed deps", {})
        )
    }
    table = _rerun_table().load_pipeline(work)
    expected = set(_rerun_table().stages_for_file(table, client))
    assert marked & locked == expected & locked
    assert "judge" in expected and "report" not in expected


def _rerun_table():
    spec = importlib.util.spec_from_file_location("rerun_table", REPO / "scripts/rerun_table.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["rerun_table"] = module  # dataclasses look their module up while being built
    spec.loader.exec_module(module)
    return module
