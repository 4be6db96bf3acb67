"""A streaming data stage at scale: `gold_responses` on N synthetic system-message rows, and on
10x N, side by side, each in a fresh process, against the loopback OpenAI-compatible server of
`benchmarks/llm_scale.py` (tests/servers/latency_openai.py in its own process) with a short
latency and no binding rate limit, so the stage itself is what is measured.

The stage reads its input file as it goes, asks the teacher a chunk (`--chunk-size`) at a time
and writes each row as it comes, so its memory should not grow with N: the peak RSS of the 10x
run over that of the 1x run should be near 1 (collect-then-write would approach 10 in the part
above the interpreter's baseline). Prints rows/s and peak RSS of each run, and the ratios.

    python benchmarks/data_stage_scale.py --n 10000 --factor 10
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "benchmarks"))

from llm_scale import TEACHER, start_server  # noqa: E402

from janus.config.llm import LLMConfig  # noqa: E402
from janus.config.params import load_params  # noqa: E402
from janus.io import write_jsonl  # noqa: E402

DIMENSIONS = ("style", "background_knowledge", "informativeness", "harmlessness")


def system_message_rows(n: int):
    """Rows shaped like the system_messages stage's output (a generator: never held whole)."""
    for i in range(n):
        yield {
            "instruction_id": f"bench-{i // 3}",
            "set_index": i % 3,
            "main_source": "Nectar",
            "original_source": "sharegpt",
            "instruction": f"Item {i}: explain how a hash map handles collisions, briefly.",
            "preference_set": [
                {
                    "dimension": dimension,
                    "subdimension": "Clarity",
                    "preference": f"Preference {i % 97} for {dimension}",
                    "description": "Prefers answers that say what matters first and then stop.",
                }
                for dimension in DIMENSIONS
            ],
            "seed_id": "seed-0000",
            "system": f"You are a patient teacher (persona {i % 50}) who explains with one example.",
        }


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def run_stage(rows_path: Path, out: Path, base_url: str, max_in_flight: int, chunk_size: int):
    """The child: the stage as its script runs it (input streamed from disk, rows written as
    they come); prints one JSON line of figures."""
    import openai  # noqa: F401 - the backend's client library: part of the baseline

    from janus.data.gold_responses import generate_gold_responses
    from janus.io import count_jsonl_rows, iter_jsonl

    teacher = LLMConfig.model_validate(
        {
            **TEACHER,
            "backend": "openai",
            "model": "bench-model",
            "base_url": base_url,
            "max_in_flight": max_in_flight,
            "requests_per_minute": 1e9,
            "tokens_per_minute": 1e9,
            "max_retries": 2,
            "timeout_s": 30,
        }
    )
    config = load_params(REPO / "params.yaml").gold_responses
    baseline_mb = peak_rss_mb()  # the interpreter and its imports, before the stage runs
    started = time.perf_counter()
    metrics = generate_gold_responses(
        iter_jsonl(rows_path),
        config,
        teacher,
        out,
        total=count_jsonl_rows(rows_path),
        chunk_size=chunk_size,
    )
    seconds = time.perf_counter() - started
    print(
        json.dumps(
            {
                "rows": metrics["system_messages"],
                "written": metrics["responses"],
                "seconds": seconds,
                "baseline_mb": baseline_mb,
                "peak_mb": peak_rss_mb(),
            }
        )
    )


def measure(n: int, tmp: Path, base_url: str, args: argparse.Namespace) -> dict:
    rows_path = tmp / f"system_messages_{n}.jsonl"
    write_jsonl(rows_path, system_message_rows(n))
    env = {**os.environ, "JANUS_CACHE_DIR": str(tmp / f"cache_{n}")}  # fresh: every row asked
    child = subprocess.run(
        [
            sys.executable,
            __file__,
            "--child",
            str(rows_path),
            str(tmp / f"collection_{n}.jsonl"),
            base_url,
            "--max-in-flight",
            str(args.max_in_flight),
            "--chunk-size",
            str(args.chunk_size),
        ],
        env=env,
        cwd=tmp,  # the stage's runtime/ record lands here
        capture_output=True,
        text=True,
    )
    if child.returncode:
        raise RuntimeError(f"the stage failed for N={n}:\n{child.stderr[-3000:]}")
    figures = json.loads(child.stdout.strip().splitlines()[-1])
    assert figures["rows"] == n == figures["written"], figures
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=10_000, help="rows of the small run")
    parser.add_argument("--factor", type=int, default=10, help="the large run has factor x N")
    parser.add_argument("--max-in-flight", type=int, default=64)
    parser.add_argument("--chunk-size", type=int, default=4096)
    parser.add_argument("--min-s", type=float, default=0.001, help="server latency, lower bound")
    parser.add_argument("--max-s", type=float, default=0.005, help="server latency, upper bound")
    parser.add_argument(
        "--child", nargs=3, metavar=("ROWS", "OUT", "BASE_URL"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.child:
        rows_path, out, base_url = args.child
        run_stage(Path(rows_path), Path(out), base_url, args.max_in_flight, args.chunk_size)
        return

    server, base_url = start_server(args.min_s, args.max_s)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            sizes = (args.n, args.n * args.factor)
            runs = {n: measure(n, Path(tmp), base_url, args) for n in sizes}
    finally:
        server.kill()
        server.wait()

    print()
    print(
        f"gold_responses, streaming: chunk_size={args.chunk_size}, "
        f"max_in_flight={args.max_in_flight}, server latency {args.min_s}-{args.max_s} s"
    )
    for n, run in runs.items():
        print(
            f"  N={n:>7}: {run['rows'] / run['seconds']:7.0f} rows/s ({run['seconds']:.1f} s), "
            f"peak RSS {run['peak_mb']:.0f} MB ({run['peak_mb'] - run['baseline_mb']:.0f} MB "
            f"above the {run['baseline_mb']:.0f} MB after imports)"
        )
    small, large = runs[sizes[0]], runs[sizes[1]]
    growth_small = small["peak_mb"] - small["baseline_mb"]
    growth_large = large["peak_mb"] - large["baseline_mb"]
    print(
        f"peak RSS ratio {sizes[1]} / {sizes[0]} rows: {large['peak_mb'] / small['peak_mb']:.2f} "
        f"(above the baseline: {growth_large / growth_small:.2f}); rows are {args.factor}x"
    )


if __name__ == "__main__":
    main()
