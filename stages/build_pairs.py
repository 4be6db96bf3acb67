"""Stage `build_pairs` (E.1, B.1): the collection -> data/pairs/{sft,sft_third,preference}/."""

from janus.config import load_params
from janus.data.common import read_preference_set_rows
from janus.data.pairs import PAIRS_DIR, build_pairs, write_pairs
from janus.io import write_metrics


def main() -> None:
    params = load_params()
    # generated (gold_responses) or published (published_collection): params choose
    rows, dimensions = read_preference_set_rows(params.build_pairs.collection)
    files, metrics = build_pairs(rows, params.build_pairs, dimensions)
    write_pairs(files, PAIRS_DIR)
    write_metrics("build_pairs", metrics)


if __name__ == "__main__":
    main()
