"""Stage `infer_api@<model>` (6.1, Table 8's GPT-4-Turbo rows): bench responses of a model behind
an OpenAI-compatible endpoint, with and without the system message, and their metrics."""

import argparse

from janus.config.common import load_sections
from janus.config.infer import InferSection
from janus.infer.endpoint_responses import run_infer_api


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", required=True, help="a key of infer.endpoints")
    parser.add_argument("--bench", required=True, help="the bench stage's JSONL")
    parser.add_argument("--out", required=True, help="responses JSONL")
    parser.add_argument("--metrics", required=True, help="metrics JSON")
    args = parser.parse_args()
    params = load_sections(InferSection)
    run_infer_api(params.infer, args.model, args.bench, args.out, args.metrics)


if __name__ == "__main__":
    main()
