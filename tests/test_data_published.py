"""Stage `published_collection`: the published Multifaceted Collection and its pair variants, read
from local files or through `datasets.load_dataset` (the hub code path), every row checked against
`janus.data.rows`, bad rows counted by reason; and training from it without generating anything.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import get_args

import pytest
import yaml

from janus.config.params import load_params
from janus.config.published_collection import PublishedCollectionSection
from janus.config.sources import SourceConfig
from janus.data.common import read_preference_set_rows
from janus.data.pairs import build_pairs, read_collection_source
from janus.data.published import (
    COLLECTION_FILE,
    PAIR_COLUMNS,
    import_collection,
    import_pairs,
    import_published,
    write_published,
)
from janus.data.rows import PAIR_VARIANTS
from janus.data.sources import SourceError
from janus.data.taxonomy import load_taxonomy
from tests.hub_cache import SHA, hub_repo

REPO = Path(__file__).resolve().parents[1]
DIMENSIONS = load_taxonomy(REPO / "data/taxonomy/seed_taxonomy.yaml").keys
SAMPLE = REPO / "data/published"


def _preference_set(drop: str | None = None) -> list[dict[str, str]]:
    return [
        {
            "description": f"A {dimension} preference. It has two sentences.",
            "dimension": dimension,
            "preference": f"{dimension} choice",
            "subdimension": f"{dimension} aspect",
        }
        for dimension in DIMENSIONS
        if dimension != drop
    ]


def _row(prompt: str = "Name a river.", system: str = "You are terse.", **changes) -> dict:
    row = {
        "main_source": "Nectar",
        "original_source": "sharegpt",
        "preference_set": _preference_set(),
        "system": system,
        "prompt": prompt,
        "output": "The Danube.",
    }
    row.update(changes)
    return row


def _pair(prompt: str = "Name a river.", chosen: str = "Nile.", rejected: str = "Rhine.") -> dict:
    def conversation(answer):
        return [{"content": prompt, "role": "user"}, {"content": answer, "role": "assistant"}]

    return {
        "main_source": "Nectar",
        "original_source": "sharegpt",
        "system": "You are terse.",
        "prompt": prompt,
        "chosen": conversation(chosen),
        "rejected": conversation(rejected),
    }


def _write(path: Path, rows: list) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "".join((row if isinstance(row, str) else json.dumps(row)) + "\n" for row in rows)
    )
    return path


def test_the_repo_sample_imports_with_its_bad_rows_counted():
    params = load_params(REPO / "params.yaml")
    collection, pairs, metrics = import_published(params.published_collection, DIMENSIONS, REPO)
    assert metrics["collection"]["rows"] == 13 and metrics["collection"]["valid"] == 11
    assert metrics["collection"]["bad_rows"] == {
        "invalid:preference_set": 1,
        "missing:system": 1,
    }
    assert metrics["dpo"]["bad_rows"] == {"invalid:rejected": 1}  # an empty answer
    assert set(pairs) == {"dpo", "orpo", "rm"}
    assert metrics["bad_rows"] == 3
    # the collection comes out in the columns gold_responses writes
    assert set(collection[0]) == {
        "main_source",
        "original_source",
        "preference_set",
        "system",
        "prompt",
        "output",
        "instruction_id",
        "set_index",
    }
    by_instruction: dict[str, list[int]] = {}
    for row in collection:
        by_instruction.setdefault(row["instruction_id"], []).append(row["set_index"])
    assert sorted(len(v) for v in by_instruction.values()) == [2, 3, 3, 3]
    assert all(sorted(v) == list(range(len(v))) for v in by_instruction.values())
    for rows in pairs.values():
        assert {"system", "prompt", "chosen", "rejected", "instruction_id"} <= set(rows[0])
        assert all(row["chosen"] != row["rejected"] for row in rows)


BAD_COLLECTION_ROWS = [
    ("{not json", "malformed"),
    ('["a", "list"]', "malformed"),
    (_row(system=None), "wrong_type:system"),
    (_row(output=7), "wrong_type:output"),
    (_row(prompt="   "), "empty:prompt"),
    ({k: v for k, v in _row().items() if k != "output"}, "missing:output"),
    (_row(preference_set=[]), "empty:preference_set"),
    (_row(preference_set="style"), "wrong_type:preference_set"),
    (_row(preference_set=_preference_set(drop="style")), "invalid:preference_set"),
    (
        _row(preference_set=[*_preference_set(), _preference_set()[0]]),
        "invalid:preference_set",
    ),
    (
        _row(preference_set=[{**_preference_set()[0], "description": ""}, *_preference_set()[1:]]),
        "empty:preference_set.description",
    ),
]


@pytest.mark.parametrize(("bad", "reason"), BAD_COLLECTION_ROWS)
def test_a_bad_collection_row_is_counted_by_reason(tmp_path, bad, reason):
    path = _write(tmp_path / "mc.jsonl", [_row(), bad, _row(prompt="Name a lake.")])
    rows, metrics = import_collection(
        SourceConfig(path=str(path), revision=None, split="train", enabled=True), DIMENSIONS, None
    )
    assert len(rows) == 2
    assert metrics["bad_rows"] == {reason: 1}
    assert metrics["rows"] == 3 and metrics["valid"] == 2


def test_duplicates_are_counted_and_extra_columns_ignored(tmp_path):
    path = _write(
        tmp_path / "mc.jsonl",
        [_row(extra="ignored"), _row(), _row(system="You are verbose."), _row(prompt="Other?")],
    )
    rows, metrics = import_collection(
        SourceConfig(path=str(path), revision=None, split="train", enabled=True), DIMENSIONS, None
    )
    assert metrics["bad_rows"] == {"duplicate": 1}
    assert [row["set_index"] for row in rows] == [0, 1, 0]
    assert "extra" not in rows[0]
    assert rows[0]["instruction_id"] == rows[1]["instruction_id"] != rows[2]["instruction_id"]


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"chosen": []}, "empty:chosen"),
        ({"chosen": 7}, "wrong_type:chosen"),
        ({"rejected": ""}, "invalid:rejected"),
        ({"rejected": [{"content": "Name a river.", "role": "user"}]}, "invalid:rejected"),
        ({"rejected": [{"content": "x", "role": "narrator"}]}, "wrong_value:rejected.role"),
        ({"system": ""}, "empty:system"),
    ],
)
def test_a_bad_pair_row_is_counted_by_reason(tmp_path, change, reason):
    path = _write(tmp_path / "dpo.jsonl", [_pair(), {**_pair(), **change}])
    rows, metrics = import_pairs(
        "dpo", SourceConfig(path=str(path), revision=None, split="train", enabled=True), None
    )
    assert len(rows) == 1 and metrics["bad_rows"] == {reason: 1}
    assert rows[0]["chosen"] == "Nile." and rows[0]["rejected"] == "Rhine."


def test_the_dpo_layout_stores_answers_as_text(tmp_path):
    flat = {**_pair(), "chosen": "Nile.", "rejected": "Rhine."}
    path = _write(tmp_path / "dpo.jsonl", [flat, _pair(prompt="Q?")])
    rows, metrics = import_pairs(
        "dpo", SourceConfig(path=str(path), revision=None, split="train", enabled=True), None
    )
    assert metrics["bad_rows"] == {}
    assert [(row["chosen"], row["rejected"]) for row in rows] == [("Nile.", "Rhine.")] * 2


def test_identical_answers_are_not_a_pair(tmp_path):
    path = _write(tmp_path / "orpo.jsonl", [_pair(), _pair(prompt="Q?", rejected="Nile.")])
    rows, metrics = import_pairs(
        "orpo", SourceConfig(path=str(path), revision=None, split="train", enabled=True), None
    )
    assert len(rows) == 1 and metrics["bad_rows"] == {"identical_responses": 1}


def test_a_pair_with_a_system_turn_uses_the_last_answer(tmp_path):
    pair = _pair()
    pair["chosen"] = [{"content": "You are terse.", "role": "system"}, *pair["chosen"]]
    path = _write(tmp_path / "rm.jsonl", [pair])
    rows, _ = import_pairs("rm", SourceConfig(path=str(path), revision=None, split="train", enabled=True), None)
    assert rows[0]["chosen"] == "Nile."


def test_nothing_valid_is_an_error_that_names_the_file(tmp_path):
    path = _write(tmp_path / "mc.jsonl", [_row(system="")])
    with pytest.raises(SourceError, match=r"mc.jsonl\): none of its 1 rows is valid"):
        import_collection(
            SourceConfig(path=str(path), revision=None, split="train", enabled=True), DIMENSIONS, None
        )


def test_max_rows_reads_only_the_first_rows(tmp_path):
    path = _write(tmp_path / "mc.jsonl", [_row(prompt=f"Q{i}?") for i in range(5)])
    rows, metrics = import_collection(
        SourceConfig(path=str(path), revision=None, split="train", enabled=True), DIMENSIONS, 2
    )
    assert len(rows) == 2 and metrics["rows"] == 2


def test_parquet_and_the_hub_code_path(tmp_path, monkeypatch):
    """A Parquet file in the hub repository layout (data/train-*.parquet), read once as a local
    file and once as `hub:kaist-ai/...` at a revision (janus.hf_loading, an offline hub cache)."""
    import datasets

    rows = [_row(prompt=f"Q{i}?") for i in range(3)] + [_row(prompt="Q3?", system="")]
    pair_rows = [_pair(prompt=f"Q{i}?") for i in range(2)]
    hub_dpo = hub_repo(monkeypatch, tmp_path, "kaist-ai/Multifaceted-Collection-DPO")
    hub = hub_repo(monkeypatch, tmp_path, "kaist-ai/Multifaceted-Collection")
    (hub / "data").mkdir(parents=True)
    (hub_dpo / "data").mkdir(parents=True)
    datasets.Dataset.from_list(rows).to_parquet(hub / "data/train-00000-of-00001.parquet")
    datasets.Dataset.from_list(pair_rows).to_parquet(hub_dpo / "data/train-00000-of-00001.parquet")

    def hub_source(name: str) -> SourceConfig:
        return SourceConfig(path=f"hub:{name}", revision=SHA, split="train", enabled=True)

    config = PublishedCollectionSection(
        collection=hub_source("kaist-ai/Multifaceted-Collection"),
        variants={"dpo": hub_source("kaist-ai/Multifaceted-Collection-DPO")},
        max_rows=None,
    )
    collection, pairs, metrics = import_published(config, DIMENSIONS)
    local = import_collection(
        SourceConfig(
            path=str(hub / "data/train-00000-of-00001.parquet"), revision=None, split="train",
            enabled=True,
        ),
        DIMENSIONS,
        None,
    )
    assert collection == local[0]
    assert len(collection) == 3 and metrics["collection"]["bad_rows"] == {"empty:system": 1}
    assert [row["chosen"] for row in pairs["dpo"]] == ["Nile."] * 2

    missing = config.model_copy(update={"collection": hub_source("kaist-ai/nope")})
    with pytest.raises(SourceError, match="could not be loaded"):
        import_published(missing, DIMENSIONS)


def test_build_pairs_reads_the_imported_collection(tmp_path):
    params = load_params(REPO / "params.yaml")
    collection, _, _ = import_published(params.published_collection, DIMENSIONS, REPO)
    path = _write(tmp_path / "collection.jsonl", collection)
    rows, dimensions = read_preference_set_rows(path)
    assert dimensions == DIMENSIONS
    files, metrics = build_pairs(rows, params.build_pairs, dimensions)
    assert metrics["rows"] == 11
    assert files["sft"]["train"] and files["dpo"]["train"]
    for pair in files["dpo"]["train"]:
        assert pair["chosen"] != pair["rejected"]


def test_the_published_folder_feeds_each_trainer_its_variant(tmp_path):
    """`build_pairs.collection` = the stage's folder: the published collection for SFT, and the
    published DPO/ORPO/RM rows for the trainers, split by instruction with the SFT rows."""
    params = load_params(REPO / "params.yaml")
    collection, pairs, _ = import_published(params.published_collection, DIMENSIONS, REPO)
    write_published(tmp_path / "published", collection, pairs)
    assert sorted(p.name for p in (tmp_path / "published/pairs").iterdir()) == [
        "dpo.jsonl",
        "orpo.jsonl",
        "rm.jsonl",
    ]
    rows, dimensions, published = read_collection_source(tmp_path / "published")
    assert published == pairs and len(rows) == 11
    files, metrics = build_pairs(rows, params.build_pairs, dimensions, published)
    assert metrics["pairs_source"] == dict.fromkeys(PAIR_VARIANTS, "published")
    for variant in PAIR_VARIANTS:
        got = files[variant]["train"] + files[variant]["eval"]
        assert sorted(got, key=str) == sorted(pairs[variant], key=str), variant
        assert set(got[0]) == set(PAIR_COLUMNS)
        assert files[variant]["train"] and files[variant]["eval"]  # 4 instructions: 3 + 1
    eval_ids = {row["instruction_id"] for row in files["sft"]["eval"]}
    assert {row["instruction_id"] for v in PAIR_VARIANTS for row in files[v]["eval"]} == eval_ids
    # the collection file alone: pairs by E.1 for every trainer
    _, _, none = read_collection_source(tmp_path / "published" / COLLECTION_FILE)
    assert none == {}


def test_disabled_variants_and_collection_are_not_imported(tmp_path):
    config = load_params(REPO / "params.yaml").published_collection
    off = config.variants["orpo"].model_copy(update={"enabled": False})
    config = config.model_copy(update={"variants": {**config.variants, "orpo": off}})
    collection, pairs, metrics = import_published(config, DIMENSIONS, REPO)
    assert sorted(pairs) == ["dpo", "rm"] and "orpo" not in metrics
    write_published(tmp_path / "published", collection, pairs)
    _, _, published = read_collection_source(tmp_path / "published")
    assert sorted(published) == ["dpo", "rm"]  # orpo: E.1's pairs from the collection

    nothing = config.model_copy(
        update={"collection": config.collection.model_copy(update={"enabled": False})}
    )
    assert import_published(nothing, DIMENSIONS, REPO) == ([], {}, {"enabled": False})
    write_published(tmp_path / "empty", [], {})
    assert (tmp_path / "empty").is_dir() and not any((tmp_path / "empty").iterdir())
    with pytest.raises(FileNotFoundError, match="collection.enabled true"):
        read_collection_source(tmp_path / "empty")


def test_a_pair_file_without_a_column_is_an_error_that_names_the_line(tmp_path):
    params = load_params(REPO / "params.yaml")
    collection, pairs, _ = import_published(params.published_collection, DIMENSIONS, REPO)
    pairs["dpo"][1].pop("rejected")
    write_published(tmp_path / "published", collection, pairs)
    with pytest.raises(ValueError, match=r"dpo.jsonl:2: missing \['rejected'\]"):
        read_collection_source(tmp_path / "published")


def test_the_variants_are_the_configs_and_the_trainers():
    variants = PublishedCollectionSection.model_fields["variants"].annotation
    assert set(get_args(get_args(variants)[0])) == set(PAIR_VARIANTS)
    dvc = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    data = {key: item["data"] for key, item in dvc["train"]["foreach"].items()}
    assert data["dpo"] == "data/pairs/dpo" and data["orpo"] == "data/pairs/orpo"
    assert "--data data/pairs/rm" in dvc["rm"]["cmd"]


@pytest.mark.parametrize(
    "params_file", ["params.yaml", "profiles/tiny.yaml", "profiles/paper.yaml"]
)
def test_profiles_configure_the_published_path(params_file):
    params = load_params(REPO / params_file)
    assert set(params.published_collection.variants) == {"dpo", "orpo", "rm"}
    if params_file == "profiles/paper.yaml":
        assert params.published_collection.collection.path == "hub:kaist-ai/Multifaceted-Collection"
    else:
        assert (REPO / params.published_collection.collection.path).exists()


# -- training from the published data, under real DVC ----------------------------------------

STAGES = (
    "models",
    "published_collection",
    "build_pairs",
    "train@sft",
    "train@sft_third",
    "train@dpo",
)


def _stages_run(output: str) -> list[str]:
    return re.findall(r"Running stage '([^']+)'", output)


@pytest.mark.slow
def test_train_from_the_published_collection_without_generating(tmp_path):
    work = tmp_path / "repo"
    work.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for folder in ("stages", "src", "configs", "data/published", "data/taxonomy"):
        shutil.copytree(REPO / folder, work / folder, ignore=ignore)
    shutil.copy(REPO / ".dvcignore", work / ".dvcignore")
    params = yaml.safe_load((REPO / "profiles/tiny.yaml").read_text())
    params["build_pairs"]["collection"] = "data/published_collection"  # and its DPO/ORPO/RM pairs
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    # The whole pipeline: DVC must run only the published branch of it.
    shutil.copy(REPO / "dvc.yaml", work / "dvc.yaml")
    shutil.copy(REPO / "requirements.lock", work / "requirements.lock")  # a dep of LLM stages
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "JANUS_CACHE_DIR": str(tmp_path / "llm-cache"),
        "HF_HUB_OFFLINE": "1",
        "OMP_NUM_THREADS": "1",
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/mlflow.db",
    }

    def run(*args: str) -> str:
        done = subprocess.run(args, cwd=work, env=env, capture_output=True, text=True, timeout=900)
        output = done.stdout + done.stderr
        assert done.returncode == 0, f"{' '.join(args)} failed:\n{output[-4000:]}"
        return output

    dvc = (sys.executable, "-m", "dvc")
    run("git", "init", "-q")
    run(*dvc, "init", "-q")
    first = run(*dvc, "repro", "train@sft", "train@dpo")
    assert set(_stages_run(first)) == set(STAGES)  # no filter, no teacher, no gold responses
    assert not (work / "data/multifaceted_collection.jsonl").exists()
    assert (work / "checkpoints/sft/config.json").exists()
    assert (work / "checkpoints/dpo/config.json").exists()
    # Janus+DPO trained on the published DPO rows, every one of them, split by instruction
    published = (work / "data/published_collection/pairs/dpo.jsonl").read_text().splitlines()
    trained = [
        line
        for split in ("train", "eval")
        for line in (work / f"data/pairs/dpo/{split}.jsonl").read_text().splitlines()
    ]
    assert sorted(trained) == sorted(published) and len(published) == 4
    metrics = json.loads((work / "metrics/published_collection.json").read_text())
    assert metrics["collection"]["valid"] == 11 and metrics["bad_rows"] == 3
    pairs = json.loads((work / "metrics/build_pairs.json").read_text())
    assert pairs["rows"] == 11
    assert pairs["pairs_source"] == dict.fromkeys(PAIR_VARIANTS, "published")
    assert "Data and pipelines are up to date" in run(*dvc, "status", "train@sft", "train@dpo")
