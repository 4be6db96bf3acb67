"""Stage `build_pairs` (E.1, B.1): the collection -> <out>/{sft,sft_third,dpo,orpo,rm}/."""

import argparse

from janus.config.build_pairs import BuildPairsSection
from janus.config.common import load_sections
from janus.data.pairs import build_pairs, read_collection_source, write_pairs
from janus.io import write_json


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--collection",
        required=True,
        help="a collection JSONL (gold_responses or published), or the published_collection folder",
    )
    parser.add_argument("--out", required=True, help="directory of pair files")
    parser.add_argument("--metrics", required=True, help="metrics JSON")
    args = parser.parse_args()
    params = load_sections(BuildPairsSection)
    # build_pairs.collection, which dvc.yaml passes here and declares as the dependency
    rows, dimensions, published_pairs = read_collection_source(args.collection)
    files, metrics = build_pairs(rows, params.build_pairs, dimensions, published_pairs)
    write_pairs(files, args.out)
    write_json(args.metrics, metrics)


if __name__ == "__main__":
    main()
