"""One stage command for one CPU, one GPU, all the GPUs of a node, or several nodes under Slurm.

`python stages/train.py <stage> ...` is the DVC command everywhere. Before anything loads it
refuses a CPU torch build on a GPU machine, works out the processes (train.common:
`processes_per_node` (auto: the CUDA devices visible, 1 on the CPU) x `nodes`) and checks that
the stage's global batch divides over them. Then:
- one process (and no accelerate config on CUDA): trains in this process;
- several processes on this machine, or an accelerate config on CUDA: re-execs itself under
  `accelerate launch` with the process counts on the command line (the config file names the
  distribution only: DeepSpeed ZeRO-3 or DDP). On the CPU that is torchrun's rendezvous with gloo,
  the same launcher a GPU run takes;
- `launcher: slurm`: writes an sbatch script (runs/<stage>/slurm.sbatch) that runs one
  `accelerate launch` per node (torchrun rendezvous at the first node, DeepSpeed's `standard`
  multi-node launcher), submits it with `sbatch --wait` and returns when the job ends. Every
  node works in this repository on shared storage; rank 0 alone writes the DVC outputs, metrics
  and the MLflow run. Site flags (partition, account, time) come from JANUS_SBATCH_ARGS.
"""

from __future__ import annotations

import os
import shlex
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from janus.accelerators import GPUEnvironmentError, cuda_device_count, require_gpu_environment
from janus.config.tracking import TrackingSection
from janus.config.train import TrainCommon, TrainSection
from janus.io import atomic_open
from janus.logging_utils import get_logger
from janus.train.batch import gradient_accumulation
from janus.train.common import StageSpec
from janus.train.data import TrainingInputError

log = get_logger(__name__)

CHILD_ENV = "JANUS_ACCELERATE_CHILD"  # set in the processes the launcher starts
SBATCH_ARGS_ENV = "JANUS_SBATCH_ARGS"  # e.g. "--partition gpu --account proj --time 2-00:00:00"
MAIN_PORT_ENV = "JANUS_MAIN_PROCESS_PORT"  # Slurm rendezvous port (default 29500)
MAIN_IP_VAR = "JANUS_MAIN_PROCESS_IP"  # set in the sbatch script: the job's first node


@dataclass(frozen=True)
class LaunchPlan:
    processes_per_node: int
    nodes: int
    cuda: bool

    @property
    def world_size(self) -> int:
        return self.processes_per_node * self.nodes


def is_launched_process() -> bool:
    """One of the processes a launcher started (accelerate launch, torchrun, the Slurm job)."""
    return bool(os.environ.get(CHILD_ENV)) or "LOCAL_RANK" in os.environ


def refuse_cpu_torch_on_gpu_machine() -> None:
    """GPUs with the CPU torch build: stop now, saying to run `make setup-gpu`."""
    try:
        require_gpu_environment("training")
    except GPUEnvironmentError as error:
        raise TrainingInputError(str(error)) from None


def plan_launch(common: TrainCommon) -> LaunchPlan:
    """Processes per node and nodes for this run (Slurm: as params ask; the job allocates them)."""
    if common.launcher == "slurm":
        return LaunchPlan(int(common.processes_per_node), common.nodes, cuda=True)
    gpus = cuda_device_count()
    if common.processes_per_node == "auto":
        return LaunchPlan(gpus or 1, 1, cuda=gpus > 0)
    if gpus and common.processes_per_node > gpus:
        raise TrainingInputError(
            f"train.common.processes_per_node: {common.processes_per_node}, but {gpus} CUDA device(s) "
            "are visible; use auto"
        )
    return LaunchPlan(common.processes_per_node, 1, cuda=gpus > 0)


def accelerate_config(common: TrainCommon, plan: LaunchPlan, root: Path) -> Path | None:
    """The accelerate config a CUDA run uses (none on the CPU: DeepSpeed and NCCL need CUDA)."""
    if not common.accelerate_config or not plan.cuda:
        if common.accelerate_config and plan.world_size > 1:
            log.info("no CUDA: %s is not used; %d gloo processes", common.accelerate_config, plan.world_size)
        return None
    path = root / common.accelerate_config
    if not path.exists():
        raise TrainingInputError(f"train.common.accelerate_config: {path} not found")
    return path


def _uses_deepspeed(config: Path) -> bool:
    return (yaml.safe_load(config.read_text()) or {}).get("distributed_type") == "DEEPSPEED"


def accelerate_command(
    config: Path | None,
    plan: LaunchPlan,
    script: str,
    args: list[str],
    *,
    machine_rank: str = "0",
    main_ip: str | None = None,
    port: str | int,
) -> list[str]:
    """`accelerate launch` with every process count explicit (the config file holds none)."""
    command = [sys.executable, "-m", "accelerate.commands.launch"]
    if config is not None:
        command += ["--config_file", str(config)]
        if plan.nodes > 1 and _uses_deepspeed(config):
            # torchrun's rendezvous on every node, not DeepSpeed's pdsh launcher from one
            command += ["--deepspeed_multinode_launcher", "standard"]
    else:
        # DDP through torchrun's elastic launcher: NCCL on GPUs, gloo on the CPU (the trainer
        # runs with use_cpu there); `accelerate launch --cpu` would start one process only.
        command += ["--multi_gpu", "--mixed_precision", "no", "--dynamo_backend", "no"]
    command += [
        "--num_processes", str(plan.world_size), "--num_machines", str(plan.nodes),
        "--machine_rank", machine_rank, "--main_process_port", str(port),
    ]
    if main_ip is not None:
        command += ["--main_process_ip", main_ip]
    return [*command, script, *args]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _shell_words(words: list[str], variables: dict[str, str]) -> str:
    """A command line for bash: each word quoted, placeholders as "$VARIABLE" (expanded per node)."""
    return " ".join(variables[word] if word in variables else shlex.quote(word) for word in words)


def sbatch_script(
    name: str, config: Path | None, plan: LaunchPlan, script: str, args: list[str], root: Path, log_dir: Path
) -> str:
    """The Slurm job of one stage: one task per node, each running `accelerate launch` for its
    GPUs; the first node is the rendezvous. Every node works in `root` (shared storage)."""
    port = os.environ.get(MAIN_PORT_ENV, "29500")
    rank, ip = "@NODE_RANK@", "@MAIN_IP@"
    launch = accelerate_command(config, plan, script, args, machine_rank=rank, main_ip=ip, port=port)
    node_command = _shell_words(launch, {rank: '"$SLURM_NODEID"', ip: f'"${MAIN_IP_VAR}"'})
    lines = [
        "#!/bin/bash",
        f"#SBATCH --job-name=janus-{name}",
        f"#SBATCH --nodes={plan.nodes}",
        "#SBATCH --ntasks-per-node=1",
        f"#SBATCH --gpus-per-node={plan.processes_per_node}",
        f"#SBATCH --output={log_dir}/slurm-%j.log",
        "# Written by janus.train.launch for `dvc repro`, which waits on it (sbatch --wait).",
        "set -euo pipefail",
        f"cd {shlex.quote(str(root))}",
        f'export {MAIN_IP_VAR}="$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)"',
        f"export {CHILD_ENV}=1",
        f"srun --nodes={plan.nodes} --ntasks-per-node=1 --kill-on-bad-exit=1 bash -c {shlex.quote('exec ' + node_command)}",
        "",
    ]
    return "\n".join(lines)


def submit_slurm(spec: StageSpec, config: Path | None, plan: LaunchPlan, script: str, args: list[str]) -> None:
    """Submit the stage as one Slurm job and wait for it; its rank 0 writes the outputs."""
    log_dir = spec.runs / "slurm"
    job = log_dir / "job.sbatch"
    with atomic_open(job) as handle:
        handle.write(sbatch_script(spec.name, config, plan, script, args, spec.root, log_dir))
    command = ["sbatch", "--wait", *shlex.split(os.environ.get(SBATCH_ARGS_ENV, "")), str(job)]
    log.info("%s: submitting %d node(s) x %d GPU(s): %s", spec.name, plan.nodes, plan.processes_per_node,
             shlex.join(command))
    try:
        result = subprocess.run(command, cwd=spec.root)
    except FileNotFoundError:
        raise TrainingInputError("train.common.launcher: slurm, but sbatch is not on PATH") from None
    if result.returncode:
        raise TrainingInputError(f"the Slurm job failed (exit {result.returncode}); its log is in {log_dir}")
    for path in (spec.output, spec.metrics, spec.plot):
        if not path.exists():
            raise TrainingInputError(f"the Slurm job ended without writing {path} (shared storage?)")


def run_stage(
    spec: StageSpec, section: TrainSection, tracking: TrackingSection, script: str, args: list[str]
) -> dict[str, Any] | None:
    """The stage command: check, then train here, re-exec under `accelerate launch`, or submit."""
    from janus.train.run import run_training_stage, stage_section

    if is_launched_process():
        return run_training_stage(spec, section, tracking)
    refuse_cpu_torch_on_gpu_machine()
    common = section.common
    plan = plan_launch(common)
    stage = stage_section(section, spec)
    gradient_accumulation(spec.name, stage.global_batch_size, stage.per_device_train_batch_size, plan.world_size)
    config = accelerate_config(common, plan, spec.root)
    if common.launcher == "slurm":
        submit_slurm(spec, config, plan, script, args)
        return None
    if plan.world_size == 1 and config is None:
        return run_training_stage(spec, section, tracking)
    command = accelerate_command(config, plan, script, args, port=free_port())
    log.info("%s: %d process(es) under accelerate: %s", spec.name, plan.world_size, shlex.join(command))
    sys.stdout.flush()
    sys.stderr.flush()
    os.execvpe(command[0], command, {**os.environ, CHILD_ENV: "1"})
    return None  # not reached
