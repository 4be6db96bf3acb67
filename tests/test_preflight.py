"""`python -m janus preflight` and the checks stages run before they start: a loopback endpoint
that does not list the model, missing inputs (a real DVC project), a CUDA-less machine under a
multi-GPU launch config, hub revisions in a local HF cache, the disk estimate, and `forecast`
naming a model the endpoint does not serve."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from servers.fake_openai import FakeOpenAIServer

from janus.config.params import parse_params
from janus.preflight import disk
from janus.preflight.common import FAIL, OK, SKIP, WARN, PreflightFailed
from janus.preflight.disk import disk_checks
from janus.preflight.endpoints import key_checks, served_checks
from janus.preflight.gpus import gpu_checks
from janus.preflight.hub import hub_checks
from janus.preflight.inputs import input_checks
from janus.preflight.run import render
from janus.preflight.stage import before_stage
from janus.train.memory import count_parameters

REPO = Path(__file__).parents[1]
ENDPOINT = {
    "backend": "openai",
    "model": "retired-model",
    "api_key_env": "JANUS_TEST_KEY",
    "provider": "self-hosted",
}


@pytest.fixture()
def server():
    fake = FakeOpenAIServer().start()
    fake.served_models = ["served-model", "another-model"]
    yield fake
    fake.stop()


def _tiny_raw() -> dict:
    return yaml.safe_load((REPO / "profiles" / "tiny.yaml").read_text())


def _with_judge(raw: dict, server, model: str) -> dict:
    raw["llm"]["judge"].update(ENDPOINT, base_url=server.base_url, model=model)
    return raw


def _run(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    environ = {**os.environ, "PYTHONPATH": str(REPO / "src"), **(env or {})}
    environ.pop("JANUS_TEST_KEY", None)
    return subprocess.run(
        [sys.executable, "-m", "janus", *args],
        cwd=REPO, env=environ, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def test_unlisted_model_fails_naming_model_and_key_sending_only_the_list_call(server, tmp_path):
    profile = tmp_path / "profile.yaml"
    raw = _with_judge(_tiny_raw(), server, "retired-model")
    raw["train"]["common"]["accelerate_config"] = "configs/accelerate/deepspeed_zero3.yaml"
    raw["train"]["common"]["processes_per_node"] = 4
    profile.write_text(yaml.safe_dump(raw))
    done = _run("preflight", "--params", str(profile), env={"JANUS_FAKE_CUDA_DEVICES": "0"})
    assert done.returncode == 1, done.stdout + done.stderr
    failing = [line for line in done.stdout.splitlines() if f"  {FAIL}  " in line]
    assert any("llm.judge.model" in line and "'retired-model'" in line for line in failing)
    # the CUDA-less machine under a four-GPU launch config
    assert any(
        "train.common.accelerate_config" in line and "asks for 4" in line for line in failing
    )
    assert len(failing) == 2, done.stdout
    assert server.model_list_requests == 1  # the list, read once for the endpoint
    assert server.http_requests == 0  # no chat request: nothing that could be paid


def test_listed_model_and_enough_gpus_pass(server, tmp_path):
    profile = tmp_path / "profile.yaml"
    raw = _with_judge(_tiny_raw(), server, "served-model")
    raw["train"]["common"]["accelerate_config"] = "configs/accelerate/deepspeed_zero3.yaml"
    raw["train"]["common"]["processes_per_node"] = 4
    profile.write_text(yaml.safe_dump(raw))
    done = _run("preflight", "--params", str(profile), env={"JANUS_FAKE_CUDA_DEVICES": "4"})
    assert done.returncode == 0, done.stdout + done.stderr
    assert "all checks passed" in done.stdout
    assert server.http_requests == 0


def test_an_endpoint_without_a_model_list_gets_one_token_request(server):
    server.served_models = None  # like a server that has no /v1/models
    params = parse_params(_with_judge(_tiny_raw(), server, "any-model"))
    rows = served_checks([("llm.judge", params.llm.judge)])
    assert [row.status for row in rows] == [OK]
    assert server.http_requests == 1 and server.bodies[0]["max_tokens"] == 1
    # a stage's own check never sends a chat request
    before_stage(params, "llm.judge")
    assert server.http_requests == 1


def test_each_member_of_a_fleet_is_asked_for_its_list(server):
    with FakeOpenAIServer() as other:
        other.served_models = ["served-model"]
        server.served_models = ["another-model"]
        raw = _with_judge(_tiny_raw(), server, "served-model")
        raw["llm"]["judge"]["base_url"] = [server.base_url, other.base_url]
        rows = served_checks([("llm.judge", parse_params(raw).llm.judge)])
    status = {row.what: row.status for row in rows}
    assert status == {
        f"llm.judge.model @ {server.base_url}": FAIL,
        f"llm.judge.model @ {other.base_url}": OK,
    }


def test_a_stage_stops_before_it_starts(server, monkeypatch):
    params = parse_params(_with_judge(_tiny_raw(), server, "retired-model"))
    with pytest.raises(PreflightFailed, match=r"llm\.judge\.model.*retired-model"):
        before_stage(params, "llm.judge")
    assert server.http_requests == 0
    # api.openai.com with no key: the key row fails, and nothing is asked
    raw = _tiny_raw()
    raw["llm"]["judge"].update(ENDPOINT, base_url=None)
    monkeypatch.delenv("JANUS_TEST_KEY", raising=False)
    with pytest.raises(PreflightFailed, match=r"llm\.judge\.api_key_env.*JANUS_TEST_KEY"):
        before_stage(parse_params(raw), "llm.judge")
    monkeypatch.setenv("JANUS_TEST_KEY", "sk-secret-value")
    rows = key_checks([("llm.judge", parse_params(raw).llm.judge)])
    assert rows[0].status == OK and "sk-secret-value" not in render(rows)


def test_the_judge_stage_checks_its_judge_before_it_reads_anything(server, tmp_path):
    (tmp_path / "params.yaml").write_text(
        yaml.safe_dump(_with_judge(_tiny_raw(), server, "retired-model"))
    )
    environ = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    done = subprocess.run(
        [sys.executable, str(REPO / "stages" / "judge.py"), "--bench", "absent.jsonl",
         "--responses", "absent", "--out", "out"],
        cwd=tmp_path, env=environ, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode != 0
    assert "PreflightFailed" in done.stderr and "llm.judge.model" in done.stderr
    assert "absent.jsonl" not in done.stderr  # stopped before reading its inputs
    assert server.http_requests == 0 and not (tmp_path / "out").exists()


def test_gpu_rows_follow_the_launch_config_and_engines(monkeypatch):
    raw = _tiny_raw()
    raw["train"]["common"]["accelerate_config"] = "configs/accelerate/deepspeed_zero3.yaml"
    raw["train"]["common"]["processes_per_node"] = 4
    raw["infer"]["engine"].update(backend="vllm", tensor_parallel_size=2)
    params = parse_params(raw)
    monkeypatch.setenv("JANUS_FAKE_CUDA_DEVICES", "2")
    rows = {row.what: row for row in gpu_checks(params, REPO)}
    assert rows["train.common.accelerate_config"].status == FAIL  # 4 asked, 2 present
    assert rows["infer.engine.tensor_parallel_size"].status == OK
    with pytest.raises(PreflightFailed, match="asks for 4 GPU"):
        before_stage(params, "train.common.accelerate_config", root=REPO)
    before_stage(params, "infer.engine", root=REPO)  # the infer stage's own need is met


def _dvc_project(root: Path) -> None:
    from dvc.repo import Repo

    Repo.init(str(root), no_scm=True).close()
    (root / "dvc.yaml").write_text(
        yaml.safe_dump(
            {
                "stages": {
                    "make": {"cmd": "true", "deps": ["seed.txt"], "outs": ["made"]},
                    "use": {
                        "cmd": "true",
                        "deps": ["made/part.txt", "${input}", "code.py"],
                        "outs": ["result.txt"],
                    },
                }
            }
        )
    )
    (root / "params.yaml").write_text("input: present.txt\n")
    for name in ("seed.txt", "present.txt", "code.py"):
        (root / name).write_text("x\n")


def test_missing_inputs_are_named_and_made_ones_are_not(tmp_path):
    _dvc_project(tmp_path)
    assert [row.status for row in input_checks(tmp_path, tmp_path / "params.yaml")] == [
        OK
    ]
    # another params file: dvc.yaml's ${input} resolved from it, as with that profile in place
    other = tmp_path / "other.yaml"
    other.write_text("input: absent.txt\n")
    (tmp_path / "seed.txt").unlink()
    rows = input_checks(tmp_path, other)
    assert {row.what: row.status for row in rows} == {"absent.txt": FAIL, "seed.txt": FAIL}
    assert all("read by" in row.detail for row in rows)


def _cache_snapshot(cache: Path, repo_type: str, repo_id: str, commit: str) -> None:
    folder = cache / f"{repo_type}s--{repo_id.replace('/', '--')}"
    (folder / "refs").mkdir(parents=True)
    (folder / "refs" / "main").write_text(commit)
    (folder / "snapshots" / commit).mkdir(parents=True)
    (folder / "snapshots" / commit / "README.md").write_text("cached\n")


def test_hub_references_resolve_offline_in_the_local_cache(tmp_path, monkeypatch):
    from huggingface_hub import constants

    commit = "a" * 40
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    _cache_snapshot(tmp_path, "dataset", "owner/cached", commit)
    _cache_snapshot(tmp_path, "model", "owner/model", commit)
    raw = {
        "filter": {
            "sources": {
                "cached": {"path": "hub:owner/cached", "revision": commit, "enabled": True},
                "gone": {"path": "hub:owner/absent", "revision": commit, "enabled": True},
                "off": {"path": "hub:owner/ignored", "enabled": False},
            }
        },
        "infer": {"hub_models": {"m": {"hub_id": "owner/model", "revision": "main"}}},
        "toxicity": {"classifier": {"model": "owner/model", "revision": commit}},
        "bench": {"published": "hub:owner/cached", "published_revision": commit},
        # an id alone may name a dataset: tried as a model, then as a dataset
        "toxicity_inputs": {"prompts_hub_id": "owner/cached", "prompts_revision": commit},
        # an LLM role's hub model (the open judge), pinned by model_revision
        "llm": {"open_judge": {"model": "hub:owner/model", "model_revision": commit}},
    }
    rows = {row.what: row for row in hub_checks(raw, offline=True)}
    assert set(rows) == {
        "filter.sources.cached.path (owner/cached)",
        "filter.sources.gone.path (owner/absent)",
        "infer.hub_models.m.hub_id (owner/model)",
        "toxicity.classifier.model (owner/model)",
        "bench.published (owner/cached)",
        "toxicity_inputs.prompts_hub_id (owner/cached)",
        "llm.open_judge.model (owner/model)",
    }
    assert rows["filter.sources.cached.path (owner/cached)"].status == OK
    assert rows["bench.published (owner/cached)"].status == OK
    assert rows["filter.sources.gone.path (owner/absent)"].status == FAIL
    unpinned = rows["infer.hub_models.m.hub_id (owner/model)"]
    assert unpinned.status == WARN and "unpinned (main)" in unpinned.detail
    assert rows["toxicity.classifier.model (owner/model)"].status == OK
    assert rows["toxicity_inputs.prompts_hub_id (owner/cached)"].status == OK
    assert rows["llm.open_judge.model (owner/model)"].status == OK  # found as a model


def test_disk_estimate_from_the_base_config(tmp_path, monkeypatch):
    from transformers import AutoConfig, LlamaConfig

    base = tmp_path / "base"
    LlamaConfig(
        vocab_size=1000, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=4, tie_word_embeddings=False,
    ).save_pretrained(base)  # fmt: skip
    # embeddings and head 2 x 1000 x 64; per layer 4 x 64 x 64 attention, 3 x 64 x 128 MLP and
    # two norms of 64; one final norm
    count = 2 * 1000 * 64 + 2 * (4 * 64 * 64 + 3 * 64 * 128 + 2 * 64) + 64
    assert count_parameters(AutoConfig.from_pretrained(base), "sft") == count
    params = parse_params(_tiny_raw())
    [row] = disk_checks(params, tmp_path, base, gpus=False)
    assert row.status == OK and "6 checkpoints" in row.detail and "at 4 bytes" in row.detail
    monkeypatch.setattr(disk.shutil, "disk_usage", lambda _: type("U", (), {"free": 10})())
    [row] = disk_checks(params, tmp_path, base, gpus=False)
    assert row.status == FAIL
    [row] = disk_checks(params, tmp_path, tmp_path / "not-built", gpus=False)
    assert row.status == SKIP


def test_forecast_names_a_model_the_endpoint_does_not_serve(server, tmp_path):
    profile = tmp_path / "profile.yaml"
    raw = _tiny_raw()
    raw["llm"]["teacher"].update(ENDPOINT, base_url=server.base_url, model="retired-model")
    profile.write_text(yaml.safe_dump(raw))
    done = _run("forecast", "--params", str(profile))
    assert done.returncode == 0, done.stderr
    assert "NOT SERVED: llm.teacher.model" in done.stdout and "'retired-model'" in done.stdout
    assert server.http_requests == 0 and server.model_list_requests == 1
