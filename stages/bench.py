"""Stage `bench`: the Multifaceted Bench and its train-test ROUGE-L."""

import argparse
from pathlib import Path

from janus.config.bench import BenchSection
from janus.config.common import load_sections
from janus.config.expand_seeds import ExpandSeedsSection
from janus.config.gold_responses import GoldResponsesSection
from janus.config.llm import LLMSection
from janus.config.preference_sets import PreferenceSetsSection
from janus.config.system_messages import SystemMessagesSection
from janus.evaluate.bench.build import BenchInputs, build_bench
from janus.io import write_json, write_jsonl
from janus.preflight.stage import before_stage


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--instructions", required=True, help="the filter stage's JSONL")
    parser.add_argument("--collection", required=True, help="the gold_responses stage's JSONL")
    parser.add_argument("--seed-preferences", required=True, help="the expand_seeds stage's JSONL")
    parser.add_argument("--out", required=True, help="bench JSONL")
    parser.add_argument("--train-test-rouge", required=True, help="plot data JSON")
    parser.add_argument("--metrics", required=True, help="metrics JSON")
    args = parser.parse_args()
    params = load_sections(BenchSection, ExpandSeedsSection, GoldResponsesSection, LLMSection, PreferenceSetsSection, SystemMessagesSection)
    if params.bench.published is None:  # building a bench asks the teacher
        before_stage(params, "llm.teacher")
    inputs = BenchInputs(
        training_instructions=(Path(args.instructions), Path(args.collection)),
        collection=Path(args.collection),
        seed_preferences=Path(args.seed_preferences),
        taxonomy=Path(params.expand_seeds.taxonomy_path),
        system_message_examples=Path(params.system_messages.examples_path),
    )
    rows, similarity, metrics = build_bench(params, inputs)
    write_jsonl(args.out, rows)
    write_json(args.train_test_rouge, similarity)
    write_json(args.metrics, metrics)


if __name__ == "__main__":
    main()
