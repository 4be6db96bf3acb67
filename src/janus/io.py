"""Atomic reads and writes of the pipeline's files.

Every output is written to a temporary file in the same directory and renamed into place, so an
interrupted stage never leaves a half-written file that a later stage (or DVC) would take as done.
Ctrl-C and SIGTERM remove the temporary file; one left by a kill -9 is removed by the next write of
the same output, once its writer is gone.
"""

from __future__ import annotations

import glob
import json
import math
import os
import re
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from janus.lifecycle import handle_sigterm, process_alive, this_process
from janus.logging_utils import get_logger

log = get_logger(__name__)


# A temporary file's name says which process writes it: .<name>.<pid>-<start time>.<random>.tmp
_TEMP_NAME = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)-(?P<started>\d+)\.[^.]+\.tmp$")


def remove_stale_temp_files(path: str | Path) -> list[Path]:
    """Remove the temporary siblings of `path` that processes now dead left behind (a kill -9,
    a power cut); the temporary files of live writers (a concurrent run) stay. Returns them."""
    path = Path(path)
    removed = []
    memo: dict[int, float | None] = {}
    for candidate in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        match = _TEMP_NAME.match(candidate.name)
        if match is None or match["name"] != path.name:
            continue
        if process_alive(int(match["pid"]), float(match["started"]), memo):
            continue
        candidate.unlink(missing_ok=True)
        removed.append(candidate)
    return removed


@contextmanager
def atomic_open(path: str | Path, mode: str = "w") -> Iterator[IO[Any]]:
    """Open a temporary sibling of `path` for writing; rename it over `path` on success.

    Stale temporary files of `path` from dead processes are removed first. SIGTERM is handled
    like Ctrl-C from here on (janus.lifecycle), so a stopped stage removes its temporary file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle_sigterm()
    for stale in remove_stale_temp_files(path):
        log.info("removed %s, left by a process that no longer runs", stale)
    pid, started = this_process()
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{path.name}.{pid}-{int(started)}.", suffix=".tmp", dir=path.parent
    )
    try:
        with os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def write_jsonl(path: str | Path, rows: Iterable[dict[str, Any]]) -> int:
    """Write rows as JSON Lines atomically; returns the number of rows written."""
    count = 0
    with atomic_open(path) as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
            count += 1
    return count


def iter_jsonl(path: str | Path) -> Iterator[dict[str, Any]]:
    """The rows of a JSON Lines file, read one at a time as they are asked for (a 200k-row input
    is never held whole). A missing file is an error at once; a malformed line is an error that
    names the file and line when it is reached."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    return _jsonl_rows(path)


def _jsonl_rows(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                raise ValueError(f"{path}:{number}: not valid JSON ({error.msg})") from None
            if not isinstance(row, dict):
                raise ValueError(f"{path}:{number}: expected a JSON object per line")
            yield row


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """Read JSON Lines; a malformed line is an error that names the file and line."""
    return list(iter_jsonl(path))


def count_jsonl_rows(path: str | Path) -> int:
    """How many rows `iter_jsonl` yields (its non-blank lines), counted without parsing them: a
    cheap first pass that gives a streaming stage's progress bar its total."""
    with Path(path).open("rb") as handle:
        return sum(1 for line in handle if line.strip())


def _finite(value: Any) -> Any:
    """NaN and infinities are not JSON; write them as null so a metric is never a fake number."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    return value


def write_json(path: str | Path, obj: Any) -> None:
    with atomic_open(path) as handle:
        json.dump(_finite(obj), handle, indent=2, sort_keys=True, ensure_ascii=False)
        handle.write("\n")


def read_json(path: str | Path) -> Any:
    with Path(path).open(encoding="utf-8") as handle:
        return json.load(handle)


RUNTIME_DIR = Path("runtime")


def write_runtime(
    stage: str, runtime: dict[str, Any], runtime_dir: str | Path = RUNTIME_DIR
) -> Path:
    """Write `runtime/<stage>.json`: how a run went (seconds, throughput, requests sent, cache hits,
    dollars paid this time). Not a DVC metric nor an out, and ignored by git, so `dvc metrics diff`
    and `dvc.lock` move only with results; MLflow gets the same figures where a run is tracked."""
    path = Path(runtime_dir) / f"{stage}.json"
    write_json(path, runtime)
    return path
