"""Stages `infer@<model>`, `infer_bon@<model>`, `infer_hub@<model>` (4, 6.1, 6.3, D.1): a local
model's bench responses with and without the system message, and their metrics (best-of-N also
writes every sample with its reward to --samples). Endpoints: stages/infer_api.py."""

import argparse

from janus.config.common import load_sections
from janus.config.infer import InferSection
from janus.infer.responses import run_infer
from janus.preflight.stage import answering_keys, before_stage


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", required=True, help="a key of infer.models/best_of_n/hub_models")
    parser.add_argument("--bench", required=True, help="the bench stage's JSONL")
    parser.add_argument("--out", required=True, help="responses JSONL")
    parser.add_argument("--metrics", required=True, help="metrics JSON")
    parser.add_argument("--samples", help="best-of-N only: every sample with its reward (JSONL)")
    args = parser.parse_args()
    params = load_sections(InferSection)
    before_stage(params, *answering_keys(params, [args.model], "infer.engine"))
    run_infer(params.infer, args.model, args.bench, args.out, args.metrics, args.samples)


if __name__ == "__main__":
    main()
