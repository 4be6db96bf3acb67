"""End to end: the data stages under real DVC, with the tiny profile (the session's shared run,
tests/servers/tiny_pipeline.py).

The run built the Multifaceted Collection and the pair files; `dvc status` is then clean; in a
copy, a changed `system_messages` param reruns exactly system_messages, gold_responses and
build_pairs; a rerun with nothing changed runs nothing.
"""

from __future__ import annotations

import pytest
import yaml
from servers.tiny_pipeline import copy_of, dvc, run, stages_run

DATA_STAGES = (
    "filter",
    "expand_seeds",
    "preference_sets",
    "system_messages",
    "gold_responses",
    "build_pairs",
)
COLLECTION_COLUMNS = {
    "main_source",
    "original_source",
    "preference_set",
    "system",
    "prompt",
    "output",
}


@pytest.mark.slow
def test_data_stages_under_dvc(tiny_pipeline, tmp_path):
    assert {"models", "dsp", *DATA_STAGES} <= set(stages_run(tiny_pipeline.log))
    pipeline = copy_of(tiny_pipeline, tmp_path / "copy")  # the params change below
    work, env = pipeline.work, pipeline.env

    import datasets

    datasets.config.HF_DATASETS_CACHE = tmp_path / "hf-cache"
    collection = datasets.load_dataset(
        "json", data_files=str(work / "data/multifaceted_collection.jsonl"), split="train"
    )
    assert COLLECTION_COLUMNS | {"instruction_id", "set_index"} <= set(collection.column_names)
    assert collection.num_rows >= 4
    for preference_set in collection["preference_set"]:
        assert [item["dimension"] for item in preference_set] == [
            "style",
            "background_knowledge",
            "informativeness",
            "harmlessness",
        ]
    for name in ("sft", "sft_third", "dpo", "orpo", "rm"):
        files = {
            split: str(work / f"data/pairs/{name}/{split}.jsonl") for split in ("train", "eval")
        }
        loaded = datasets.load_dataset("json", data_files=files)
        assert loaded["train"].num_rows > 0, name
    metrics = yaml.safe_load((work / "metrics/preference_sets.json").read_text())
    assert metrics["llm"]["items"] > 0 and metrics["valid_rate"] is not None
    for stage in DATA_STAGES:
        assert (work / f"metrics/{stage}.json").exists(), stage

    status = run(dvc("status"), work, env)
    assert "up to date" in status, status

    params = yaml.safe_load((work / "params.yaml").read_text())
    params["system_messages"]["num_examples"] = 1
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    second = run(dvc("repro", "build_pairs"), work, env)
    assert stages_run(second) == ["system_messages", "gold_responses", "build_pairs"]

    third = run(dvc("repro", "build_pairs"), work, env)
    assert stages_run(third) == []
