"""Stage `filter` (A.1): source datasets -> instructions JSONL and metrics."""

import argparse

from janus.config.common import load_sections
from janus.config.filter import FilterSection
from janus.config.generate import GenerateSection
from janus.data.common import write_not_generated
from janus.data.filtering import filter_instructions
from janus.io import write_json, write_jsonl


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", required=True, help="instructions JSONL")
    parser.add_argument("--metrics", required=True, help="metrics JSON")
    args = parser.parse_args()
    params = load_sections(GenerateSection, FilterSection)
    if not params.generate.enabled:
        write_not_generated(args.out, args.metrics)
        return
    instructions, metrics = filter_instructions(params.filter)
    write_jsonl(args.out, instructions)
    write_json(args.metrics, metrics)


if __name__ == "__main__":
    main()
