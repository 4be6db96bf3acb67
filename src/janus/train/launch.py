"""One stage command for one CPU, one GPU, several GPUs or nodes.

`python stages/train.py <stage>` is the DVC command everywhere. When
`train.common.accelerate_config` names an `accelerate launch` config and CUDA is present, the
script re-execs itself under `accelerate launch --config_file <config>` (DeepSpeed ZeRO-3 or
multi-GPU DDP); extra launcher flags for multi-node runs (e.g. `--machine_rank 1
--main_process_ip 10.0.0.1`) come from the JANUS_ACCELERATE_ARGS environment variable, so params
(and dvc.lock) stay the same on every node. Without CUDA, or with no config, the stage trains in
this process.
"""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path

from janus.config.train import TrainCommon
from janus.logging_utils import get_logger
from janus.train.data import TrainingInputError

log = get_logger(__name__)

CHILD_ENV = "JANUS_ACCELERATE_CHILD"
EXTRA_ARGS_ENV = "JANUS_ACCELERATE_ARGS"


def launch_command(config: Path, script: str, args: list[str]) -> list[str]:
    extra = shlex.split(os.environ.get(EXTRA_ARGS_ENV, ""))
    return [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(config), *extra, script, *args]


def relaunch_if_configured(common: TrainCommon, script: str, args: list[str], cuda: bool | None = None) -> None:
    """Replace this process with `accelerate launch ...` when configured; return otherwise."""
    if not common.accelerate_config:
        return
    if os.environ.get(CHILD_ENV) or "LOCAL_RANK" in os.environ:
        return  # already one of the launched processes
    config = Path(common.accelerate_config)
    if not config.exists():
        raise TrainingInputError(f"train.common.accelerate_config: {config} not found")
    if cuda is None:
        import torch

        cuda = torch.cuda.is_available()
    if not cuda:
        log.info("no CUDA: %s is not used; training in this process on the CPU", config)
        return
    command = launch_command(config, script, args)
    log.info("re-executing under accelerate: %s", shlex.join(command))
    os.execvpe(command[0], command, {**os.environ, CHILD_ENV: "1"})
