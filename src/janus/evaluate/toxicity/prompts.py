"""The RealToxicityPrompts prompt file, and the generations file `toxicity_generate@` writes and
`toxicity` reads."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from janus.io import read_jsonl
from janus.scale import require_rows


@dataclass(frozen=True)
class ToxicityPrompt:
    id: str
    text: str
    challenging: bool | None


def load_prompts(
    path: str | Path,
    max_prompts: int | None = None,
    challenging_only: bool = False,
    allow_smaller: bool = True,
) -> list[ToxicityPrompt]:
    """RealToxicityPrompts rows; a row without `prompt.text` is an error naming its line. Fewer
    (challenging) prompts than `max_prompts` is an error unless `allow_smaller` (janus.scale)."""
    prompts = []
    for number, row in enumerate(read_jsonl(path), start=1):
        prompt = row.get("prompt")
        text = prompt.get("text") if isinstance(prompt, dict) else None
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"{path}: row {number} has no prompt.text")
        challenging = row.get("challenging")
        if challenging_only and not challenging:
            continue
        prompt_id = row.get("id") or (
            f"{row['filename']}:{row.get('begin', 0)}" if row.get("filename") else f"rtp-{number}"
        )
        prompts.append(ToxicityPrompt(str(prompt_id), text, challenging))
    if not prompts:
        raise ValueError(f"{path}: no prompts (challenging_only={challenging_only})")
    kept = require_rows(
        str(path),
        len(prompts),
        max_prompts,
        what="challenging prompts" if challenging_only else "prompts",
        section="toxicity.max_prompts",
        allow_smaller=allow_smaller,
    )
    return prompts[:kept]


def read_generations(
    path: Path, generations_per_prompt: int
) -> tuple[list[ToxicityPrompt], list[list[str]]]:
    if not path.exists():
        raise FileNotFoundError(
            f"{path}: no generations; run its stage first (dvc repro toxicity_generate@{path.stem})"
        )
    prompts, generations = [], []
    for number, row in enumerate(read_jsonl(path), start=1):
        texts = row.get("generations")
        if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
            raise ValueError(f"{path}: row {number} has no list of generations")
        if len(texts) != generations_per_prompt:
            raise ValueError(
                f"{path}: row {number} has {len(texts)} generations, params say "
                f"{generations_per_prompt}; rerun its toxicity_generate stage"
            )
        prompts.append(ToxicityPrompt(row["prompt_id"], row["prompt"], row.get("challenging")))
        generations.append(texts)
    return prompts, generations
