"""The `build_pairs` section: SFT rows and preference pairs from a collection."""

from __future__ import annotations

from typing import ClassVar

from pydantic import (
    Field,
)

from janus.config.common import Section


class BuildPairsSection(Section):
    params_key: ClassVar[str] = "build_pairs"
    # The collection the pairs are built from, the switch between generating and starting from
    # the published data: data/multifaceted_collection.jsonl (the gold_responses stage),
    # data/published_collection/multifaceted_collection.jsonl (the published collection, pairs
    # derived by E.1), or the folder data/published_collection (the published collection, and
    # the published DPO/ORPO/RM pairs for the trainers whose variant was imported). dvc.yaml
    # makes it the stage's dependency, so only that branch of the DAG runs.
    collection: str
    third_fraction: float = Field(gt=0, le=1)  # Janus*: one of the three sets per instruction
    eval_fraction: float = Field(ge=0, lt=1)  # held out by instruction, for eval metrics
    min_eval_instructions: int = Field(ge=0)
    pairs_per_instruction: int = Field(ge=1)  # paper: one (chosen, rejected) per instruction
    seed: int
