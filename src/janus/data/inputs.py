"""Input stages: every file the pipeline reads from outside the repo is made by a stage.

Each reads its source (a bundled sample in the repo, or a hub dataset at the commit written in
params, through `janus.hf_loading`), checks every row with the parser of the stage that will read
it, and writes the file the pipeline reads, so `dvc.lock` records the source and revision as
params and the made file's md5 as an output. Bad rows are counted by reason, never passed on.

- `toxicity_prompts` (F.4): RealToxicityPrompts rows; the paper's 10k test sample is `sample`
  rows drawn with `seed` from the prompts below `max_prompt_toxicity` (DExperts' non-toxic
  prompts), written in the source's order.
- `helpfulness_prompts@<benchmark>` (Table 3): AlpacaEval / MT-Bench / Arena-Hard questions.
- `dsp` (A.1): the Domain-Specific Preference rows the filter reads.
- `perplexity_model` (F.4): the fluency LM (GPT-2 XL) at its revision, or the base checkpoint.
"""

from __future__ import annotations

import os
import random
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

from janus.config.sources import InputSource
from janus.config.toxicity import PerplexityModelParams, ToxicityPromptsSource
from janus.data.sources.base import BadRow, read_rows
from janus.io import write_jsonl
from janus.logging_utils import get_logger

log = get_logger(__name__)


def _source_metrics(source: InputSource) -> dict[str, Any]:
    return {"source": source.path, "revision": source.revision, "split": source.split}


def make_toxicity_prompts(source: ToxicityPromptsSource, out: str | Path) -> dict[str, Any]:
    """RealToxicityPrompts rows with a `prompt.text`, filtered and sampled as params say."""
    kept: list[dict[str, Any]] = []
    skipped: Counter[str] = Counter()
    read = above = 0
    for raw in read_rows(source.path, source.split, revision=source.revision):
        read += 1
        if raw.data is None:
            skipped["unreadable_row"] += 1
            continue
        prompt = raw.data.get("prompt")
        text = prompt.get("text") if isinstance(prompt, dict) else None
        if not isinstance(text, str) or not text.strip():
            skipped["no_prompt_text"] += 1
            continue
        if source.max_prompt_toxicity is not None:
            toxicity = prompt.get("toxicity")
            if not isinstance(toxicity, int | float):
                skipped["no_prompt_toxicity"] += 1
                continue
            if toxicity >= source.max_prompt_toxicity:
                above += 1
                continue
        kept.append(raw.data)
    for reason, count in skipped.items():
        log.warning("%s: %d row(s) skipped (%s)", source.path, count, reason)
    eligible = len(kept)
    if source.sample is not None:
        if eligible < source.sample:
            raise ValueError(
                f"{source.path}: {eligible} eligible prompts, fewer than "
                f"toxicity.prompts_source.sample={source.sample}"
            )
        chosen = sorted(random.Random(source.seed).sample(range(eligible), source.sample))
        kept = [kept[index] for index in chosen]
    if not kept:
        raise ValueError(f"{source.path}: no usable prompts ({dict(skipped)})")
    write_jsonl(out, kept)
    return {
        **_source_metrics(source),
        "rows_read": read,
        "above_max_prompt_toxicity": above,
        "eligible": eligible,
        "prompts": len(kept),
        "skipped": dict(sorted(skipped.items())),
    }


def make_helpfulness_prompts(
    benchmark: str, source: InputSource, out: str | Path
) -> dict[str, Any]:
    """The benchmark's questions that its own parser accepts, in the source's order."""
    from janus.evaluate.helpfulness_questions import read_questions

    questions, skipped = read_questions(benchmark, source.path, source.split, source.revision)
    if not questions:
        raise ValueError(f"{source.path}: no valid {benchmark} questions ({skipped})")
    write_jsonl(out, [question.row.model_dump(mode="json") for question in questions])
    return {**_source_metrics(source), "benchmark": benchmark, "questions": len(questions),
            "skipped": skipped}  # fmt: skip


def make_dsp(source: InputSource, out: str | Path) -> dict[str, Any]:
    """DSP rows the filter's adapter can read (a `query`; `responses` a mapping of domains)."""
    from janus.data.sources import ADAPTERS

    adapter = ADAPTERS["domain_specific_preference"]
    kept: list[dict[str, Any]] = []
    skipped: Counter[str] = Counter()
    for raw in read_rows(source.path, source.split, revision=source.revision):
        if raw.data is None:
            skipped["unreadable_row"] += 1
            continue
        try:
            adapter.extract(raw.data)
        except BadRow as bad:
            skipped[bad.reason] += 1
            continue
        kept.append(raw.data)
    for reason, count in skipped.items():
        log.warning("%s: %d row(s) skipped (%s)", source.path, count, reason)
    if not kept:
        raise ValueError(f"{source.path}: no usable DSP rows ({dict(skipped)})")
    write_jsonl(out, kept)
    return {**_source_metrics(source), "rows": len(kept), "skipped": dict(sorted(skipped.items()))}


def _link_tree(source: Path, target: Path) -> None:
    """A copy of a checkpoint folder, hard-linked where the filesystem allows (no second copy
    of the weights on disk; DVC's cache already shares identical files)."""

    def link_or_copy(src: str, dst: str) -> None:
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)

    shutil.copytree(source, target, copy_function=link_or_copy)


def make_perplexity_model(
    params: PerplexityModelParams, base: str | Path, out: str | Path
) -> dict[str, Any]:
    """The fluency LM in `out`: hub_id at revision, or (hub_id None) the base checkpoint."""
    from janus.hf_loading import copy_hub_model

    out = Path(out)
    staging = out.with_name(out.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    if params.hub_id is None:
        _link_tree(Path(base), staging)
        origin = {"hub_id": None, "revision": None, "copied_from": str(base)}
    else:
        assert params.revision is not None  # checked by the schema
        copy_hub_model(params.hub_id, params.revision, staging)
        origin = {"hub_id": params.hub_id, "revision": params.revision}
    shutil.rmtree(out, ignore_errors=True)
    staging.rename(out)
    return {**origin, "files": sorted(p.name for p in out.iterdir())}
