"""The openai backend at paper scale: N requests through `LLMClient.stream` against a loopback
OpenAI-compatible server whose answers take 0.2-2 s (tests/servers/latency_openai.py, in its own
process), then the same N again from the full cache.

Prints: achieved requests/s against the configured `requests_per_minute` limit (overall, and in
steady state once the limiter's initial minute of budget is spent), client CPU seconds per 1k
requests, peak RSS of the client process, and the full-cache rerun (requests sent, seconds).
Targets (issue 10): >= 95% of the limit when it binds; peak RSS < 1.5 GB; a 100k rerun < 1 min.

    python benchmarks/llm_scale.py --n 100000 --rpm 12000 --max-in-flight 768
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from janus.config.llm import LLMConfig  # noqa: E402
from janus.config.params import load_params  # noqa: E402
from janus.llm import ChatRequest, LLMClient  # noqa: E402

# every LLM setting the benchmark does not vary: the default profile's teacher
TEACHER = load_params(REPO / "params.yaml").llm.teacher.model_dump()


def start_server(min_s: float, max_s: float) -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen(
        [
            sys.executable,
            str(REPO / "tests/servers/latency_openai.py"),
            "--min-s",
            str(min_s),
            "--max-s",
            str(max_s),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    line = process.stdout.readline()
    if not line.startswith("READY"):
        process.kill()
        raise RuntimeError(f"latency server did not start: {line!r}")
    return process, f"http://127.0.0.1:{line.split()[1]}/v1"


def requests(n: int):
    """A generator: the client never holds all N requests (nor results) at once."""
    for i in range(n):
        yield ChatRequest(
            messages=[{"role": "user", "content": f"Item {i}: write one sentence about it."}],
            temperature=1.0,
            max_tokens=64,
            tag=str(i),
        )


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run(config: LLMConfig, n: int, out_path: Path, sample: list | None = None) -> dict:
    """Stream N results to a JSONL file; returns counts, seconds and CPU seconds."""
    cpu_before, started = cpu_seconds(), time.perf_counter()
    ok = 0
    with LLMClient(config, chunk_size=config_chunk) as client:
        stop = threading.Event()

        def sampler() -> None:
            while not stop.wait(1.0):
                sample.append((time.perf_counter() - started, client.stats.requests))

        thread = threading.Thread(target=sampler, daemon=True)
        if sample is not None:
            thread.start()
        with out_path.open("w") as out:
            for result in client.stream(requests(n), desc="llm_scale", total=n):
                ok += result.ok
                out.write(json.dumps({"tag": result.request.tag, "text": result.text}) + "\n")
        stop.set()
        runtime = client.stats.as_runtime()
    return {
        "ok": ok,
        "seconds": time.perf_counter() - started,
        "cpu_s": cpu_seconds() - cpu_before,
        "requests": runtime["requests"],
        "cache_hits": runtime["cache_hits"],
        "retries": runtime["retries"],
    }


def steady_rate(sample: list[tuple[float, int]], n: int) -> float | None:
    """Requests/s between 40% and 95% of N sent: past the limiter's initial burst."""
    points = [(t, sent) for t, sent in sample if 0.4 * n <= sent <= 0.95 * n]
    if len(points) < 2:
        return None
    (t0, s0), (t1, s1) = points[0], points[-1]
    return (s1 - s0) / (t1 - t0) if t1 > t0 else None


config_chunk = 4096


def main() -> None:
    global config_chunk
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--rpm", type=float, default=12_000, help="requests_per_minute limit")
    parser.add_argument("--max-in-flight", type=int, default=768)
    parser.add_argument("--chunk-size", type=int, default=4096)
    parser.add_argument("--min-s", type=float, default=0.2)
    parser.add_argument("--max-s", type=float, default=2.0)
    args = parser.parse_args()
    config_chunk = args.chunk_size

    server, base_url = start_server(args.min_s, args.max_s)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            os.environ["JANUS_CACHE_DIR"] = str(Path(tmp) / "cache")
            config = LLMConfig.model_validate(
                {
                    **TEACHER,
                    "backend": "openai",
                    "model": "bench-model",
                    "base_url": base_url,
                    "max_in_flight": args.max_in_flight,
                    "requests_per_minute": args.rpm,
                    "tokens_per_minute": 1e9,
                    "max_retries": 2,
                    "timeout_s": 30,
                }
            )
            sample: list[tuple[float, int]] = []
            first = run(config, args.n, Path(tmp) / "first.jsonl", sample)
            rss_first_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            rerun = run(config, args.n, Path(tmp) / "rerun.jsonl")
            rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    finally:
        server.kill()
        server.wait()

    limit = args.rpm / 60
    steady = steady_rate(sample, args.n)
    overall = first["requests"] / first["seconds"]
    print()
    print(f"N={args.n}, latency {args.min_s}-{args.max_s} s, max_in_flight={args.max_in_flight}")
    print(
        f"limit: {args.rpm:.0f} rpm = {limit:.1f} req/s (the bucket starts with a minute's worth)"
    )
    print(
        f"first run: {first['ok']}/{args.n} ok, {first['requests']} requests, "
        f"{first['retries']} retries, {first['seconds']:.1f} s"
    )
    print(f"  achieved overall: {overall:.1f} req/s = {overall / limit:.1%} of the limit")
    # a token bucket lets the first minute's budget through at once, then `limit` per second
    ideal = max(0.0, first["requests"] - args.rpm) / limit
    if ideal:
        print(
            f"  time at the limit (after the first minute's burst): ideal {ideal:.1f} s, "
            f"achieved {first['seconds']:.1f} s = {ideal / first['seconds']:.1%} of the limit"
        )
    if steady is not None:
        print(
            f"  steady state (40%-95% of N): {steady:.1f} req/s = {steady / limit:.1%} of the limit"
        )
    print(f"  client CPU: {first['cpu_s']:.1f} s = {1000 * first['cpu_s'] / args.n:.2f} s per 1k")
    print(f"peak RSS: {rss_first_mb:.0f} MB after the first run, {rss_mb:.0f} MB in all")
    print(
        f"full-cache rerun: {rerun['requests']} requests, {rerun['cache_hits']} cache hits, "
        f"{rerun['seconds']:.1f} s, CPU {rerun['cpu_s']:.1f} s, {rerun['ok']}/{args.n} ok"
    )


if __name__ == "__main__":
    main()
