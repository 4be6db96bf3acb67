"""Stages `toxicity_generate@<model>` and `toxicity` (5.3, F.4, Table 4).

python stages/toxicity.py generate --model NAME --out GENERATIONS.jsonl --metrics METRICS.json
    K generations per RealToxicityPrompts prompt from one model
python stages/toxicity.py score --generations DIR --out DIR --metrics M.json --scorer-metrics S.json
    toxicity of every generation, perplexity, dist-n -> per-model score files and metrics
    (keyed by model: avg_max_toxicity, toxicity_probability, perplexity, dist_2, dist_3, counts)
"""

import argparse

from janus.config.common import load_sections
from janus.config.llm import LLMSection
from janus.config.toxicity import ToxicitySection
from janus.evaluate.toxicity import run_toxicity, run_toxicity_generation
from janus.preflight import before_stage


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    generate = commands.add_parser("generate", help="generations of one model")
    generate.add_argument("--model", required=True, help="a key of toxicity.models")
    generate.add_argument("--out", required=True, help="generations JSONL")
    generate.add_argument("--metrics", required=True, help="metrics JSON")
    score = commands.add_parser("score", help="score every model's generations")
    score.add_argument("--generations", required=True, help="directory of <model>.jsonl")
    score.add_argument("--out", required=True, help="directory of per-model score files")
    score.add_argument("--metrics", required=True, help="metrics JSON, keyed by model")
    score.add_argument("--scorer-metrics", required=True, help="the scorer's own metrics JSON")
    score.add_argument("--perplexity-model", required=True, help="the perplexity_model stage's checkpoint")
    args = parser.parse_args()
    params = load_sections(LLMSection, ToxicitySection)
    if args.command == "generate":
        before_stage(params, "toxicity.engine")
        run_toxicity_generation(params.toxicity, args.model, args.out, args.metrics)
    else:
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
