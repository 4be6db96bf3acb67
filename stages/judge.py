"""Stage `judge`: absolute and pairwise LLM-as-a-judge on every model's bench responses (the
judgement rows and the grading record; stage judge_scores makes the metrics from them)."""

import argparse
from pathlib import Path

from janus.config.common import load_sections
from janus.config.infer import InferSection
from janus.config.judge import JudgeSection
from janus.config.llm import LLMSection
from janus.evaluate.judge.analysis import GRADING_RECORD
from janus.evaluate.judge.run import run_judge
from janus.io import write_json, write_jsonl
from janus.preflight.stage import before_stage


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bench", required=True, help="the bench stage's JSONL")
    parser.add_argument("--responses", required=True, help="directory of <model>.jsonl responses")
    parser.add_argument("--out", required=True, help="directory of judge outputs")
    args = parser.parse_args()
    params = load_sections(InferSection, JudgeSection, LLMSection)
    before_stage(params, *(f"llm.{role}" for role in params.judge.judges))  # every judge that grades
    outputs = run_judge(params, args.bench, args.responses)
    out = Path(args.out)
    write_jsonl(out / "absolute.jsonl", outputs.absolute)
    write_jsonl(out / "item_scores.jsonl", outputs.item_scores)
    write_jsonl(out / "pairwise.jsonl", outputs.pairwise)
    write_json(out / GRADING_RECORD, outputs.record)


if __name__ == "__main__":
    main()
