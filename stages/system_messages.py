"""Stage `system_messages` (3.2): preference sets -> system messages JSONL."""

import argparse

from janus.config.common import load_sections
from janus.config.generate import GenerateSection
from janus.config.llm import LLMSection
from janus.config.system_messages import SystemMessagesSection
from janus.data.common import iter_preference_set_rows, write_not_generated
from janus.data.system_messages import generate_system_messages, load_examples
from janus.io import count_jsonl_rows, write_json
from janus.preflight.stage import before_stage


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--preference-sets", required=True, help="the preference_sets stage's JSONL"
    )
    parser.add_argument("--out", required=True, help="system messages JSONL")
    parser.add_argument("--metrics", required=True, help="metrics JSON")
    args = parser.parse_args()
    params = load_sections(GenerateSection, LLMSection, SystemMessagesSection)
    if not params.generate.enabled:
        write_not_generated(args.out, args.metrics)
        return
    before_stage(params, "llm.teacher")
    config = params.system_messages
    rows, dimensions = iter_preference_set_rows(args.preference_sets)
    examples = load_examples(config.examples_path, dimensions)
    metrics = generate_system_messages(
        rows,
        examples,
        config,
        params.llm.teacher,
        out=args.out,
        total=count_jsonl_rows(args.preference_sets),
    )
    write_json(args.metrics, metrics)


if __name__ == "__main__":
    main()
