"""Stages `infer@<model>`, `infer_bon@<model>`, `infer_hub@<model>`, `infer_api@<model>` (4, 6.1, 6.3, D.1):
bench responses with and without the system message -> outputs/responses/<model>.jsonl,
metrics/infer/<model>.json (best-of-N also writes every sample to outputs/best_of_n/<model>.jsonl).
"""

import argparse

from janus.config import load_params
from janus.infer.responses import run_infer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", required=True, help="a key of infer.models/best_of_n/hub_models/endpoints")
    args = parser.parse_args()
    params = load_params()
    run_infer(params.infer, args.model)


if __name__ == "__main__":
    main()
