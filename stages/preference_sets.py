"""Stage `preference_sets` (3.2): instructions x seed sets -> preference sets JSONL."""

import argparse

from janus.config.common import load_sections
from janus.config.expand_seeds import ExpandSeedsSection
from janus.config.generate import GenerateSection
from janus.config.llm import LLMSection
from janus.config.preference_sets import PreferenceSetsSection
from janus.data.common import read_preference_set_rows, write_not_generated
from janus.data.preference_sets import generate_preference_sets
from janus.data.taxonomy import load_taxonomy
from janus.io import count_jsonl_rows, iter_jsonl, write_json
from janus.preflight.stage import before_stage


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--instructions", required=True, help="the filter stage's JSONL")
    parser.add_argument("--seed-preferences", required=True, help="the expand_seeds stage's JSONL")
    parser.add_argument("--out", required=True, help="preference sets JSONL")
    parser.add_argument("--metrics", required=True, help="metrics JSON")
    args = parser.parse_args()
    params = load_sections(GenerateSection, ExpandSeedsSection, LLMSection, PreferenceSetsSection)
    if not params.generate.enabled:
        write_not_generated(args.out, args.metrics)
        return
    before_stage(params, "llm.teacher")
    taxonomy = load_taxonomy(params.expand_seeds.taxonomy_path)
    seed_sets, _ = read_preference_set_rows(args.seed_preferences, taxonomy.keys)
    metrics = generate_preference_sets(
        iter_jsonl(args.instructions),
        seed_sets,
        taxonomy,
        params.preference_sets,
        params.llm.teacher,
        out=args.out,
        total=count_jsonl_rows(args.instructions),
    )
    write_json(args.metrics, metrics)


if __name__ == "__main__":
    main()
