"""Stage `toxicity` (5.3, F.4, Table 4): toxicity of every generation, perplexity, dist-n ->
per-model score files and metrics, keyed by model: avg_max_toxicity, toxicity_probability,
perplexity, dist_2, dist_3, counts (janus.evaluate.toxicity.scoring)."""

import argparse

from janus.config.common import load_sections
from janus.config.llm import LLMSection
from janus.config.toxicity import ToxicitySection
from janus.evaluate.toxicity.scoring import run_toxicity
from janus.preflight.stage import before_stage


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--generations", required=True, help="directory of <model>.jsonl")
    parser.add_argument("--out", required=True, help="directory of per-model score files")
    parser.add_argument("--metrics", required=True, help="metrics JSON, keyed by model")
    parser.add_argument("--scorer-metrics", required=True, help="the scorer's own metrics JSON")
    parser.add_argument("--perplexity-model", required=True, help="the perplexity_model stage's checkpoint")
    args = parser.parse_args()
    params = load_sections(LLMSection, ToxicitySection)
    if "llm" in (params.toxicity.scorer, *params.toxicity.extra_scorers):
        before_stage(params, "llm.judge")
    run_toxicity(
        params.toxicity,
        params.llm.judge,
        args.generations,
        args.out,
        args.metrics,
        args.scorer_metrics,
        perplexity_model_dir=args.perplexity_model,
    )


if __name__ == "__main__":
    main()
