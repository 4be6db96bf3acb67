"""LLM layer throughput: the same N generations one at a time vs batched / concurrent.

    python benchmarks/llm_throughput.py --n 16

Local backend: batch_size 1 vs batch_size N (in-process transformers; `models/base` when it
exists, else a tiny random model). OpenAI backend: max_in_flight 1 vs K against a local
`transformers serve` (continuous batching when the CLI offers it). Each mode writes a fresh cache,
so every generation is real; then an immediate rerun of the last mode must send 0 requests.
Throughput is completion tokens per second of wall time, measured side by side in one run.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from janus.config.llm import LLMConfig
from janus.config.params import load_params
from janus.llm import ChatRequest, LLMClient

REPO = Path(__file__).resolve().parents[1]
# every LLM setting the benchmark does not vary: the default profile's teacher
TEACHER = load_params(REPO / "params.yaml").llm.teacher.model_dump()

TOPICS = [
    "rivers", "owls", "salt", "glaciers", "bread", "tides", "copper", "moss",
    "comets", "ink", "bees", "granite", "kites", "lichen", "clocks", "fog",
]  # fmt: skip


def requests_for(n: int, max_tokens: int) -> list[ChatRequest]:
    return [
        ChatRequest(
            messages=[
                {"role": "user", "content": f"Write two sentences about {TOPICS[i % len(TOPICS)]}."}
            ],
            temperature=0.7,
            top_p=0.95,
            max_tokens=max_tokens,
            sample_index=i // len(TOPICS),
        )
        for i in range(n)
    ]


def timed_run(config: LLMConfig, requests: list[ChatRequest], cache_dir: Path, label: str):
    os.environ["JANUS_CACHE_DIR"] = str(cache_dir)
    with LLMClient(config, stage="benchmark") as client:
        started = time.perf_counter()
        results = client.generate(requests, desc=label)
        seconds = time.perf_counter() - started
        stats = client.stats
    failed = sum(not r.ok for r in results)
    tokens = stats.extra["sent_completion_tokens"]
    print(
        f"  {label:<28} {seconds:7.2f} s  {tokens:5d} tokens  {tokens / seconds:8.1f} tok/s  "
        f"requests={stats.requests} failed={failed}",
        flush=True,
    )
    return tokens / seconds, [r.text for r in results]


def rerun_requests(config: LLMConfig, requests: list[ChatRequest], cache_dir: Path) -> int:
    os.environ["JANUS_CACHE_DIR"] = str(cache_dir)
    with LLMClient(config, stage="benchmark") as client:
        client.generate(requests, desc="rerun")
        return client.stats.requests


def pick_model(work: Path, requested: str | None) -> Path:
    if requested:
        return Path(requested)
    if Path("models/base/config.json").exists():
        return Path("models/base")
    from janus.models import prepare_base_model

    tiny = work / "tiny"
    prepare_base_model(load_params(REPO / "profiles" / "tiny.yaml").models, tiny)
    return tiny


def serve_supports_continuous_batching() -> bool:
    from janus.serving import _serve_command

    help_text = subprocess.run(
        [*_serve_command(), "--help"], capture_output=True, text=True, timeout=120
    ).stdout
    return "--continuous-batching" in help_text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=16, help="generations per mode")
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--in-flight", type=int, default=8, help="K for the openai backend")
    parser.add_argument("--model", help="checkpoint dir (default: models/base, else tiny random)")
    parser.add_argument("--skip-openai", action="store_true")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="janus-bench-") as tmp:
        work = Path(tmp)
        model = pick_model(work, args.model)
        requests = requests_for(args.n, args.max_tokens)
        print(f"model: {model}  n={args.n}  max_tokens={args.max_tokens}  cpus={os.cpu_count()}")
        print(f"load average at start: {os.getloadavg()[0]:.2f}")

        print("local backend (in-process transformers):")
        base = LLMConfig.model_validate({**TEACHER, "backend": "local", "model": str(model)})
        # warm up: load the model once so neither mode pays for it
        timed_run(base.model_copy(update={"batch_size": 1}), requests[:1], work / "warm", "warm-up")
        one, one_texts = timed_run(
            base.model_copy(update={"batch_size": 1}), requests, work / "local-1", "one at a time"
        )
        batched, batched_texts = timed_run(
            base.model_copy(update={"batch_size": args.n}),
            requests,
            work / "local-n",
            f"batched (batch_size={args.n})",
        )
        local_rerun = rerun_requests(
            base.model_copy(update={"batch_size": args.n}), requests, work / "local-n"
        )
        print(f"  batched / one at a time: {batched / one:.2f}x")
        print(f"  identical outputs in both modes: {one_texts == batched_texts}")
        print(f"  requests on immediate rerun: {local_rerun}")

        if args.skip_openai:
            return
        from janus.serving import transformers_serve

        continuous = serve_supports_continuous_batching()
        print(f"openai backend (transformers serve, continuous batching: {continuous}):")
        with transformers_serve(
            model, continuous_batching=continuous, log_path=work / "serve.log"
        ) as base_url:
            remote = LLMConfig.model_validate(
                {
                    **TEACHER,
                    "backend": "openai",
                    "model": str(model),
                    "base_url": base_url,
                    "timeout_s": 600,
                    "max_retries": 1,
                }
            )
            timed_run(
                remote.model_copy(update={"max_in_flight": 1}),
                requests[:2],
                work / "warm-r",
                "warm-up",
            )
            sequential, _ = timed_run(
                remote.model_copy(update={"max_in_flight": 1}),
                requests,
                work / "remote-1",
                "one at a time",
            )
            concurrent, _ = timed_run(
                remote.model_copy(update={"max_in_flight": args.in_flight}),
                requests,
                work / "remote-k",
                f"{args.in_flight} in flight",
            )
            remote_rerun = rerun_requests(
                remote.model_copy(update={"max_in_flight": args.in_flight}),
                requests,
                work / "remote-k",
            )
        print(f"  {args.in_flight} in flight / one at a time: {concurrent / sequential:.2f}x")
        print(f"  requests on immediate rerun: {remote_rerun}")
        print(f"load average at end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    sys.exit(main())
