"""The local engines' answer cache: one SQLite file (WAL) beside the LLM cache, one row per unit.

A unit is what one seed draws (`janus.infer.units.Unit`): a transformers batch, or one vLLM
request with n samples. Its row is committed the moment the engine returns it, by whichever
replica process made it, so a killed inference stage keeps everything generated so far and a
rerun generates only the units still missing; an unchanged rerun loads no model at all. The key
(`unit_key`) is a sha256 over everything that determines the answers: the engine, the model's
identity (a checkpoint's file hash, or a hub id at its revision), dtype and device, the sampling
params, the unit's seed and its (prompt token ids, sample index) jobs.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from janus.caching import resolve_cache_dir
from janus.infer.units import Completion

CACHE_FILE = "completions.sqlite"
# Bumped whenever the meaning of a cached row changes (decoding, seeding); old rows are then
# never looked up again.
KEY_VERSION = 1


def unit_key(
    engine: dict[str, Any],
    sampling: dict[str, Any],
    seed: int,
    jobs: Sequence[tuple[Sequence[int], int]],
) -> str:
    """sha256 over the engine (backend, model identity, dtype, device), the sampling params, the
    unit's seed and its jobs: each (prompt token ids as generated, sample index)."""
    payload = {
        "version": KEY_VERSION,
        "engine": engine,
        "sampling": sampling,
        "seed": seed,
        "jobs": [[list(ids), sample] for ids, sample in jobs],
    }
    encoded = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(encoded.encode("utf-8")).hexdigest()


class CompletionCache:
    """A process-safe key -> list[Completion] store with one atomic commit per unit."""

    def __init__(self, directory: str | Path):
        self.directory = resolve_cache_dir(str(directory))
        self.directory.mkdir(parents=True, exist_ok=True)
        self.path = self.directory / CACHE_FILE
        self._lock = threading.Lock()
        # isolation_level=None: autocommit, each INSERT its own transaction (survives a kill).
        self._connection = sqlite3.connect(
            self.path, timeout=120, isolation_level=None, check_same_thread=False
        )
        self._connection.execute("PRAGMA journal_mode=WAL")
        self._connection.execute("PRAGMA synchronous=NORMAL")
        self._connection.execute(
            "CREATE TABLE IF NOT EXISTS completions ("
            " key TEXT PRIMARY KEY, completions TEXT NOT NULL, stage TEXT, created REAL NOT NULL)"
        )

    def get(self, key: str) -> list[Completion] | None:
        with self._lock:
            row = self._connection.execute(
                "SELECT completions FROM completions WHERE key = ?", (key,)
            ).fetchone()
        if row is None:
            return None
        return [Completion(**fields) for fields in json.loads(row[0])]

    def put(self, key: str, completions: Sequence[Completion], stage: str = "") -> None:
        encoded = json.dumps(
            [
                {"text": c.text, "num_tokens": c.num_tokens, "finish_reason": c.finish_reason}
                for c in completions
            ],
            ensure_ascii=False,
        )
        with self._lock:
            self._connection.execute(
                "INSERT OR REPLACE INTO completions VALUES (?, ?, ?, ?)",
                (key, encoded, stage, time.time()),
            )

    def __len__(self) -> int:
        with self._lock:
            return self._connection.execute("SELECT COUNT(*) FROM completions").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._connection.close()
