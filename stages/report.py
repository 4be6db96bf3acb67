"""Stage `report`: the Markdown report, plot data and metrics."""

import argparse
from pathlib import Path

from janus.config.common import load_sections
from janus.config.infer import InferSection
from janus.config.report import ReportSection
from janus.evaluate.report import build_report, load_report_inputs
from janus.io import atomic_open, write_json


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bench", required=True, help="the bench stage's JSONL")
    parser.add_argument("--bench-metrics", required=True, help="the bench stage's metrics JSON")
    parser.add_argument("--responses", required=True, help="directory of <model>.jsonl responses")
    parser.add_argument("--judge", required=True, help="the judge stage's output directory")
    parser.add_argument("--judge-metrics", required=True, help="the judge stage's metrics JSON")
    parser.add_argument("--toxicity-metrics", required=True, help="the toxicity stage's metrics")
    parser.add_argument("--out", required=True, help="the report (Markdown)")
    parser.add_argument("--plots", required=True, help="directory of plot data JSON")
    parser.add_argument("--metrics", required=True, help="metrics JSON")
    args = parser.parse_args()
    params = load_sections(InferSection, ReportSection)
    inputs = load_report_inputs(
        judge_metrics=Path(args.judge_metrics),
        bench_metrics=Path(args.bench_metrics),
        bench_path=Path(args.bench),
        responses_dir=Path(args.responses),
        item_scores=Path(args.judge) / "item_scores.jsonl",
        judgements=Path(args.judge) / "absolute.jsonl",
        toxicity_metrics=Path(args.toxicity_metrics),
        models=params.infer.model_names(),
    )
    report = build_report(params, inputs)
    with atomic_open(args.out) as handle:
        handle.write(report.markdown)
    for name, rows in report.plots.items():
        write_json(Path(args.plots) / name, rows)
    write_json(args.metrics, report.metrics)


if __name__ == "__main__":
    main()
