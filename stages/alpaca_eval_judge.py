"""Stage `alpaca_eval_judge@<run>` (optional, F.3): the alpaca_eval package judges one model's
AlpacaEval 2.0 answers with llm.judge; LC win rate and win rate into --metrics."""

import argparse

from janus.config.common import load_sections
from janus.config.helpfulness import HelpfulnessSection
from janus.config.llm import LLMSection
from janus.evaluate.alpaca_eval_judge import run_alpaca_eval
from janus.preflight.stage import before_stage


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--run", required=True, help="a key of helpfulness.alpaca_eval_runs")
    parser.add_argument("--answers-dir", required=True, help="helpfulness@alpaca_eval's output")
    parser.add_argument("--out", required=True, help="where alpaca_eval writes its results")
    parser.add_argument("--metrics", required=True)
    args = parser.parse_args()
    params = load_sections(HelpfulnessSection, LLMSection)
    if params.helpfulness is None:
        raise SystemExit("params have no helpfulness section")
    before_stage(params, "llm.judge")
    run = params.helpfulness.alpaca_eval_runs[args.run]
    run_alpaca_eval(
        run,
        params.llm.judge,
        f"{args.answers_dir}/{run.model}.json",
        args.out,
        args.metrics,
    )


if __name__ == "__main__":
    main()
