"""Inference on several replicas and across a kill (issue 16): the answers depend only on the
seeded units, never on how many processes made them or how often the stage was started.

Real processes throughout: two replicas are two `python -m janus.infer.replica` processes on the
CPU, and the killed stage is a process stopped with SIGKILL while it generates."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from janus.accelerators import GPUEnvironmentError, require_gpu_environment
from janus.infer.completion_cache import CACHE_FILE
from janus.infer.generation import replica_devices
from janus.infer.responses import run_infer
from janus.io import read_json
from tests.sections import tiny_section

REPO = Path(__file__).resolve().parents[1]
BENCH = [
    {"id": f"q{i}", "source": "mf-test", "system": f"Answer in style {i}.", "prompt": "Hi " * i}
    for i in range(1, 6)
]


def _params(model_dir: Path, **engine):
    return tiny_section(
        "infer",
        models={"m": {"path": str(model_dir)}},
        best_of_n={},
        sampling={"max_tokens": 12},
        engine={"backend": "transformers", "device": "cpu", "batch_size": 2, **engine},
    )


def _write_bench(path: Path) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in BENCH))
    return path


def test_two_replicas_give_the_answers_of_one_in_the_same_order(
    tiny_model_dir, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)  # runtime/ is written here
    monkeypatch.setenv("JANUS_FAKE_CUDA_DEVICES", "0")
    bench = _write_bench(tmp_path / "bench.jsonl")
    outputs = {}
    for replicas in (1, 2):
        monkeypatch.setenv("JANUS_CACHE_DIR", str(tmp_path / f"cache-{replicas}"))
        out = tmp_path / f"responses-{replicas}.jsonl"
        metrics = run_infer(
            _params(tiny_model_dir, data_parallel_size=replicas),
            "m", bench, out, tmp_path / f"metrics-{replicas}.json",
        )
        runtime = read_json(tmp_path / "runtime" / "infer" / "m.json")
        # 5 items x 2 conditions = 10 sequences in batches of 2: 5 units, all generated here
        assert (runtime["replicas"], runtime["units_generated"]) == (replicas, 5)
        outputs[replicas] = (out.read_bytes(), metrics)
    assert outputs[1][0] == outputs[2][0]
    assert outputs[1][1] == outputs[2][1]
    rows = [json.loads(line) for line in outputs[2][0].decode().splitlines()]
    assert [(r["id"], r["condition"]) for r in rows] == [
        (row["id"], condition) for condition in ("system", "no_system") for row in BENCH
    ]


RUN = """
import sys
from janus.infer.responses import run_infer
from tests.sections import tiny_section
params = tiny_section(
    "infer", models={"m": {"path": sys.argv[1]}}, best_of_n={}, sampling={"max_tokens": 24},
    engine={"backend": "transformers", "device": "cpu", "batch_size": 1},
)
run_infer(params, "m", sys.argv[2], sys.argv[3], sys.argv[4])
"""


def _cached_units(cache_dir: Path) -> int:
    path = cache_dir / CACHE_FILE
    if not path.exists():
        return 0
    try:
        with sqlite3.connect(path, timeout=5) as connection:
            return connection.execute("SELECT COUNT(*) FROM completions").fetchone()[0]
    except sqlite3.OperationalError:  # the table is not created yet
        return 0


def _start(
    model_dir: Path, tmp_path: Path, cache: Path, name: str, gpus: int = 0, **options
) -> subprocess.Popen:
    env = dict(
        os.environ,
        JANUS_CACHE_DIR=str(cache),
        JANUS_FAKE_CUDA_DEVICES=str(gpus),
        PYTHONPATH=os.pathsep.join([str(REPO / "src"), str(REPO)]),
    )
    bench = _write_bench(tmp_path / "bench.jsonl")
    command = [sys.executable, "-c", RUN, str(model_dir), str(bench),
               str(tmp_path / f"{name}.jsonl"), str(tmp_path / f"{name}.json")]  # fmt: skip
    return subprocess.Popen(command, cwd=tmp_path, env=env, **options)


def test_a_killed_stage_resumes_generating_only_what_is_missing(tiny_model_dir, tmp_path):
    total = len(BENCH) * 2  # batch_size 1: one unit per sequence
    cache = tmp_path / "cache"
    process = _start(tiny_model_dir, tmp_path, cache, "resumed")
    deadline = time.monotonic() + 300
    while _cached_units(cache) == 0 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    before = _cached_units(cache)
    assert 0 < before < total, f"the kill came at {before} of {total} units"
    assert not (tmp_path / "resumed.jsonl").exists()

    assert _start(tiny_model_dir, tmp_path, cache, "resumed").wait() == 0
    runtime = read_json(tmp_path / "runtime" / "infer" / "m.json")
    assert (runtime["units_cached"], runtime["units_generated"]) == (before, total - before)

    assert _start(tiny_model_dir, tmp_path, tmp_path / "fresh", "fresh").wait() == 0
    assert (tmp_path / "resumed.jsonl").read_bytes() == (tmp_path / "fresh.jsonl").read_bytes()
    assert read_json(tmp_path / "resumed.json") == read_json(tmp_path / "fresh.json")

    # an unchanged rerun loads no model and generates nothing
    assert _start(tiny_model_dir, tmp_path, cache, "again").wait() == 0
    runtime = read_json(tmp_path / "runtime" / "infer" / "m.json")
    assert (runtime["units_cached"], runtime["units_generated"]) == (total, 0)
    assert runtime["load_seconds"] == 0


def test_replicas_split_the_gpus_visible_by_tensor_parallel_size(monkeypatch):
    engine = tiny_section("infer.engine")
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setenv("JANUS_FAKE_CUDA_DEVICES", "8")
    tp4 = engine.model_copy(update={"tensor_parallel_size": 4})
    assert replica_devices("vllm", tp4) == [["0", "1", "2", "3"], ["4", "5", "6", "7"]]
    assert replica_devices("transformers", tp4) == [[str(i)] for i in range(8)]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5")
    monkeypatch.setenv("JANUS_FAKE_CUDA_DEVICES", "2")
    assert replica_devices("vllm", engine) == [["3"], ["5"]]
    with pytest.raises(ValueError, match="tensor_parallel_size 4 needs more GPUs"):
        replica_devices("vllm", tp4)
    with pytest.raises(ValueError, match="data_parallel_size 3 x tensor_parallel_size 1"):
        replica_devices("vllm", engine.model_copy(update={"data_parallel_size": 3}))
    monkeypatch.setenv("JANUS_FAKE_CUDA_DEVICES", "0")
    assert replica_devices("transformers", engine) == [None]


def test_the_stage_on_a_cuda_machine_with_the_cpu_torch_stops_before_loading(
    tiny_model_dir, tmp_path
):
    # this machine's torch is the CPU build; the two GPUs are the faked ones
    process = _start(tiny_model_dir, tmp_path, tmp_path / "cache", "x", gpus=2,
                     stderr=subprocess.PIPE, text=True)  # fmt: skip
    _, stderr = process.communicate()
    assert process.returncode != 0
    assert "2 GPU(s) visible, but torch" in stderr and "make setup-gpu" in stderr
    assert not (tmp_path / "cache" / CACHE_FILE).exists()  # stopped before anything


def test_a_cuda_machine_with_the_cpu_environment_stops_with_the_command(monkeypatch):
    monkeypatch.setenv("JANUS_FAKE_CUDA_DEVICES", "2")
    monkeypatch.setattr("janus.accelerators.torch_cuda_build", lambda: None)
    with pytest.raises(GPUEnvironmentError, match="make setup-gpu"):
        require_gpu_environment("infer/m")
    monkeypatch.setattr("janus.accelerators.torch_cuda_build", lambda: "12.8")
    require_gpu_environment("infer/m")  # the GPU environment: nothing to say
