"""The `generate` section: whether the teacher stages make the training data at all."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from janus.config.common import Section

# gold_responses' output in dvc.yaml: the collection the teacher stages make.
GENERATED_COLLECTION = "data/multifaceted_collection.jsonl"


class GenerateSection(Section):
    """enabled false: the teacher stages (dsp, filter .. gold_responses) write empty outputs and
    call nothing, for a run that trains on the published collection (build_pairs.collection)."""

    params_key: ClassVar[str] = "generate"

    enabled: bool

    def check_references(self, sections: Mapping[str, Any]) -> None:
        pairs = sections.get("build_pairs")
        if not self.enabled and pairs is not None and pairs.collection == GENERATED_COLLECTION:
            raise ValueError(
                f"generate.enabled is false but build_pairs.collection is the generated "
                f"{GENERATED_COLLECTION}: point it at data/published_collection, or enable generate"
            )
