"""The bench stage: the published bench imported, or our own built (selection, then generation);
then the train-test ROUGE-L of system messages (Figure 5) and the metrics."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from janus.config.bench import BenchSection
from janus.data.common import read_preference_set_rows
from janus.data.system_messages import load_examples
from janus.data.taxonomy import load_taxonomy
from janus.evaluate.bench.columns import SourceColumns
from janus.evaluate.bench.generation import BenchParams, generate_bench_rows
from janus.evaluate.bench.published import import_published
from janus.evaluate.bench.selection import select_instructions, training_instruction_keys
from janus.evaluate.diversity import max_rouge_l_each
from janus.io import read_jsonl
from janus.logging_utils import get_logger

log = get_logger(__name__)


@dataclass(frozen=True)
class BenchInputs:
    """The files the bench reads besides its own sources (the stage script names them)."""

    training_instructions: Sequence[Path]  # instructions the bench must not contain
    collection: Path  # the training system messages, for the train-test similarity
    seed_preferences: Path
    taxonomy: Path
    system_message_examples: Path


def train_test_similarity(
    bench: list[dict[str, Any]], training_systems: list[str], config: BenchSection
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Figure 5: each bench system message's highest ROUGE-L F1 against the training ones."""
    pool = sorted(set(training_systems))
    if (
        config.train_test_max_train_messages is not None
        and len(pool) > config.train_test_max_train_messages
    ):
        pool = random.Random(f"{config.seed}:train_test").sample(
            pool, config.train_test_max_train_messages
        )
    if not pool or not bench:
        return [], {
            "mean_of_max": None,
            "max_of_max": None,
            "bench_messages": len(bench),
            "train_messages": len(pool),
        }
    maxima = max_rouge_l_each([row["system"] for row in bench], pool)
    items = [
        {"id": row["id"], "source": row["source"], "group": "bench vs train", "rouge_l_max": value}
        for row, value in zip(bench, maxima, strict=True)
    ]
    values = [item["rouge_l_max"] for item in items]
    return items, {
        "mean_of_max": sum(values) / len(values),
        "max_of_max": max(values),
        "bench_messages": len(values),
        "train_messages": len(pool),
    }


def build_bench(
    params: BenchParams, inputs: BenchInputs, root: Path | str = "."
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, Any]]:
    """(bench rows, train-test ROUGE-L per row, metrics) for `params.bench`."""
    root = Path(root)
    config = params.bench
    columns = SourceColumns.load(root / config.source_columns_path)
    if config.published is not None:
        bench, import_metrics = import_published(config, columns, root)
        if not bench:
            raise RuntimeError(f"bench: no usable row in {config.published}: {import_metrics}")
        source_metrics: dict[str, Any] = {}
    else:
        bench, import_metrics, source_metrics = _build_own(params, inputs, root)
    training_systems = [
        row["system"]
        for row in read_jsonl(inputs.collection)
        if isinstance(row.get("system"), str) and row["system"].strip()
    ]
    similarity_rows, similarity = train_test_similarity(bench, training_systems, config)
    per_benchmark = Counter(row["benchmark"] for row in bench)
    metrics = {
        "rows": len(bench),
        "instructions": len({row["instruction_id"] for row in bench}),
        "rows_per_source": dict(sorted(per_benchmark.items())),  # per Table 2 column
        "sources": source_metrics,
        **import_metrics,
        "train_test_rouge_l": similarity,
    }
    return bench, similarity_rows, metrics


def _build_own(
    params: BenchParams, inputs: BenchInputs, root: Path
) -> tuple[list[dict[str, Any]], dict[str, Any], dict[str, Any]]:
    config = params.bench
    taxonomy = load_taxonomy(inputs.taxonomy)
    training_keys = training_instruction_keys(inputs.training_instructions)
    instructions, source_metrics = select_instructions(config, training_keys, root)
    log.info("bench: %d instructions from %d sources", len(instructions), len(source_metrics))
    seed_sets, _ = read_preference_set_rows(inputs.seed_preferences, taxonomy.keys)
    examples = load_examples(inputs.system_message_examples, taxonomy.keys)
    bench, generation_metrics = generate_bench_rows(
        instructions, taxonomy, seed_sets, examples, params
    )
    if not bench:
        raise RuntimeError(
            f"bench: no usable row out of {generation_metrics['requested_rows']}: "
            f"{generation_metrics['dropped']}"
        )
    return bench, generation_metrics, source_metrics
