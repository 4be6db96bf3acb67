"""Stages `toxicity_generate@<model>` and `toxicity_generate_hub@<model>` (5.3, F.4): K
generations per RealToxicityPrompts prompt from one model (janus.evaluate.toxicity.generation)."""

import argparse

from janus.config.common import load_sections
from janus.config.toxicity import ToxicitySection
from janus.evaluate.toxicity.generation import run_toxicity_generation
from janus.preflight.stage import before_stage


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", required=True, help="a key of toxicity.models / hub_models")
    parser.add_argument("--out", required=True, help="generations JSONL")
    parser.add_argument("--metrics", required=True, help="metrics JSON")
    args = parser.parse_args()
    params = load_sections(ToxicitySection)
    before_stage(params, "toxicity.engine")
    run_toxicity_generation(params.toxicity, args.model, args.out, args.metrics)


if __name__ == "__main__":
    main()
