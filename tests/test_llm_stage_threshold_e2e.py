"""End to end under real DVC: an LLM data stage past its failure threshold fails loudly, writes
nothing, and after the endpoint is fixed a second `dvc repro` pays only for the failed items.

The teacher is the openai backend against a loopback OpenAI-compatible server
(tests/servers/fake_openai.py) that answers 500 to a third of the prompts until it is "fixed".
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
from pathlib import Path

import pytest
import yaml
from servers.dvc_project import isolated_env, run
from servers.fake_openai import FakeOpenAIServer

REPO = Path(__file__).resolve().parents[1]


def _broken_for_a_third(user_text: str) -> str | None:
    digest = hashlib.sha256(user_text.encode()).digest()
    return "500" if digest[0] % 3 == 0 else None


def _project(work: Path, base_url: str) -> None:
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for folder in ("stages", "src", "data/taxonomy"):
        shutil.copytree(REPO / folder, work / folder, ignore=ignore)
    params = yaml.safe_load((REPO / "profiles/tiny.yaml").read_text())
    params["llm"]["teacher"] = {
        **params["llm"]["teacher"],
        "backend": "openai",
        "model": "fake-teacher",
        "base_url": base_url,
        "max_retries": 0,
        "max_in_flight": 4,
        "timeout_s": 10,
        "max_invalid_retries": 1,
        "cache_dir": "~/.cache/janus/llm",  # JANUS_CACHE_DIR wins
    }
    params["expand_seeds"]["max_failed_fraction"] = 0.0  # the paper profile's setting
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    stage = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]["expand_seeds"]
    stage["deps"] = [dep for dep in stage["deps"] if dep != "models/base"]  # no local model
    (work / "dvc.yaml").write_text(yaml.safe_dump({"stages": {"expand_seeds": stage}}))
    shutil.copy(REPO / "requirements.lock", work / "requirements.lock")  # a dep of the stage


@pytest.mark.slow
def test_threshold_trips_then_a_fixed_endpoint_pays_only_for_the_failed_items(tmp_path):
    work = tmp_path / "repo"
    work.mkdir()
    env = isolated_env(
        tmp_path, JANUS_CACHE_DIR=str(tmp_path / "llm-cache"), PYTHONPATH=str(work / "src")
    )
    dvc = [sys.executable, "-m", "dvc"]
    with FakeOpenAIServer() as server:
        _project(work, server.base_url)
        run(["git", "init", "-q"], work, env)
        run([*dvc, "init", "-q"], work, env)

        server.fault_when = _broken_for_a_third
        failed = run([*dvc, "repro", "expand_seeds"], work, env, check=False)
        output = failed.stdout + failed.stderr
        assert failed.returncode != 0
        prompts = {json.dumps(body["messages"]) for body in server.bodies}
        broken = sum(_broken_for_a_third(json.loads(p)[-1]["content"]) is not None for p in prompts)
        assert 0 < broken < len(prompts)
        assert f"{broken} of {len(prompts)} items failed" in output
        assert "expand_seeds.max_failed_fraction" in output and "http_500" in output
        assert not (work / "data/seed_preferences.jsonl").exists()  # nothing written
        assert not (work / "metrics/expand_seeds.json").exists()
        runtime = json.loads((work / "runtime/expand_seeds.llm.json").read_text())
        assert runtime["requests"] == len(prompts)  # the failed ones counted as sent

        server.fault_when = None  # the endpoint is fixed
        server.reset_counts()
        run([*dvc, "repro", "expand_seeds"], work, env)
        assert server.http_requests == broken  # only the failed items were asked again
        assert (work / "data/seed_preferences.jsonl").exists()
        metrics = json.loads((work / "metrics/expand_seeds.json").read_text())
        assert metrics["llm"]["failed"] == 0 and metrics["llm"]["items"] == len(prompts)

        # a forced rerun from the warm cache: nothing sent, the very same metrics
        server.reset_counts()
        run([*dvc, "repro", "-f", "expand_seeds"], work, env)
        assert server.http_requests == 0
        assert json.loads((work / "metrics/expand_seeds.json").read_text()) == metrics
