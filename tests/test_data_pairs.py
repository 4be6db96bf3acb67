"""Stage `build_pairs`: SFT, Janus* third and the DPO/ORPO/RM pair files (E.1 or published); split
by instruction; B.1 diversity."""

from __future__ import annotations

import pytest

from janus.data.pairs import build_pairs, rouge_l_diversity, split_instructions, write_pairs
from janus.data.rows import PAIR_VARIANTS
from tests.sections import tiny_section

DIMENSIONS = ("style", "background_knowledge", "informativeness", "harmlessness")


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
    files, metrics = build_pairs(
        rows, tiny_section("build_pairs", pairs_per_instruction=2), DIMENSIONS
    )
    pairs = files["dpo"]["train"] + files["dpo"]["eval"]
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
        tiny_section(
            "build_pairs", pairs_per_instruction=10, eval_fraction=0, min_eval_instructions=0
        ),
        DIMENSIONS,
    )
    counts = {}
    for pair in files["dpo"]["train"]:
        counts[pair["instruction_id"]] = counts.get(pair["instruction_id"], 0) + 1
    assert counts == {"a": 6, "b": 2}


def test_third_subset_is_one_system_message_per_instruction():
    rows = _collection(SETS)
    files, metrics = build_pairs(
        rows, tiny_section("build_pairs", third_fraction=1 / 3), DIMENSIONS
    )
    third = files["sft_third"]["train"] + files["sft_third"]["eval"]
    assert sorted(row["instruction_id"] for row in third) == sorted(SETS)  # exactly one each
    assert metrics["counts"]["sft"]["train"] + metrics["counts"]["sft"]["eval"] == len(rows) == 22
    # E.1 keeps the rest for preference optimisation: chosen responses come from outside Janus*.
    third_keys = {(row["instruction_id"], row["set_index"]) for row in third}
    pairs = files["dpo"]["train"] + files["dpo"]["eval"]
    assert all((p["instruction_id"], p["chosen_set_index"]) not in third_keys for p in pairs)
    assert metrics["chosen_outside_third_rate"] == 1.0


def test_split_is_by_instruction_without_leakage():
    rows = _collection(SETS)
    config = tiny_section(
        "build_pairs", eval_fraction=0.25, min_eval_instructions=1, pairs_per_instruction=2
    )
    files, metrics = build_pairs(rows, config, DIMENSIONS)
    assert metrics["instructions"] == {"train": 6, "eval": 2}  # round(0.25 * 8) = 2
    for name, splits in files.items():
        train_ids = {row["instruction_id"] for row in splits["train"]}
        eval_ids = {row["instruction_id"] for row in splits["eval"]}
        assert train_ids and eval_ids, name
        assert not train_ids & eval_ids, name
    sft_eval = {row["instruction_id"] for row in files["sft"]["eval"]}
    assert all(row["instruction_id"] in sft_eval for row in files["dpo"]["eval"])
    assert files["dpo"]["eval"]  # eval instructions with pairs are held out first


def test_split_sizes_and_seed():
    ids = [f"i{n}" for n in range(10)]
    pairable = set(ids)
    train, held = split_instructions(
        ids, pairable, tiny_section("build_pairs", eval_fraction=0.0, min_eval_instructions=2)
    )
    assert len(held) == 2 and len(train) == 8
    config = tiny_section("build_pairs", eval_fraction=0.0, min_eval_instructions=2)
    assert split_instructions(list(reversed(ids)), pairable, config)[1] == held  # deterministic
    others = {
        tuple(split_instructions(ids, pairable, config.model_copy(update={"seed": seed}))[1])
        for seed in range(1, 6)
    }
    assert len(others | {tuple(held)}) > 1  # and the seed changes it
    # Pairable instructions are held out first.
    assert split_instructions(ids, {"i3", "i7"}, config)[1] == ["i3", "i7"]
    # One instruction is always left for training.
    train, held = split_instructions(
        ["only"], {"only"}, tiny_section("build_pairs", min_eval_instructions=1)
    )
    assert (train, held) == (["only"], [])


def test_no_pairs_at_all_is_a_clear_error():
    with pytest.raises(ValueError, match="no dpo pairs"):
        build_pairs(_collection({"a": 1, "b": 1, "c": 1}), tiny_section("build_pairs"), DIMENSIONS)


def test_repeated_set_index_is_an_error():
    rows = _collection({"a": 2})
    rows[1]["set_index"] = 0
    with pytest.raises(ValueError, match="repeated set_index"):
        build_pairs(rows, tiny_section("build_pairs"), DIMENSIONS)


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
        _collection(SETS), tiny_section("build_pairs", pairs_per_instruction=2), DIMENSIONS
    )
    write_pairs(files, tmp_path / "pairs")
    assert not (tmp_path / "pairs.partial").exists()
    for name, columns in (
        ("sft", {"system", "prompt", "output", "instruction_id", "set_index"}),
        ("sft_third", {"system", "prompt", "output", "instruction_id", "set_index"}),
        *((v, {"system", "prompt", "chosen", "rejected", "instruction_id"}) for v in PAIR_VARIANTS),
    ):
        data_files = {
            split: str(tmp_path / "pairs" / name / f"{split}.jsonl") for split in ("train", "eval")
        }
        loaded = datasets.load_dataset("json", data_files=data_files)
        assert columns <= set(loaded["train"].column_names)
        assert loaded["train"].num_rows == metrics["counts"][name]["train"]
        assert loaded["eval"].num_rows == metrics["counts"][name]["eval"]


# -- the published DPO/ORPO/RM variants ---------------------------------------------------------


def _published_pair(iid: str, tag: str) -> dict:
    return {
        "system": f"You are the {tag} system of {iid}.",
        "prompt": f"Instruction {iid}?",
        "chosen": f"{tag} chosen answer to {iid}.",
        "rejected": f"{tag} rejected answer to {iid}.",
        "instruction_id": iid,
        "main_source": "Nectar",
        "original_source": "sharegpt",
    }


def test_each_trainer_gets_its_published_variant_and_the_rest_stay_derived():
    rows = _collection(SETS)
    config = tiny_section("build_pairs", eval_fraction=0.25, pairs_per_instruction=2)
    derived, derived_metrics = build_pairs(rows, config, DIMENSIONS)
    published = {
        "dpo": [_published_pair(f"i{n}", "dpo") for n in range(7)],
        "rm": [_published_pair(f"i{n}", "rm") for n in range(7)] + [_published_pair("extra", "rm")],
    }
    files, metrics = build_pairs(rows, config, DIMENSIONS, published)
    assert metrics["pairs_source"] == {"dpo": "published", "orpo": "derived", "rm": "published"}
    # dpo and rm are exactly the published rows, every one of them, each in one split
    for variant in ("dpo", "rm"):
        got = files[variant]["train"] + files[variant]["eval"]
        assert sorted(got, key=str) == sorted(published[variant], key=str), variant
    # not imported: E.1's pairs, the same ones as without the variants (the extra instruction
    # may move the split, so compare across both)
    assert sorted(files["orpo"]["train"] + files["orpo"]["eval"], key=str) == sorted(
        derived["orpo"]["train"] + derived["orpo"]["eval"], key=str
    )
    assert metrics["published_pairs"]["rm"] == {
        "pairs": 8,
        "instructions": 8,
        "instructions_not_in_collection": 1,
    }
    # a published pair follows its instruction's split: no instruction straddles it
    sft_eval = {row["instruction_id"] for row in files["sft"]["eval"]}
    sft_train = {row["instruction_id"] for row in files["sft"]["train"]}
    for variant in PAIR_VARIANTS:
        assert {row["instruction_id"] for row in files[variant]["eval"]} <= sft_eval | {"extra"}
        assert not {row["instruction_id"] for row in files[variant]["train"]} & sft_eval
        assert not {row["instruction_id"] for row in files[variant]["eval"]} & sft_train
    # the instruction only a published pair has counts in the split (9, round(0.25 * 9) = 2)
    assert metrics["instructions"]["train"] + metrics["instructions"]["eval"] == 9
    assert derived_metrics["pairs_source"] == dict.fromkeys(PAIR_VARIANTS, "derived")


def test_all_published_leaves_no_derived_pair_metrics():
    rows = _collection(SETS)
    published = {v: [_published_pair(f"i{n}", v) for n in range(7)] for v in PAIR_VARIANTS}
    files, metrics = build_pairs(rows, tiny_section("build_pairs"), DIMENSIONS, published)
    assert metrics["instructions_without_pairs"] is None
    assert metrics["chosen_outside_third_rate"] is None
    assert all("chosen_set_index" not in row for v in PAIR_VARIANTS for row in files[v]["train"])


def test_published_pairs_only_in_eval_are_a_clear_error():
    rows = _collection({"a": 1, "b": 1, "c": 1, "d": 1})
    config = tiny_section("build_pairs", eval_fraction=0.25, min_eval_instructions=1)
    # one pairable instruction: it goes to eval first, so training gets no dpo pair
    with pytest.raises(ValueError, match="published dpo pairs .* none in the training split"):
        build_pairs(rows, config, DIMENSIONS, {"dpo": [_published_pair("a", "dpo")]})
    with pytest.raises(ValueError, match="unknown pair variant"):
        build_pairs(rows, config, DIMENSIONS, {"kto": []})
