"""Stage `expand_seeds` (A.2): Table 6 keywords -> seed preference sets JSONL."""

import argparse

from janus.config.common import load_sections
from janus.config.expand_seeds import ExpandSeedsSection
from janus.config.generate import GenerateSection
from janus.config.llm import LLMSection
from janus.data.common import write_not_generated
from janus.data.seeds import expand_seeds
from janus.data.taxonomy import load_taxonomy
from janus.io import write_json, write_jsonl
from janus.preflight.stage import before_stage


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", required=True, help="seed preference sets JSONL")
    parser.add_argument("--metrics", required=True, help="metrics JSON")
    args = parser.parse_args()
    params = load_sections(GenerateSection, ExpandSeedsSection, LLMSection)
    if not params.generate.enabled:
        write_not_generated(args.out, args.metrics)
        return
    before_stage(params, "llm.teacher")
    taxonomy = load_taxonomy(params.expand_seeds.taxonomy_path)
    seed_sets, metrics = expand_seeds(taxonomy, params.expand_seeds, params.llm.teacher)
    write_jsonl(args.out, seed_sets)
    write_json(args.metrics, metrics)


if __name__ == "__main__":
    main()
