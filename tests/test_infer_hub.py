"""Hub models are rows through the same infer path: `from_pretrained(hub_id, revision=...)`.

No network: the tiny model is laid out as a Hugging Face hub cache (models--owner--name with a
snapshot per commit and refs/main), and the hub library runs offline, so the real resolution of
a hub id and revision is what loads it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from janus.config.common import ConfigError
from janus.config.infer import InferSection
from janus.config.params import parse_params
from tests.sections import tiny_section  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
COMMIT = "0123456789abcdef0123456789abcdef01234567"

RUN = """
import json, sys
from janus.infer.responses import run_infer
from tests.sections import tiny_section
params = tiny_section(
    "infer", models={}, best_of_n={},
    hub_models={"pub": {"hub_id": "janus-test/tiny", "revision": sys.argv[1],
                        "prompt_format": "chat_template"}},
    sampling={"max_tokens": 4}, engine={"backend": "transformers", "device": "cpu"},
)
print(json.dumps(run_infer(params, "pub", sys.argv[2], sys.argv[3], sys.argv[4])))
"""


@pytest.fixture(scope="module")
def hub_cache(tiny_model_dir, tmp_path_factory) -> Path:
    cache = tmp_path_factory.mktemp("hf") / "hub"
    repo = cache / "models--janus-test--tiny"
    shutil.copytree(tiny_model_dir, repo / "snapshots" / COMMIT)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(COMMIT)
    return cache


def _run(hub_cache: Path, tmp_path: Path, revision: str) -> subprocess.CompletedProcess:
    tmp_path.mkdir(parents=True, exist_ok=True)
    bench = tmp_path / "bench.jsonl"
    bench.write_text(
        json.dumps({"id": "b1", "source": "alpaca_eval", "system": "Be brief.", "prompt": "Hi"})
        + "\n"
    )
    env = dict(
        os.environ,
        HF_HUB_CACHE=str(hub_cache),
        HF_HUB_OFFLINE="1",
        PYTHONPATH=os.pathsep.join([str(REPO / "src"), str(REPO)]),
    )
    return subprocess.run(
        [
            sys.executable,
            "-c",
            RUN,
            revision,
            str(bench),
            str(tmp_path / "responses" / "pub.jsonl"),
            str(tmp_path / "metrics" / "pub.json"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )


def test_a_hub_id_answers_the_bench_through_the_checkpoint_path(hub_cache, tmp_path):
    done = _run(hub_cache, tmp_path, "main")
    assert done.returncode == 0, done.stderr[-2000:]
    metrics = json.loads(done.stdout.strip().splitlines()[-1])
    assert metrics["kind"] == "hub" and metrics["hub_id"] == "janus-test/tiny"
    assert metrics["revision"] == "main" and metrics["responses"] == 2
    rows = [json.loads(line) for line in (tmp_path / "responses" / "pub.jsonl").open()]
    assert [row["condition"] for row in rows] == ["system", "no_system"]
    assert all(row["model"] == "pub" for row in rows)


def test_a_pinned_revision_loads_and_an_unknown_one_fails(hub_cache, tmp_path):
    assert _run(hub_cache, tmp_path / "a", COMMIT).returncode == 0
    missing = _run(hub_cache, tmp_path / "b", "f" * 40)
    assert missing.returncode != 0  # offline, a revision not in the cache cannot load
    assert "ffffffff" in missing.stderr or "offline" in missing.stderr.lower()


def test_hub_model_entries_are_validated():
    with pytest.raises(ValueError, match="hub_id"):
        InferSection(
            hub_models={"x": {"hub_id": "no-owner", "revision": "main", "prompt_format": "mistral"}}
        )
    with pytest.raises(ValueError, match="prompt_format"):
        InferSection(hub_models={"x": {"hub_id": "a/b", "revision": "main"}})
    with pytest.raises(ValueError, match="in both models and hub_models"):
        tiny_section(
            "infer",
            models={"x": {"path": "p"}},
            best_of_n={},
            hub_models={"x": {"hub_id": "a/b", "revision": "main", "prompt_format": "mistral"}},
        )


def test_the_paper_profile_lists_the_papers_rows():
    import yaml

    raw = yaml.safe_load((REPO / "profiles/paper.yaml").read_text())
    params = parse_params(raw)
    hub = {entry.hub_id for entry in params.infer.hub_models.values()}
    assert {
        "kaist-ai/janus-7b",
        "mistralai/Mistral-7B-Instruct-v0.2",
        "meta-llama/Meta-Llama-3-8B-Instruct",
    } <= hub
    # the retired API rows are paper-only: the run calls today's served snapshot instead
    endpoints = {entry.model for entry in params.infer.endpoints.values()}
    assert endpoints == {"gpt-4.1-2025-04-14"}
    assert {"GPT-3.5-Turbo-0125", "GPT-4-0613", "GPT-4-Turbo-0125"} <= set(params.scorecard.paper_only)
    raw["helpfulness"]["models"].append("not-a-model")
    with pytest.raises(ConfigError, match="not-a-model"):
        parse_params(raw)
