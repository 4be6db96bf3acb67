"""Stage `build_pairs` (3.2, E.1, B.1): the training files made from the Multifaceted Collection.

- `sft/`: every (system, prompt, output) row: Janus.
- `sft_third/`: `third_fraction` of each instruction's rows (one of three): Janus*.
- `dpo/`, `orpo/`, `rm/`: the preference pairs of train@dpo, train@orpo and the reward model.
  Built by E.1's recipe: per instruction, `pairs_per_instruction` pairs of (chosen, rejected), the
  chosen response written for the row's system message, the rejected one for another system
  message of the same instruction; chosen rows are taken from outside the Janus* third first,
  since E.1 keeps the rest of the data for preference optimisation. The three trainers then get
  the same pairs. Starting from the published data (`build_pairs.collection` is the
  `published_collection` folder), each trainer gets its published variant instead
  (Multifaceted-Collection-DPO / -ORPO / -RM), where that variant was imported.

Every file is split into train/eval by instruction, so no instruction's rows straddle the split
(published pairs follow the split of their instruction). The metrics include B.1's diversity:
ROUGE-L F1 between the preference descriptions of each instruction's sets, per dimension.
"""

from __future__ import annotations

import itertools
import shutil
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from janus.config.build_pairs import BuildPairsSection
from janus.data.common import item_rng, read_preference_set_rows
from janus.data.published import read_published
from janus.data.rows import PAIR_VARIANTS
from janus.io import write_jsonl
from janus.logging_utils import get_logger

log = get_logger(__name__)

SPLITS = ("train", "eval")
SFT_COLUMNS = (
    "system",
    "prompt",
    "output",
    "instruction_id",
    "set_index",
    "main_source",
    "original_source",
)


def group_by_instruction(rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        groups[row["instruction_id"]].append(row)
    for group in groups.values():
        group.sort(key=lambda row: row["set_index"])
        indices = [row["set_index"] for row in group]
        if len(set(indices)) != len(indices):
            raise ValueError(
                f"instruction {group[0]['instruction_id']} has repeated set_index {indices}"
            )
    return dict(sorted(groups.items()))


def split_instructions(
    ids: Sequence[str], pairable: set[str], config: BuildPairsSection
) -> tuple[list[str], list[str]]:
    """(train ids, eval ids): `eval_fraction` of instructions, at least `min_eval_instructions`,
    always leaving one for training. `pairable` instructions (two or more rows, or a published
    pair) go to eval first, so that the eval split has preference pairs whenever any instruction
    can give one."""
    ids = sorted(ids)
    if not ids:
        return [], []
    n_eval = max(config.min_eval_instructions, round(config.eval_fraction * len(ids)))
    n_eval = min(n_eval, len(ids) - 1)
    if n_eval < config.min_eval_instructions:
        log.warning("only %d instruction(s): %d held out for eval", len(ids), n_eval)
    rng = item_rng(config.seed, "split")
    rng.shuffle(ids)
    ids.sort(key=lambda iid: iid not in pairable)  # stable: keeps the shuffle within each class
    eval_ids = sorted(ids[:n_eval])
    train_ids = sorted(ids[n_eval:])
    return train_ids, eval_ids


def third_subset(group: list[dict[str, Any]], config: BuildPairsSection) -> list[dict[str, Any]]:
    """Janus*'s rows of one instruction: `third_fraction` of them, at least one, at random."""
    k = max(1, round(config.third_fraction * len(group)))
    rng = item_rng(config.seed, "third", group[0]["instruction_id"])
    chosen = rng.sample(group, k)
    return sorted(chosen, key=lambda row: row["set_index"])


def preference_pairs(
    group: list[dict[str, Any]], in_third: set[int], config: BuildPairsSection
) -> list[dict[str, Any]]:
    """Up to `pairs_per_instruction` (chosen, rejected) rows of one instruction.

    chosen and rejected always come from different system messages of this one instruction; the
    system message is the chosen row's.
    """
    if len(group) < 2:
        return []
    candidates = list(itertools.permutations(group, 2))
    rng = item_rng(config.seed, "pairs", group[0]["instruction_id"])
    rng.shuffle(candidates)
    candidates.sort(key=lambda pair: pair[0]["set_index"] in in_third)  # outside Janus* first
    pairs = []
    for chosen, rejected in candidates[: config.pairs_per_instruction]:
        pairs.append(
            {
                "system": chosen["system"],
                "prompt": chosen["prompt"],
                "chosen": chosen["output"],
                "rejected": rejected["output"],
                "instruction_id": chosen["instruction_id"],
                "chosen_set_index": chosen["set_index"],
                "rejected_set_index": rejected["set_index"],
                "main_source": chosen["main_source"],
                "original_source": chosen["original_source"],
            }
        )
    return pairs


def rouge_l_diversity(
    groups: dict[str, list[dict[str, Any]]], dimensions: Sequence[str]
) -> dict[str, dict[str, float | int | None]]:
    """B.1: ROUGE-L F1 between every pair of one instruction's preference descriptions, per
    dimension. Per dimension: the mean over instructions of each instruction's mean pair score,
    and the highest instruction score; `all` pools the dimensions."""
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    per_dimension: dict[str, list[float]] = {dimension: [] for dimension in dimensions}
    for group in groups.values():
        if len(group) < 2:
            continue
        for dimension in dimensions:
            descriptions = [
                item["description"]
                for row in group
                for item in row["preference_set"]
                if item["dimension"] == dimension
            ]
            scores = [
                scorer.score(a, b)["rougeL"].fmeasure
                for a, b in itertools.combinations(descriptions, 2)
            ]
            if scores:
                per_dimension[dimension].append(sum(scores) / len(scores))

    def summary(values: list[float]) -> dict[str, float | int | None]:
        if not values:
            return {"mean": None, "max": None, "instructions": 0}
        return {"mean": sum(values) / len(values), "max": max(values), "instructions": len(values)}

    result = {dimension: summary(values) for dimension, values in per_dimension.items()}
    result["all"] = summary([value for values in per_dimension.values() for value in values])
    return result


def build_pairs(
    rows: list[dict[str, Any]],
    config: BuildPairsSection,
    dimensions: Sequence[str],
    published_pairs: dict[str, list[dict[str, Any]]] | None = None,
) -> tuple[dict[str, dict[str, list[dict[str, Any]]]], dict[str, Any]]:
    """{file: {split: rows}} for sft, sft_third, dpo, orpo and rm, and the stage's metrics.

    `published_pairs` ({variant: rows in PUBLISHED_PAIR_COLUMNS}) replaces E.1's derived pairs
    for the trainers it names; the others get the derived ones."""
    published_pairs = published_pairs or {}
    unknown = sorted(set(published_pairs) - set(PAIR_VARIANTS))
    if unknown:
        raise ValueError(f"unknown pair variant(s) {unknown}; expected some of {PAIR_VARIANTS}")
    if not rows:
        raise ValueError("the Multifaceted Collection is empty: nothing to build pairs from")
    groups = group_by_instruction(rows)
    published_ids = {pair["instruction_id"] for pairs in published_pairs.values() for pair in pairs}
    pairable = {iid for iid, group in groups.items() if len(group) >= 2} | published_ids
    train_ids, eval_ids = split_instructions(set(groups) | published_ids, pairable, config)
    derived_for = [variant for variant in PAIR_VARIANTS if variant not in published_pairs]
    files: dict[str, dict[str, list[dict[str, Any]]]] = {
        name: {split: [] for split in SPLITS} for name in ("sft", "sft_third", *PAIR_VARIANTS)
    }
    single_set = chosen_outside_third = n_derived = 0
    for split, ids in (("train", train_ids), ("eval", eval_ids)):
        for iid in ids:
            group = groups.get(iid, [])  # a published pair's instruction may have no rows
            if not group:
                continue
            files["sft"][split] += [
                {column: row[column] for column in SFT_COLUMNS} for row in group
            ]
            third = third_subset(group, config)
            files["sft_third"][split] += [
                {column: row[column] for column in SFT_COLUMNS} for row in third
            ]
            if not derived_for:
                continue
            third_indices = {row["set_index"] for row in third}
            pairs = preference_pairs(group, third_indices, config)
            single_set += not pairs
            n_derived += len(pairs)
            chosen_outside_third += sum(
                pair["chosen_set_index"] not in third_indices for pair in pairs
            )
            for variant in derived_for:
                files[variant][split] += pairs
    split_of = {iid: "train" for iid in train_ids} | {iid: "eval" for iid in eval_ids}
    for variant, pairs in published_pairs.items():
        for pair in pairs:
            files[variant][split_of[pair["instruction_id"]]].append(pair)
    metrics = {
        "rows": len(rows),
        "instructions": {"train": len(train_ids), "eval": len(eval_ids)},
        "counts": {
            name: {split: len(split_rows) for split, split_rows in splits.items()}
            for name, splits in files.items()
        },
        # where each preference trainer's pairs come from: E.1's recipe or a published variant
        "pairs_source": {
            variant: "published" if variant in published_pairs else "derived"
            for variant in PAIR_VARIANTS
        },
        # of E.1's derived pairs (null when every trainer has published pairs)
        "instructions_without_pairs": single_set if derived_for else None,
        "chosen_outside_third_rate": (
            chosen_outside_third / n_derived if derived_for and n_derived else None
        ),
        "published_pairs": {
            variant: {
                "pairs": len(pairs),
                "instructions": len({pair["instruction_id"] for pair in pairs}),
                # instructions the collection has no row for (e.g. a max_rows cut)
                "instructions_not_in_collection": len(
                    {pair["instruction_id"] for pair in pairs} - set(groups)
                ),
            }
            for variant, pairs in sorted(published_pairs.items())
        },
        "diversity_rouge_l": rouge_l_diversity(groups, dimensions),
    }
    for variant in PAIR_VARIANTS:
        if not files[variant]["train"]:
            # An empty JSONL file cannot even be opened by `datasets`; say why here instead.
            if variant in published_pairs:
                raise ValueError(
                    f"the published {variant} pairs ({len(published_pairs[variant])} rows) have "
                    "none in the training split"
                )
            raise ValueError(
                "no training instruction has responses for two or more system messages, so there "
                f"are no {variant} pairs ({len(rows)} rows, {len(groups)} instructions); generate "
                "more preference sets or check why gold responses were dropped"
            )
        if eval_ids and not files[variant]["eval"]:
            log.warning(
                "no eval instruction has a %s pair: %s/eval.jsonl is empty", variant, variant
            )
    return files, metrics


def read_collection_source(
    path: Path | str,
) -> tuple[list[dict[str, Any]], tuple[str, ...], dict[str, list[dict[str, Any]]]]:
    """What `build_pairs.collection` names: a collection file (generated or published; pairs
    derived by E.1), or the `published_collection` folder (its collection, plus the published
    pairs of every variant it holds). Returns (rows, dimensions, published pairs)."""
    path = Path(path)
    published_pairs: dict[str, list[dict[str, Any]]] = {}
    if path.is_dir():
        path, published_pairs = read_published(path)
    rows, dimensions = read_preference_set_rows(path)
    log.info(
        "pairs for %s: published; for %s: derived from %s",
        ", ".join(published_pairs) or "no trainer",
        ", ".join(v for v in PAIR_VARIANTS if v not in published_pairs) or "no trainer",
        path,
    )
    return rows, dimensions, published_pairs


def write_pairs(files: dict[str, dict[str, list[dict[str, Any]]]], out_dir: Path | str) -> None:
    """Write `<out_dir>/<name>/<split>.jsonl` into a staging folder, then swap it into place."""
    out_dir = Path(out_dir)
    staging = out_dir.with_name(out_dir.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    for name, splits in files.items():
        for split, split_rows in splits.items():
            write_jsonl(staging / name / f"{split}.jsonl", split_rows)
    shutil.rmtree(out_dir, ignore_errors=True)
    staging.rename(out_dir)
