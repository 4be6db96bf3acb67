"""Stage `scorecard`: the paper's Tables 2, 3, 4, 8 and 11 beside this run's numbers, and the
same-judge comparison of our models with the published ones -> reports/reproduction.md and
metrics/reproduction.json (janus.evaluate.scorecard, janus.evaluate.same_judge)."""

import argparse
from pathlib import Path

from janus.config.common import load_sections
from janus.config.scorecard import ScorecardSection
from janus.evaluate.same_judge import compare, same_judge_markdown
from janus.evaluate.scorecard import (
    build_cells,
    load_results,
    read_paper_numbers,
    scorecard_markdown,
    scorecard_metrics,
)
from janus.io import atomic_open, read_jsonl, write_json


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--judge-metrics", required=True)
    parser.add_argument("--judge", required=True, help="the judge stage's output directory")
    parser.add_argument("--toxicity-metrics", required=True)
    parser.add_argument("--alpaca-eval-metrics", required=True, help="a directory (may not exist)")
    parser.add_argument("--report", required=True)
    parser.add_argument("--metrics", required=True)
    args = parser.parse_args()
    params = load_sections(ScorecardSection)
    if params.scorecard is None:
        raise SystemExit("params have no scorecard section")
    paper = read_paper_numbers(params.scorecard.paper_numbers)
    results = load_results(
        Path(args.judge_metrics), Path(args.toxicity_metrics), Path(args.alpaca_eval_metrics)
    )
    cells = build_cells(paper, params.scorecard.rows, results, params.scorecard.paper_only)
    same_judge = compare(
        params.scorecard,
        read_jsonl(Path(args.judge) / "item_scores.jsonl"),
        results.judge.get("judges", []),
    )
    with atomic_open(args.report) as handle:
        handle.write(scorecard_markdown(cells, params.scorecard.paper_numbers))
        handle.write("\n" + same_judge_markdown(same_judge))
    write_json(args.metrics, {**scorecard_metrics(cells), "same_judge": same_judge.metrics})


if __name__ == "__main__":
    main()
