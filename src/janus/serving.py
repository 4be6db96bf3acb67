"""Serve a local checkpoint over the OpenAI Chat Completions API with `transformers serve`.

For the openai backend's end-to-end tests and benchmark, and for users who want several stages
(or several `dvc exp` runs) to share one loaded model: point `llm.*.base_url` at the printed URL.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from janus.logging_utils import get_logger

log = get_logger(__name__)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _serve_command() -> list[str]:
    executable = Path(sys.executable).with_name("transformers")
    if executable.exists():
        return [str(executable), "serve"]
    found = shutil.which("transformers")
    if found is None:
        raise FileNotFoundError("the `transformers` CLI is not installed (transformers[serving])")
    return [found, "serve"]


@contextlib.contextmanager
def transformers_serve(
    model_dir: str | Path,
    port: int | None = None,
    continuous_batching: bool = False,
    device: str = "cpu",
    startup_timeout_s: float = 120.0,
    log_path: str | Path | None = None,
) -> Iterator[str]:
    """Run `transformers serve` on 127.0.0.1 for the duration of the block; yields the base URL."""
    port = port or free_port()
    command = _serve_command() + [
        str(model_dir),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--device",
        device,
        "--continuous-batching" if continuous_batching else "--no-continuous-batching",
    ]
    output = open(log_path, "wb") if log_path else subprocess.DEVNULL  # noqa: SIM115
    process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + startup_timeout_s
        while True:
            if process.poll() is not None:
                raise RuntimeError(
                    f"transformers serve exited with code {process.returncode} before it was "
                    f"ready{f' (log: {log_path})' if log_path else ''}"
                )
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as reply:
                    if reply.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"transformers serve not ready after {startup_timeout_s:.0f}s")
            time.sleep(0.5)
        log.info("transformers serve ready on 127.0.0.1:%d (%s)", port, model_dir)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)  # uvicorn shuts down cleanly on SIGINT
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=15)
        if output is not subprocess.DEVNULL:
            output.close()
