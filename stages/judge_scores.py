"""Stage `judge_scores`: the judge's metrics (scores with bootstrap CIs, win rates, judge health,
steerability) from the judge stage's outputs, without an LLM call."""

import argparse

from janus.config.common import load_sections
from janus.config.judge_scores import JudgeScoresSection
from janus.evaluate.judge.scores import score_judge_outputs
from janus.io import write_json


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bench", required=True, help="the bench stage's JSONL")
    parser.add_argument("--responses", required=True, help="directory of <model>.jsonl responses")
    parser.add_argument("--judge", required=True, help="the judge stage's output directory")
    parser.add_argument("--metrics", required=True, help="metrics JSON")
    args = parser.parse_args()
    params = load_sections(JudgeScoresSection)
    write_json(
        args.metrics,
        score_judge_outputs(args.judge, args.bench, args.responses, params.judge_scores),
    )


if __name__ == "__main__":
    main()
