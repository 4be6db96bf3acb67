"""One data-parallel replica: `python -m janus.infer.replica <spec.json>`, started by
`janus.infer.generation.Generator` with CUDA_VISIBLE_DEVICES set to its GPUs. It loads its own
engine, generates its share of the calls and commits each unit to the completion cache as soon
as it is done (`run_calls`, which the single-replica case runs in-process)."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from janus.config.engine import EngineParams, SamplingParams
from janus.infer.completion_cache import CompletionCache
from janus.infer.engines import load_engine
from janus.infer.units import Unit
from janus.logging_utils import get_logger

log = get_logger(__name__)


def run_calls(
    engine,
    cache: CompletionCache,
    prompts: Mapping[int, list[int]] | Sequence[list[int]],
    units: Mapping[int, Unit] | Sequence[Unit],
    keys: Mapping[int, str] | Sequence[str],
    calls: Sequence[Sequence[int]],
    sampling: SamplingParams,
    stage: str,
    desc: str,
) -> None:
    """Generate each call's units and cache every unit the moment the engine returns it."""
    for call in calls:

        def commit(position: int, completions: list, call: Sequence[int] = call) -> None:
            cache.put(keys[call[position]], completions, stage)

        engine.generate_units(prompts, [units[n] for n in call], sampling, desc, on_unit=commit)


def main(spec_path: str) -> None:
    spec = json.loads(Path(spec_path).read_text())
    params = EngineParams.model_validate(spec["engine"])
    sampling = SamplingParams.model_validate(spec["sampling"])
    prompts = {int(index): ids for index, ids in spec["prompts"].items()}
    units, keys = {}, {}
    for number, unit in spec["units"].items():
        units[int(number)] = Unit(tuple((i, s) for i, s in unit["jobs"]), unit["seed"])
        keys[int(number)] = unit["key"]
    engine = load_engine(spec["location"], params, spec["revision"], spec["backend"])
    cache = CompletionCache(params.cache_dir)
    try:
        run_calls(
            engine, cache, prompts, units, keys, spec["calls"], sampling, spec["stage"], spec["desc"]
        )
    finally:
        cache.close()
        engine.close()
    Path(spec["report"]).write_text(
        json.dumps({"load_seconds": engine.stats.load_seconds, "seconds": engine.stats.seconds})
    )


if __name__ == "__main__":
    main(sys.argv[1])
