"""More than one training process, for real, on the CPU (gloo).

`dvc repro` of train@sft and train@dpo with `processes_per_node: 2` runs each stage as two DDP
ranks, started by the launcher a GPU run takes (`accelerate launch`, torchrun's rendezvous). Both
ranks train; rank 0 alone writes the checkpoint, metrics, plot and one MLflow run; and the result
is the one-process run with twice the gradient accumulation (same global batch): the same loss
curve and weights within float tolerance (the all-reduce sums gradients in another order).

The Slurm path runs its generated job script through stand-ins for sbatch, srun and scontrol
(tests/servers/fake_slurm/): two "nodes" on this machine, one process each, the rendezvous at the
first node, as on a cluster with shared storage.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file
from servers.tiny_pipeline import make_project, project_env
from servers.tiny_pipeline import run as run_command
from test_train_stages import make_repo, spec, training_commands

from janus.config.tracking import TrackingSection
from janus.config.train import TrainSection
from janus.train.launch import free_port
from janus.train.run import run_training_stage

REPO = Path(__file__).resolve().parents[1]
FAKE_SLURM = REPO / "tests/servers/fake_slurm"
STAGES = ("sft", "dpo")
# Two ranks all-reduce (sum) their gradients, one rank sums the same rows in another order.
LOSS_RTOL, WEIGHT_ATOL = 1e-5, 1e-6


def two_process_params() -> dict:
    params = yaml.safe_load((REPO / "profiles/tiny.yaml").read_text())
    params["train"]["common"].update({"processes_per_node": 2, "max_length": 64, "save_strategy": "no"})
    for name in STAGES:  # micro-batch 1 x 2 processes x accumulation 2 = 4 rows per step
        params["train"][name].update({"per_device_train_batch_size": 1, "global_batch_size": 4, "max_steps": 2})
    return params


def with_start_checkpoint(root: Path) -> None:
    """dpo starts from checkpoints/sft_third: the base model stands in for it."""
    shutil.copytree(root / "models/base", root / "checkpoints/sft_third")


def weights(path: Path) -> dict[str, torch.Tensor]:
    return load_file(path / "model.safetensors")


def assert_same_training(one: Path, two: Path, stage: str) -> None:
    curve_one = json.loads((one / "plots/train" / f"{stage}.json").read_text())
    curve_two = json.loads((two / "plots/train" / f"{stage}.json").read_text())
    assert [row["step"] for row in curve_one] == [row["step"] for row in curve_two] == [1, 2]
    for a, b in zip(curve_one, curve_two, strict=True):
        assert b["loss"] == pytest.approx(a["loss"], rel=LOSS_RTOL), stage
    w1, w2 = weights(one / "checkpoints" / stage), weights(two / "checkpoints" / stage)
    assert w1.keys() == w2.keys()
    for key in w1:
        torch.testing.assert_close(w2[key], w1[key], atol=WEIGHT_ATOL, rtol=0, msg=f"{stage}: {key}")
    base = weights(one / "models/base")
    assert any(not torch.equal(w1[key], base[key]) for key in w1)  # it did train


@pytest.mark.slow
def test_two_processes_under_dvc_repro_train_like_one_with_twice_the_accumulation(tmp_path, tiny_model_dir):
    env = project_env(tmp_path)
    work = tmp_path / "two"
    make_repo(work, tiny_model_dir)  # models/base and data/pairs, without the upstream stages
    make_project(work, env)
    (work / "params.yaml").write_text(yaml.safe_dump(two_process_params()))
    with_start_checkpoint(work)
    output = run_command([sys.executable, "-m", "dvc", "repro", "-s", *(f"train@{s}" for s in STAGES)], work, env)

    for stage in STAGES:
        # both ranks trained, with accumulation 2; rank 0 alone wrote the outputs
        for rank in (0, 1):
            assert f"{stage}: rank {rank} of 2 trained (2 step(s), accumulation 2)" in output, output[-4000:]
        assert output.count(f"{stage}: checkpoint, metrics and plot written") == 1
        assert not (work / "checkpoints" / f"{stage}.partial").exists()
        metrics = json.loads((work / "metrics/train" / f"{stage}.json").read_text())
        assert metrics["global_step"] == 2
    lock = yaml.safe_load((work / "dvc.lock").read_text())["stages"]
    assert {f"train@{s}" for s in STAGES} <= set(lock)

    from mlflow import MlflowClient

    uri = f"sqlite:///{work / 'mlflow.db'}"
    runs = MlflowClient(tracking_uri=uri).search_runs(
        [e.experiment_id for e in MlflowClient(tracking_uri=uri).search_experiments()]
    )
    assert sorted(run.data.params.get("stage") for run in runs) == sorted(STAGES)  # one run each
    for run in runs:
        assert run.data.params["processes"] == "2" and run.data.params["gradient_accumulation_steps"] == "2"

    # The same stages in one process: accumulation 4, the same 4 rows per optimizer step.
    one = tmp_path / "one"
    make_repo(one, tiny_model_dir)
    with_start_checkpoint(one)
    params = two_process_params()
    params["train"]["common"]["processes_per_node"] = 1
    section = TrainSection.model_validate(params["train"])
    for stage in STAGES:
        metrics = run_training_stage(spec(stage, one), section, TrackingSection(enabled=False))
        assert metrics["global_step"] == 2
        assert_same_training(one, work, stage)


def fake_slurm_env(tmp_path: Path) -> dict[str, str]:
    env = project_env(tmp_path)
    env["PATH"] = f"{FAKE_SLURM}{os.pathsep}{env['PATH']}"
    env["JANUS_MAIN_PROCESS_PORT"] = str(free_port())
    env["JANUS_SBATCH_ARGS"] = "--partition gpu --time 10:00"
    env["FAKE_SLURM_LOG"] = str(tmp_path / "sbatch-calls.txt")
    return env


@pytest.mark.slow
def test_slurm_job_over_two_nodes_writes_the_outputs_once(tmp_path, tiny_model_dir):
    """`launcher: slurm`: the stage submits its job (sbatch --wait) and returns when it ends; the
    job's two nodes rendezvous and train as ranks 0 and 1; rank 0 writes the outputs."""
    work = tmp_path / "repo"
    make_repo(work, tiny_model_dir)
    params = two_process_params()
    params["train"]["common"].update({"launcher": "slurm", "nodes": 2, "processes_per_node": 1})
    params["tracking"]["enabled"] = False
    (work / "params.yaml").write_text(yaml.safe_dump(params))
    env = fake_slurm_env(tmp_path)
    done = subprocess.run([sys.executable, str(REPO / "stages/train.py"), *training_commands()["sft"][2:]],
                          cwd=work, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-4000:]

    (call,) = Path(env["FAKE_SLURM_LOG"]).read_text().splitlines()
    assert call == f"sbatch --wait --partition gpu --time 10:00 {work / 'runs/sft/slurm/job.sbatch'}"
    (job_log,) = (work / "runs/sft/slurm").glob("slurm-*.log")
    text = job_log.read_text()
    for rank in (0, 1):
        assert f"sft: rank {rank} of 2 trained (2 step(s), accumulation 2)" in text, text[-4000:]
    assert text.count("sft: checkpoint, metrics and plot written") == 1
    assert json.loads((work / "metrics/train/sft.json").read_text())["global_step"] == 2
    assert (work / "checkpoints/sft/model.safetensors").exists()

    # A failing job fails the stage, naming where its log is.
    env["FAKE_SLURM_FAIL"] = "1"
    failed = subprocess.run([sys.executable, str(REPO / "stages/train.py"), *training_commands()["sft"][2:]],
                            cwd=work, env=env, capture_output=True, text=True, timeout=300)
    assert failed.returncode == 1
    assert failed.stderr.strip().splitlines()[-1].startswith("sft: the Slurm job failed (exit 3); its log is in")
