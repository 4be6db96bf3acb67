"""Stage `build_pairs`: SFT, Janus* third and preference files; split by instruction; B.1 diversity."""

from __future__ import annotations

import pytest

from janus.config import BuildPairsSection
from janus.data.pairs import build_pairs, rouge_l_diversity, split_instructions, write_pairs

DIMENSIONS = ("style", "background_knowledge", "informativeness", "harmlessness")


def _pairs_config(**values) -> BuildPairsSection:
    return BuildPairsSection(collection="data/multifaceted_collection.jsonl", **values)


def _preference_set(tag: str) -> list[dict]:
    return [
        {
            "dimension": d,
            "subdimension": "Sub",
            "preference": "Pref",
            "description": f"{d} wants {tag}",
        }
        for d in DIMENSIONS
    ]


def _collection(sets: dict[str, int]) -> list[dict]:
    """Rows for instructions id -> number of sets; every system and output is unique."""
    rows = []
    for iid, count in sets.items():
        for k in range(count):
            rows.append(
                {
                    "main_source": "Nectar",
                    "original_source": "sharegpt",
                    "preference_set": _preference_set(f"{iid} set {k}"),
                    "system": f"You are system {k} of {iid}.",
                    "prompt": f"Instruction {iid}?",
                    "output": f"Response to {iid} under system {k}.",
                    "instruction_id": iid,
                    "set_index": k,
                }
            )
    return rows


SETS = {f"i{n}": 3 for n in range(7)} | {"single": 1}


def test_preference_pairs_come_from_one_instruction_and_two_system_messages():
    rows = _collection(SETS)
    by_key = {(row["instruction_id"], row["set_index"]): row for row in rows}
    files, metrics = build_pairs(rows, _pairs_config(pairs_per_instruction=2), DIMENSIONS)
    pairs = files["preference"]["train"] + files["preference"]["eval"]
    assert len(pairs) == 7 * 2  # the single-set instruction gives none
    assert metrics["instructions_without_pairs"] == 1
    for pair in pairs:
        assert pair["chosen_set_index"] != pair["rejected_set_index"]
        chosen = by_key[(pair["instruction_id"], pair["chosen_set_index"])]
        rejected = by_key[(pair["instruction_id"], pair["rejected_set_index"])]
        assert pair["system"] == chosen["system"] and pair["prompt"] == chosen["prompt"]
        assert pair["chosen"] == chosen["output"]
        assert pair["rejected"] == rejected["output"]
        assert rejected["prompt"] == chosen["prompt"]
        assert set(pair) >= {"system", "prompt", "chosen", "rejected", "instruction_id"}
    per_instruction = {}
    for pair in pairs:
        per_instruction.setdefault(pair["instruction_id"], []).append(
            (pair["chosen_set_index"], pair["rejected_set_index"])
        )
    assert all(len(set(p)) == len(p) == 2 for p in per_instruction.values())


def test_pairs_per_instruction_is_capped_by_the_ordered_pairs():
    files, _ = build_pairs(
        _collection({"a": 3, "b": 2}),
        _pairs_config(pairs_per_instruction=10, eval_fraction=0, min_eval_instructions=0),
        DIMENSIONS,
    )
    counts = {}
    for pair in files["preference"]["train"]:
        counts[pair["instruction_id"]] = counts.get(pair["instruction_id"], 0) + 1
    assert counts == {"a": 6, "b": 2}


def test_third_subset_is_one_system_message_per_instruction():
    rows = _collection(SETS)
    files, metrics = build_pairs(rows, _pairs_config(), DIMENSIONS)
    third = files["sft_third"]["train"] + files["sft_third"]["eval"]
    assert sorted(row["instruction_id"] for row in third) == sorted(SETS)  # exactly one each
    assert metrics["counts"]["sft"]["train"] + metrics["counts"]["sft"]["eval"] == len(rows) == 22
    # E.1 keeps the rest for preference optimisation: chosen responses come from outside Janus*.
    third_keys = {(row["instruction_id"], row["set_index"]) for row in third}
    pairs = files["preference"]["train"] + files["preference"]["eval"]
    assert all((p["instruction_id"], p["chosen_set_index"]) not in third_keys for p in pairs)
    assert metrics["chosen_outside_third_rate"] == 1.0


def test_split_is_by_instruction_without_leakage():
    rows = _collection(SETS)
    config = _pairs_config(eval_fraction=0.25, min_eval_instructions=1, pairs_per_instruction=2)
    files, metrics = build_pairs(rows, config, DIMENSIONS)
    assert metrics["instructions"] == {"train": 6, "eval": 2}  # round(0.25 * 8) = 2
    for name, splits in files.items():
        train_ids = {row["instruction_id"] for row in splits["train"]}
        eval_ids = {row["instruction_id"] for row in splits["eval"]}
        assert train_ids and eval_ids, name
        assert not train_ids & eval_ids, name
    sft_eval = {row["instruction_id"] for row in files["sft"]["eval"]}
    assert all(row["instruction_id"] in sft_eval for row in files["preference"]["eval"])
    assert files["preference"]["eval"]  # eval instructions with pairs are held out first


def test_split_sizes_and_seed():
    groups = {iid: [{}] * 3 for iid in (f"i{n}" for n in range(10))}
    train, held = split_instructions(
        groups, _pairs_config(eval_fraction=0.0, min_eval_instructions=2)
    )
    assert len(held) == 2 and len(train) == 8
    config = _pairs_config(eval_fraction=0.0, min_eval_instructions=2)
    assert split_instructions(groups, config)[1] == held  # deterministic
    others = {
        tuple(split_instructions(groups, config.model_copy(update={"seed": seed}))[1])
        for seed in range(1, 6)
    }
    assert len(others | {tuple(held)}) > 1  # and the seed changes it
    # One instruction is always left for training.
    train, held = split_instructions({"only": [{}] * 3}, _pairs_config(min_eval_instructions=1))
    assert (train, held) == (["only"], [])


def test_no_pairs_at_all_is_a_clear_error():
    with pytest.raises(ValueError, match="no preference pairs"):
        build_pairs(_collection({"a": 1, "b": 1, "c": 1}), _pairs_config(), DIMENSIONS)


def test_repeated_set_index_is_an_error():
    rows = _collection({"a": 2})
    rows[1]["set_index"] = 0
    with pytest.raises(ValueError, match="repeated set_index"):
        build_pairs(rows, _pairs_config(), DIMENSIONS)


def test_rouge_l_diversity_hand_computed():
    def group(iid, descriptions_per_dimension):
        sets = len(next(iter(descriptions_per_dimension.values())))
        return [
            {
                "instruction_id": iid,
                "set_index": k,
                "preference_set": [
                    {"dimension": d, "description": descriptions_per_dimension[d][k]}
                    for d in ("style", "background_knowledge")
                ],
            }
            for k in range(sets)
        ]

    groups = {
        "a": group(
            "a",
            {
                # the/cat/on/mat in common: P = R = 4/6, F1 = 2/3; "dogs run fast" shares nothing.
                "style": ["the cat sat on the mat", "the cat lay on a mat", "dogs run fast"],
                # pairs: 2/4 common -> 0.5; identical -> 1.0; 0.5  => mean 2/3
                "background_knowledge": ["a b c d", "a b x y", "a b c d"],
            },
        ),
        "b": group(
            "b", {"style": ["the cat sat", "The cat, sat!"], "background_knowledge": ["one", "two"]}
        ),
        "c": group(
            "c", {"style": ["alone"], "background_knowledge": ["alone"]}
        ),  # no pair: skipped
    }
    result = rouge_l_diversity(groups, ("style", "background_knowledge"))
    style_a = (2 / 3 + 0 + 0) / 3
    assert result["style"]["mean"] == pytest.approx((style_a + 1.0) / 2)
    assert result["style"]["max"] == pytest.approx(1.0)
    assert result["style"]["instructions"] == 2
    assert result["background_knowledge"]["mean"] == pytest.approx((2 / 3 + 0.0) / 2)
    assert result["background_knowledge"]["max"] == pytest.approx(2 / 3)
    assert result["all"]["mean"] == pytest.approx((style_a + 1.0 + 2 / 3 + 0.0) / 4)
    assert result["all"]["max"] == pytest.approx(1.0)


def test_written_files_open_with_datasets(tmp_path, monkeypatch):
    import datasets

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf-cache")
    files, metrics = build_pairs(
        _collection(SETS), _pairs_config(pairs_per_instruction=2), DIMENSIONS
    )
    write_pairs(files, tmp_path / "pairs")
    assert not (tmp_path / "pairs.partial").exists()
    for name, columns in (
        ("sft", {"system", "prompt", "output", "instruction_id", "set_index"}),
        ("sft_third", {"system", "prompt", "output", "instruction_id", "set_index"}),
        ("preference", {"system", "prompt", "chosen", "rejected", "instruction_id"}),
    ):
        data_files = {
            split: str(tmp_path / "pairs" / name / f"{split}.jsonl") for split in ("train", "eval")
        }
        loaded = datasets.load_dataset("json", data_files=data_files)
        assert columns <= set(loaded["train"].column_names)
        assert loaded["train"].num_rows == metrics["counts"][name]["train"]
        assert loaded["eval"].num_rows == metrics["counts"][name]["eval"]
