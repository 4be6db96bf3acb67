"""Same inputs, same bytes; one copy of each checkpoint; metrics that are results only.

On the session's tiny pipeline (tests/servers/tiny_pipeline.py: every stage run once under real
DVC, committed): each checkpoint exists once on disk (the workspace files are links into the DVC
cache) and its MLflow model version points at it (path, the md5 dvc.lock records, the git
commit), with no weights copied into mlartifacts/. The whole pipeline, forced to rerun in a copy
(another path, the warm LLM cache), gives every output the same md5 in dvc.lock (the training
table and `rm` included: their bytes are reproducible) and leaves `dvc metrics diff` empty: no
timings in the DVC metrics.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml
from servers.tiny_pipeline import copy_of, dvc, run, stages_run
from test_train_stages import training_commands

CHAIN = ("train@sft", "train@sft_third", "train@sft_one_epoch", "train@dpo", "train@orpo", "rm")


def _lock_outs(work: Path) -> dict[str, str]:
    lock = yaml.safe_load((work / "dvc.lock").read_text())["stages"]
    return {out["path"]: out["md5"] for stage in lock.values() for out in stage.get("outs", [])}


def test_training_table_is_the_dvc_yaml_table():
    commands = training_commands()
    assert set(commands) == {"sft", "sft_third", "sft_one_epoch", "dpo", "orpo", "rm"}
    assert commands["dpo"][commands["dpo"].index("--init") + 1] == "checkpoints/sft_third"
    assert commands["rm"][commands["rm"].index("--trainer") + 1] == "rm"


@pytest.mark.slow
def test_each_checkpoint_is_one_copy_and_registered(tiny_pipeline, tmp_path):
    assert set(CHAIN) <= set(stages_run(tiny_pipeline.log))
    # a copy: `dvc checkout --relink` below changes the workspace
    pipeline = copy_of(tiny_pipeline, tmp_path / "copy")
    work, env = pipeline.work, pipeline.env
    outs = _lock_outs(work)
    assert set(outs) >= {f"checkpoints/{name}" for name in ("sft", "dpo", "orpo", "rm")}

    # One copy: each weight file in the workspace is the DVC cache's file (a link), and MLflow's
    # model version points at it instead of holding another copy.
    from janus.tracking import dvc_md5

    def linked(file: Path) -> bool:
        md5 = dvc_md5(file)
        cached = work / ".dvc/cache/files/md5" / md5[:2] / md5[2:]
        return cached.exists() and os.path.samefile(file, cached)

    checkpoints = [work / "checkpoints" / name for name in ("sft", "sft_third", "dpo", "orpo", "rm")]
    for checkpoint in checkpoints:
        assert dvc_md5(checkpoint) == outs[f"checkpoints/{checkpoint.name}"]
    # New bytes are linked as soon as the stage is committed: the weights are one file. (Here
    # sft_third trains on sft's rows with sft's params, so its weights are sft's bytes: a copy.)
    for name in ("sft", "dpo", "orpo", "rm"):
        assert linked(work / "checkpoints" / name / "model.safetensors"), name
    # DVC links only content new to its cache; files equal to an earlier output's (the same
    # tokenizer in every checkpoint) stay copies until `dvc checkout --relink` (`make demo`).
    run(dvc("checkout", "--relink", "-q", *CHAIN), work, env)
    for checkpoint in checkpoints:
        assert all(linked(file) for file in checkpoint.rglob("*") if file.is_file()), checkpoint
    assert not list((work / "mlartifacts").rglob("*.safetensors"))

    from mlflow import MlflowClient

    uri = f"sqlite:///{work / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    commit = run(["git", "rev-parse", "HEAD"], work, env)
    for name in ("rm", "dpo"):
        (version,) = client.search_model_versions(f"name='janus-{name}'")
        assert version.tags["dvc.path"] == f"checkpoints/{name}"
        assert version.tags["dvc.md5"] == outs[f"checkpoints/{name}"]  # what dvc.lock records
        assert version.tags["git.commit"] in (commit.strip() or "unknown", "unknown")
        model_id = version.source.removeprefix("models:/")
        assert {a.path for a in client.list_logged_model_artifacts(model_id)} == {"dvc_reference.json"}
    # Timings went to runtime/ (git-ignored, not in dvc.yaml), not to the DVC metrics.
    for name in ("sft", "rm"):
        metrics = json.loads((work / "metrics/train" / f"{name}.json").read_text())
        assert not [key for key in metrics if key.endswith(("_s", "_seconds", "per_second"))]
        assert "stage_wall_s" in json.loads((work / "runtime" / f"{name}.json").read_text())


@pytest.mark.slow
def test_forced_rerun_of_the_tiny_pipeline_gives_the_same_bytes_and_metrics(tiny_pipeline, tmp_path):
    pipeline = copy_of(tiny_pipeline, tmp_path / "copy")
    work, env = pipeline.work, pipeline.env
    # Every stage again, in another path, from the warm LLM cache: the same results, so the same
    # md5 of every output in dvc.lock (checkpoints included) and the same metrics.
    forced = run(dvc("repro", "-f"), work, env, timeout=3600)
    assert set(CHAIN) <= set(stages_run(forced))
    diff = json.loads(run(dvc("metrics", "diff", "--json"), work, env))
    changed = {path: sorted(keys) for path, keys in diff.items() if keys}
    assert changed == {}, json.dumps(changed, indent=1)
    assert _lock_outs(work) == _lock_outs(tiny_pipeline.work)
    status = run(["git", "status", "--porcelain", "dvc.lock"], work, env)
    assert status.strip() == ""  # and dvc.lock itself, byte for byte
