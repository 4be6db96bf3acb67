"""Input stages: the files the pipeline reads from outside, made from pinned sources.

python stages/inputs.py toxicity_prompts --out FILE --metrics M.json   (toxicity.prompts_source)
python stages/inputs.py helpfulness_prompts --benchmark NAME --out FILE --metrics M.json
python stages/inputs.py dsp --out FILE --metrics M.json                (filter.dsp_source)
python stages/inputs.py perplexity_model --base DIR --out DIR --metrics M.json
"""

import argparse

from janus.config.common import load_sections
from janus.config.filter import FilterSection
from janus.config.generate import GenerateSection
from janus.config.helpfulness import HelpfulnessSection
from janus.config.toxicity import ToxicitySection
from janus.data.common import write_not_generated
from janus.data.inputs import (
    make_dsp,
    make_helpfulness_prompts,
    make_perplexity_model,
    make_toxicity_prompts,
)
from janus.io import write_json


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    for name in ("toxicity_prompts", "helpfulness_prompts", "dsp", "perplexity_model"):
        command = commands.add_parser(name)
        command.add_argument("--out", required=True, help="the file (or checkpoint) to make")
        command.add_argument("--metrics", required=True, help="metrics JSON")
        if name == "helpfulness_prompts":
            command.add_argument("--benchmark", required=True, help="a key of helpfulness.benchmarks")
        if name == "perplexity_model":
            command.add_argument("--base", required=True, help="the base checkpoint (hub_id null)")
    args = parser.parse_args()
    if args.command == "toxicity_prompts":
        toxicity = load_sections(ToxicitySection).toxicity
        metrics = make_toxicity_prompts(toxicity.prompts_source, args.out)
    elif args.command == "helpfulness_prompts":
        source = load_sections(HelpfulnessSection).helpfulness.benchmarks[args.benchmark].source
        metrics = make_helpfulness_prompts(args.benchmark, source, args.out)
    elif args.command == "dsp":
        params = load_sections(GenerateSection, FilterSection)
        if not params.generate.enabled:  # only the filter reads it
            write_not_generated(args.out, args.metrics)
            return
        metrics = make_dsp(params.filter.dsp_source, args.out)
    else:
        toxicity = load_sections(ToxicitySection).toxicity
        metrics = make_perplexity_model(toxicity.perplexity_model, args.base, args.out)
    write_json(args.metrics, metrics)


if __name__ == "__main__":
    main()
