"""Stage `helpfulness@<benchmark>` (5.2, F.3, Table 3): every model in helpfulness.models answers
the benchmark's prompts; answers in the tool's own format under --out, counts in --metrics."""

import argparse

from janus.config.common import load_sections
from janus.config.helpfulness import HelpfulnessSection
from janus.config.infer import InferSection
from janus.evaluate.helpfulness_bench import run_helpfulness
from janus.preflight.stage import answering_keys, before_stage


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--benchmark", required=True, help="a key of helpfulness.benchmarks")
    parser.add_argument("--out", required=True, help="the benchmark's answer directory")
    parser.add_argument("--metrics", required=True, help="the stage's metrics file")
    args = parser.parse_args()
    params = load_sections(HelpfulnessSection, InferSection)
    if params.helpfulness is None:
        raise SystemExit("params have no helpfulness section")
    before_stage(params, *answering_keys(params, params.helpfulness.models, "helpfulness.engine"))
    run_helpfulness(params.infer, params.helpfulness, args.benchmark, args.out, args.metrics)


if __name__ == "__main__":
    main()
