"""End to end: the data stages under real DVC in a fresh repository, with the tiny profile.

`dvc repro build_pairs` builds the Multifaceted Collection and the pair files; `dvc status` is then
clean; a changed `system_messages` param reruns exactly system_messages, gold_responses and
build_pairs; a rerun with nothing changed runs nothing.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
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


def _copy_pipeline(work: Path) -> None:
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for folder in ("stages", "src", "data/sources", "data/taxonomy"):
        shutil.copytree(REPO / folder, work / folder, ignore=ignore)
    shutil.copy(REPO / ".dvcignore", work / ".dvcignore")
    shutil.copy(REPO / "requirements.lock", work / "requirements.lock")  # a dep of LLM stages
    shutil.copy(REPO / "profiles/tiny.yaml", work / "params.yaml")
    # Only the stages this test is about (and `models`, which they need): the other helpers'
    # stages are tested by their own end-to-end tests.
    pipeline = yaml.safe_load((REPO / "dvc.yaml").read_text())
    stages = {name: pipeline["stages"][name] for name in ("models", "dsp", *DATA_STAGES)}
    (work / "dvc.yaml").write_text(yaml.safe_dump({"stages": stages}, sort_keys=False))


def _run(args: list[str], work: Path, env: dict[str, str]) -> str:
    done = subprocess.run(args, cwd=work, env=env, capture_output=True, text=True, timeout=600)
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"{' '.join(args)} failed:\n{output[-4000:]}"
    return output


def _stages_run(output: str) -> list[str]:
    return re.findall(r"Running stage '([^']+)'", output)


@pytest.mark.slow
def test_data_stages_under_dvc(tmp_path):
    work = tmp_path / "repo"
    work.mkdir()
    _copy_pipeline(work)
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "JANUS_CACHE_DIR": str(tmp_path / "llm-cache"),
        "HF_HUB_OFFLINE": "1",
        # The tiny model gains nothing from threads, and on a shared 2-core runner torch's
        # spinning intra-op threads make each step many times slower.
        "OMP_NUM_THREADS": "1",
    }
    dvc = [sys.executable, "-m", "dvc"]
    _run(["git", "init", "-q"], work, env)
    _run([*dvc, "init", "-q"], work, env)
    shutil.copy(REPO / ".dvc/config", work / ".dvc/config")

    first = _run([*dvc, "repro", "build_pairs"], work, env)
    assert set(_stages_run(first)) == {"models", "dsp", *DATA_STAGES}

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

    status = _run([*dvc, "status"], work, env)
    assert "up to date" in status, status

    params = yaml.safe_load((work / "params.yaml").read_text())
    params["system_messages"]["num_examples"] = 1
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    second = _run([*dvc, "repro", "build_pairs"], work, env)
    assert _stages_run(second) == ["system_messages", "gold_responses", "build_pairs"]

    third = _run([*dvc, "repro", "build_pairs"], work, env)
    assert _stages_run(third) == []
