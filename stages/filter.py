"""Stage `filter` (A.1): source datasets -> instructions JSONL and metrics."""

import argparse

from janus.config import load_params
from janus.data.common import write_not_generated
from janus.data.filtering import filter_instructions
from janus.io import write_json, write_jsonl


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", required=True, help="instructions JSONL")
    parser.add_argument("--metrics", required=True, help="metrics JSON")
    args = parser.parse_args()
    params = load_params()
    if not params.generate:
        write_not_generated(args.out, args.metrics)
        return
    instructions, metrics = filter_instructions(params.filter)
    write_jsonl(args.out, instructions)
    write_json(args.metrics, metrics)


if __name__ == "__main__":
    main()
