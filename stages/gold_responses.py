"""Stage `gold_responses` (3.2): (system, instruction) -> the Multifaceted Collection JSONL."""

import argparse

from janus.config.common import load_sections
from janus.config.generate import GenerateSection
from janus.config.gold_responses import GoldResponsesSection
from janus.config.llm import LLMSection
from janus.data.common import write_not_generated
from janus.data.gold_responses import generate_gold_responses
from janus.io import count_jsonl_rows, iter_jsonl, write_json
from janus.preflight.stage import before_stage


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--system-messages", required=True, help="the system_messages stage's JSONL"
    )
    parser.add_argument("--out", required=True, help="the collection JSONL")
    parser.add_argument("--metrics", required=True, help="metrics JSON")
    args = parser.parse_args()
    params = load_sections(GenerateSection, GoldResponsesSection, LLMSection)
    if not params.generate.enabled:
        write_not_generated(args.out, args.metrics)
        return
    before_stage(params, "llm.teacher")
    metrics = generate_gold_responses(
        iter_jsonl(args.system_messages),
        params.gold_responses,
        params.llm.teacher,
        out=args.out,
        total=count_jsonl_rows(args.system_messages),
    )
    write_json(args.metrics, metrics)


if __name__ == "__main__":
    main()
