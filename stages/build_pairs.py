"""Stage `build_pairs` (E.1, B.1): the collection -> <out>/{sft,sft_third,preference}/."""

import argparse

from janus.config import load_params
from janus.data.common import read_preference_set_rows
from janus.data.pairs import build_pairs, write_pairs
from janus.io import write_json


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--collection", required=True, help="the gold_responses stage's JSONL")
    parser.add_argument("--out", required=True, help="directory of pair files")
    parser.add_argument("--metrics", required=True, help="metrics JSON")
    args = parser.parse_args()
    params = load_params()
    # generated (gold_responses) or published (published_collection): build_pairs.collection,
    # which dvc.yaml passes here and declares as the dependency
    rows, dimensions = read_preference_set_rows(args.collection)
    files, metrics = build_pairs(rows, params.build_pairs, dimensions)
    write_pairs(files, args.out)
    write_json(args.metrics, metrics)


if __name__ == "__main__":
    main()
