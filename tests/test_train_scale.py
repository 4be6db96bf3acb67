"""Any number of GPUs, one global batch: derived accumulation, the memory estimate, the launcher's
commands (accelerate's own parser reads them), the Slurm job script, and the refusals that stop a
stage before any model loads (CUDA faked by JANUS_FAKE_CUDA_DEVICES at janus.accelerators)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from test_train_checks import section
from test_train_stages import make_repo, training_commands

from janus.config.params import load_params
from janus.train.batch import gradient_accumulation
from janus.train.data import TrainingInputError
from janus.train.launch import LaunchPlan, accelerate_command, plan_launch, sbatch_script
from janus.train.memory import (
    GB,
    TrainingShape,
    ZeroSettings,
    check_fits,
    count_parameters,
    estimate,
)

REPO = Path(__file__).resolve().parents[1]
PAPER = load_params(REPO / "profiles/paper.yaml").train


@pytest.mark.parametrize(("gpus", "sft", "dpo", "rm"), [(1, 16, 16, 16), (2, 8, 8, 8), (4, 4, 4, 4), (8, 2, 2, 2)])
def test_paper_batches_on_1_2_4_8_gpus(monkeypatch, gpus, sft, dpo, rm):
    """The paper's global batches (SFT 32 = 2 x 4 x 4 A100s, DPO 16, RM 128) on any GPU count."""
    monkeypatch.setenv("JANUS_FAKE_CUDA_DEVICES", str(gpus))
    plan = plan_launch(PAPER.common)
    assert (plan.world_size, plan.cuda) == (gpus, True)
    for name, expected in (("sft", sft), ("dpo", dpo), ("rm", rm)):
        stage = getattr(PAPER, name)
        accumulation = gradient_accumulation(name, stage.global_batch_size, stage.per_device_train_batch_size, gpus)
        assert accumulation == expected
        assert stage.per_device_train_batch_size * gpus * accumulation == stage.global_batch_size


def test_processes_come_from_the_machine(monkeypatch):
    common = section().common
    monkeypatch.delenv("JANUS_FAKE_CUDA_DEVICES", raising=False)
    assert plan_launch(common) == LaunchPlan(1, 1, cuda=False)  # the CPU: one process
    two = common.model_copy(update={"processes_per_node": 2})
    assert plan_launch(two) == LaunchPlan(2, 1, cuda=False)  # CI: two gloo processes
    monkeypatch.setenv("JANUS_FAKE_CUDA_DEVICES", "1")
    with pytest.raises(TrainingInputError, match="processes_per_node: 2, but 1 CUDA device"):
        plan_launch(two)
    slurm = common.model_copy(update={"launcher": "slurm", "nodes": 2, "processes_per_node": 8})
    assert plan_launch(slurm).world_size == 16


def test_a_batch_that_does_not_divide_names_the_keys():
    with pytest.raises(TrainingInputError, match=r"train.dpo.global_batch_size 16 is not a multiple of "
                       r"train.dpo.per_device_train_batch_size 1 x 3 process\(es\)"):
        gradient_accumulation("dpo", 16, 1, 3)
    with pytest.raises(TrainingInputError, match="train.rm.global_batch_size 128 .* 8 x 32"):
        gradient_accumulation("rm", 128, 8, 32)  # 4 nodes x 8 GPUs: 8 x 32 rows > 128


def mistral_7b():
    from transformers import MistralConfig

    return MistralConfig(vocab_size=32000, hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
                         num_attention_heads=32, num_key_value_heads=8)


MISTRAL_7B_PARAMETERS = (
    2 * 32000 * 4096  # embeddings and the untied LM head
    + 32 * (2 * 4096 * 4096 + 2 * 4096 * 1024 + 3 * 4096 * 14336 + 2 * 4096)  # attention, MLP, norms
    + 4096  # final norm
)


def shape_7b(**changes) -> TrainingShape:
    values = dict(kind="sft", parameters=MISTRAL_7B_PARAMETERS, hidden_size=4096, layers=32, heads=32,
                  vocab_size=32000, micro_batch=2, max_length=8192, processes=1, bf16=True,
                  gradient_checkpointing=True, eight_bit_optimizer=False, zero=ZeroSettings(stage=3))
    return TrainingShape(**{**values, **changes})


def test_parameters_are_counted_from_the_config_without_weights():
    assert count_parameters(mistral_7b(), "sft") == MISTRAL_7B_PARAMETERS == 7_241_732_096
    # The reward model: no LM head, a one-logit score head.
    assert count_parameters(mistral_7b(), "rm") == MISTRAL_7B_PARAMETERS - 32000 * 4096 + 4096


def test_7b_full_fine_tune_on_one_80gb_gpu_needs_about_115gb():
    """ZeRO-3 bf16 with fp32 AdamW: 2 (bf16 weights) + 2 (grads) + 4 (fp32 master) + 8 (moments)
    = 16 bytes per parameter, 115.9 GB before activations."""
    one_gpu = estimate(shape_7b())
    p = MISTRAL_7B_PARAMETERS
    assert (one_gpu.weights, one_gpu.gradients, one_gpu.optimizer) == (2 * p, 2 * p, 12 * p)
    assert 115.8 * GB < one_gpu.weights + one_gpu.gradients + one_gpu.optimizer < 115.9 * GB
    # checkpointed activations: 32 layer inputs + one layer (34 bytes per token and hidden unit)
    # + fp32 logits and their gradient, for 2 x 8192 tokens
    tokens = 2 * 8192
    assert one_gpu.activations == 32 * tokens * 4096 * 2 + 34 * tokens * 4096 + 8 * tokens * 32000
    with pytest.raises(TrainingInputError) as refused:
        check_fits("sft", shape_7b(), 80 * 10**9)
    message = str(refused.value)
    assert "train.sft needs about 12" in message and "more than the GPU's 80.0 GB" in message
    # The options, each with its own estimate: 8-bit AdamW saves 6 bytes per parameter.
    assert f"adamw_bnb_8bit (8-bit AdamW): {estimate(shape_7b(eight_bit_optimizer=True)).total / GB:.1f} GB" in message
    assert "offloaded to the CPU" in message and "per_device_train_batch_size or max_length" in message


def test_sharding_offload_and_8bit_adam_by_hand():
    p = MISTRAL_7B_PARAMETERS
    four = estimate(shape_7b(processes=4))  # the paper's 4 x A100: everything sharded by 4
    assert (four.weights, four.gradients, four.optimizer) == (p / 2, p / 2, 3 * p)
    assert check_fits("sft", shape_7b(processes=4), 80 * 10**9).total < 80 * GB
    offload = estimate(shape_7b(zero=ZeroSettings(3, offload_optimizer=True, offload_param=True)))
    assert (offload.weights, offload.optimizer) == (0, 0) and offload.gradients == 2 * p
    ddp = estimate(shape_7b(zero=ZeroSettings(0), processes=8, eight_bit_optimizer=True))
    # no DeepSpeed: fp32 weights and grads (autocast), 8-bit moments, nothing sharded
    assert (ddp.weights, ddp.gradients, ddp.optimizer) == (4 * p, 4 * p, 2 * p)
    dpo = estimate(shape_7b(kind="dpo", processes=4))
    assert dpo.reference == p / 2  # the frozen reference model, bf16, sharded
    assert dpo.activations > four.activations  # chosen + rejected rows


def test_deepspeed_json_settings_are_read(tmp_path):
    assert ZeroSettings.from_file(REPO / "configs/deepspeed/zero3.json") == ZeroSettings(3, False, False)
    offload = tmp_path / "offload.json"
    offload.write_text('{"zero_optimization": {"stage": 3, "offload_optimizer": {"device": "cpu"}}}')
    assert ZeroSettings.from_file(offload) == ZeroSettings(3, True, False)


def _parsed(command: list[str]):
    from accelerate.commands.launch import launch_command_parser

    assert command[1:3] == ["-m", "accelerate.commands.launch"]
    return launch_command_parser().parse_args(command[3:])


def test_launch_commands_accelerate_accepts():
    """The counts go on the command line; accelerate's own parser reads what janus writes."""
    zero3 = REPO / "configs/accelerate/deepspeed_zero3.yaml"
    assert "num_processes" not in yaml.safe_load(zero3.read_text())  # nothing fixed in the file
    args = ["sft", "--trainer", "sft"]
    one_node = _parsed(accelerate_command(zero3, LaunchPlan(8, 1, True), "stages/train.py", args, port=29511))
    assert (one_node.num_processes, one_node.num_machines, one_node.machine_rank) == (8, 1, 0)
    assert one_node.config_file == str(zero3) and one_node.training_script == "stages/train.py"
    assert one_node.training_script_args == args
    two_nodes = accelerate_command(zero3, LaunchPlan(8, 2, True), "stages/train.py", args,
                                   machine_rank="1", main_ip="10.0.0.1", port=29500)
    parsed = _parsed(two_nodes)
    assert (parsed.num_processes, parsed.num_machines, parsed.machine_rank) == (16, 2, 1)
    assert (parsed.main_process_ip, parsed.main_process_port) == ("10.0.0.1", 29500)
    assert parsed.deepspeed_multinode_launcher == "standard"  # torchrun rendezvous, not pdsh
    cpu = _parsed(accelerate_command(None, LaunchPlan(2, 1, False), "stages/train.py", args, port=29512))
    assert cpu.multi_gpu and not cpu.cpu and cpu.num_processes == 2  # torchrun; --cpu starts one


def test_sbatch_script_for_two_nodes_of_eight(tmp_path):
    zero3 = REPO / "configs/accelerate/deepspeed_zero3.yaml"
    args = training_commands()["sft"][2:]
    text = sbatch_script("sft", zero3, LaunchPlan(8, 2, True), "stages/train.py", args, Path("/shared/janus"),
                         Path("/shared/janus/runs/sft/slurm"))
    lines = text.splitlines()
    assert lines[0] == "#!/bin/bash"
    for directive in ("--nodes=2", "--ntasks-per-node=1", "--gpus-per-node=8",
                      "--output=/shared/janus/runs/sft/slurm/slurm-%j.log"):
        assert f"#SBATCH {directive}" in lines
    assert "cd /shared/janus" in lines
    assert 'export JANUS_MAIN_PROCESS_IP="$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)"' in lines
    (srun,) = [line for line in lines if line.startswith("srun ")]
    assert srun.startswith("srun --nodes=2 --ntasks-per-node=1 --kill-on-bad-exit=1 bash -c ")
    # What each node's bash runs: the node rank and the first node's address expand there.
    import shlex

    node = shlex.split(shlex.split(srun)[-1])
    assert node[0] == "exec"
    node_command = node[1:]
    parsed = _parsed([arg.replace("$SLURM_NODEID", "1").replace("$JANUS_MAIN_PROCESS_IP", "10.0.0.1")
                      for arg in node_command])
    assert (parsed.num_processes, parsed.num_machines, parsed.machine_rank) == (16, 2, 1)
    assert parsed.main_process_ip == "10.0.0.1" and parsed.deepspeed_multinode_launcher == "standard"
    assert parsed.training_script_args == args
    assert '--machine_rank "$SLURM_NODEID"' in srun and '--main_process_ip "$JANUS_MAIN_PROCESS_IP"' in srun
    # bash itself accepts the script
    script = tmp_path / "job.sbatch"
    script.write_text(text)
    subprocess.run(["bash", "-n", str(script)], check=True)


def _stage(repo: Path, params: dict, env: dict[str, str]) -> subprocess.CompletedProcess:
    (repo / "params.yaml").write_text(yaml.safe_dump(params))
    return subprocess.run(
        [sys.executable, str(REPO / "stages/train.py"), *training_commands()["sft"][2:]],
        cwd=repo, capture_output=True, text=True, timeout=300, env=env,
    )


def test_refusals_before_any_model_loads(tmp_path, tiny_model_dir):
    """A CPU torch build on a (faked) CUDA machine, and a batch that does not divide over the
    processes: the stage command stops at once, naming what to do, with nothing written."""
    import os

    make_repo(tmp_path, tiny_model_dir)
    params = yaml.safe_load((REPO / "profiles/tiny.yaml").read_text())
    env = {k: v for k, v in os.environ.items() if k not in ("LOCAL_RANK", "RANK", "WORLD_SIZE")}

    cuda = _stage(tmp_path, params, {**env, "JANUS_FAKE_CUDA_DEVICES": "2"})
    assert cuda.returncode == 1
    last = cuda.stderr.strip().splitlines()[-1]
    assert last.startswith("sft: training: 2 GPU(s) visible, but torch ") and "is a CPU build" in last
    assert "Run `make setup-gpu`" in last

    params["train"]["common"]["processes_per_node"] = 2
    params["train"]["sft"].update({"per_device_train_batch_size": 1, "global_batch_size": 3})
    odd = _stage(tmp_path, params, env)
    assert odd.returncode == 1
    assert "train.sft.global_batch_size 3 is not a multiple of train.sft.per_device_train_batch_size 1 x 2" \
        in odd.stderr.strip().splitlines()[-1]
    assert not (tmp_path / "runs").exists() and not (tmp_path / "checkpoints").exists()


def test_8bit_adam_on_cuda_without_bitsandbytes_is_refused():
    import importlib.util

    from janus.train.device import DeviceSettings, check_optimizer

    gpu = DeviceSettings(cuda=True, bf16=True, attn_implementation="sdpa", use_liger_kernel=False,
                         deepspeed_config=None)
    if importlib.util.find_spec("bitsandbytes"):
        check_optimizer("sft", PAPER.sft, gpu)  # installed: accepted
    else:
        with pytest.raises(TrainingInputError, match=r"adamw_bnb_8bit needs bitsandbytes.*`make setup-gpu`"):
            check_optimizer("sft", PAPER.sft, gpu)
    assert PAPER.sft.optim == PAPER.dpo.optim == PAPER.orpo.optim == "adamw_bnb_8bit"  # D.1
    assert PAPER.rm.optim == "adamw_torch"  # E.2: AdamW


def test_training_stages_depend_on_the_launch_configs_and_the_environment_lock():
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    for deps in (stages["train"]["do"]["deps"], stages["rm"]["deps"]):
        assert {"configs/accelerate", "configs/deepspeed", "${environment.lock_file}"} <= set(deps)
