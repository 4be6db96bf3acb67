"""A training stage: one row of dvc.yaml's `train` table (or the reward model's stage).

    python stages/train.py <name> --trainer sft|dpo|orpo|rm --data DIR --init CHECKPOINT
        --out CHECKPOINT --metrics FILE --plot FILE

The trainer's settings are params `train.<name>` (passed through to TRL's config class) and
`train.common`. The same command trains on the CPU, one GPU, all GPUs of a node under
`accelerate launch`, or several nodes as a Slurm job (see janus.train.launch).
"""

import argparse
import sys
from pathlib import Path

from janus.config.common import load_sections
from janus.config.tracking import TrackingSection
from janus.config.train import TrainSection
from janus.preflight.stage import before_stage
from janus.train.common import KINDS, StageSpec
from janus.train.data import TrainingInputError
from janus.train.launch import run_stage


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("name", help="the stage: its params section is train.<name>")
    parser.add_argument("--trainer", choices=KINDS, required=True)
    parser.add_argument("--data", required=True, help="build_pairs folder with train.jsonl / eval.jsonl")
    parser.add_argument("--init", required=True, help="the checkpoint training starts from")
    parser.add_argument("--out", required=True, help="the final checkpoint folder")
    parser.add_argument("--metrics", required=True)
    parser.add_argument("--plot", required=True)
    return parser


def stage_spec(argv: list[str], root: Path) -> StageSpec:
    args = build_parser().parse_args(argv)
    return StageSpec.from_args(
        root, args.name, args.trainer, data=args.data, init=args.init,
        output=args.out, metrics=args.metrics, plot=args.plot,
    )


def main() -> None:
    args = build_parser().parse_args()
    params = load_sections(TrackingSection, TrainSection)
    before_stage(params, "train.common.accelerate_config")  # before a relaunch
    try:
        spec = stage_spec(sys.argv[1:], Path.cwd())
        run_stage(spec, params.train, params.tracking, __file__, sys.argv[1:])
    except TrainingInputError as error:
        sys.exit(f"{args.name}: {error}")


if __name__ == "__main__":
    main()
