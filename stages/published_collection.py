"""Stage `published_collection`: the published Multifaceted Collection (hub or local file) and its
pair variants, every row checked -> <out>/multifaceted_collection.jsonl, <out>/pairs/<variant>.jsonl.
"""

import argparse

from janus.config.common import load_sections
from janus.config.published_collection import PublishedCollectionSection
from janus.data.published import import_published, write_published
from janus.data.taxonomy import load_taxonomy
from janus.io import write_json


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--taxonomy", required=True, help="the seed taxonomy (its dimensions)")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--metrics", required=True, help="metrics JSON")
    args = parser.parse_args()
    params = load_sections(PublishedCollectionSection)
    taxonomy = load_taxonomy(args.taxonomy)
    collection, pairs, metrics = import_published(params.published_collection, taxonomy.keys)
    write_published(args.out, collection, pairs)
    write_json(args.metrics, metrics)


if __name__ == "__main__":
    main()
