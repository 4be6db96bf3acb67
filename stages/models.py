"""Stage `models`: the base checkpoint (bundled SmolLM2 by default) -> --out."""

import argparse

from janus.config.common import load_sections
from janus.config.models import ModelsSection
from janus.models import prepare_base_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", required=True, help="checkpoint directory")
    args = parser.parse_args()
    prepare_base_model(load_sections(ModelsSection).models, args.out)


if __name__ == "__main__":
    main()
