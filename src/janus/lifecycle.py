"""How a stage's process lives and ends: who it is, whether another process is still alive, and
SIGTERM handled like Ctrl-C.

- `this_process()` / `process_alive(pid, started)`: a process is named by its pid and start time,
  so a pid the system has reused for another program is not taken for the one that wrote a temp
  file (janus.io), a cache claim or a budget reservation (janus.llm).
- `handle_sigterm()`: SIGTERM (what a scheduler, `timeout`, `dvc queue kill` or a CI runner sends)
  raises `Terminated`, a KeyboardInterrupt, so it unwinds like Ctrl-C: the temporary file is
  removed, the runtime record written, claims and reservations released, and the process exits
  non-zero. A kill -9 cannot be handled; what it leaves is found dead by `process_alive`.
"""

from __future__ import annotations

import os
import signal
import threading
import time


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived; unwinds like Ctrl-C."""


def _started(pid: int) -> float | None:
    """When process `pid` started; None when there is none (or only its zombie)."""
    import psutil

    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return None
        return process.create_time()
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return None
    except psutil.AccessDenied:
        return -1.0  # exists, but not ours to inspect: alive, whatever its start time


_START_TIMES: dict[int, float] = {}  # by pid: a forked child looks its own up


def this_process() -> tuple[int, float]:
    """(pid, start time) of this process."""
    pid = os.getpid()
    if pid not in _START_TIMES:
        _START_TIMES[pid] = _started(pid) or time.time()
    return pid, _START_TIMES[pid]


def process_alive(pid: int, started: float, memo: dict[int, float | None] | None = None) -> bool:
    """Whether the process (`pid`, `started`) still runs. `memo` saves looking a pid up twice."""
    if memo is not None and pid in memo:
        now_started = memo[pid]
    else:
        now_started = _started(pid)
        if memo is not None:
            memo[pid] = now_started
    if now_started is None:
        return False
    return now_started < 0 or abs(now_started - started) < 1.0


def _raise_terminated(signum, frame) -> None:
    raise Terminated(f"signal {signal.Signals(signum).name}: stopping as on Ctrl-C")


def handle_sigterm() -> None:
    """From now on SIGTERM raises `Terminated` in the main thread. Only over the default
    handler (a host program's own handler stays) and only from the main thread (where Python
    delivers signals)."""
    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _raise_terminated)
