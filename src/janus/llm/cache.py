"""The persistent response cache: one SQLite file (WAL), one row per generation.

Each generation is committed as soon as it arrives, so an interrupted stage keeps everything it
paid for, and an unchanged rerun is answered entirely from here. The key is a sha256 over every
input that determines the answer (see `cache_key`); API keys never enter it.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from janus.caching import resolve_cache_dir  # noqa: F401 - re-exported to the LLM layer
from janus.llm.types import Generation

CACHE_FILE = "responses.sqlite"
# Bumped whenever the meaning of a cached row changes (prompt wrapping, decoding); old rows are
# then simply never looked up again. 2: the openai identity lost base_url; empty answers are
# no longer stored.
KEY_VERSION = 2


def cache_key(identity: dict[str, Any], request_fields: dict[str, Any], attempt: int) -> str:
    """sha256 over the backend identity, the request's determining fields and the attempt."""
    payload = {
        "version": KEY_VERSION,
        "backend": identity,
        "request": request_fields,
        "attempt": attempt,
    }
    encoded = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(encoded.encode("utf-8")).hexdigest()


class ResponseCache:
    """A process- and thread-safe key -> Generation store with atomic per-row commits."""

    def __init__(self, directory: Path):
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / CACHE_FILE
        self._lock = threading.Lock()
        # isolation_level=None: autocommit, so each INSERT is its own atomic transaction.
        self._connection = sqlite3.connect(
            self.path, timeout=60, isolation_level=None, check_same_thread=False
        )
        self._connection.execute("PRAGMA journal_mode=WAL")
        self._connection.execute("PRAGMA synchronous=NORMAL")
        self._connection.execute(
            "CREATE TABLE IF NOT EXISTS responses ("
            " key TEXT PRIMARY KEY,"
            " text TEXT NOT NULL,"
            " prompt_tokens INTEGER NOT NULL,"
            " completion_tokens INTEGER NOT NULL,"
            " finish_reason TEXT NOT NULL,"
            " stage TEXT,"
            " created REAL NOT NULL)"
        )

    def get(self, key: str) -> Generation | None:
        with self._lock:
            row = self._connection.execute(
                "SELECT text, prompt_tokens, completion_tokens, finish_reason"
                " FROM responses WHERE key = ?",
                (key,),
            ).fetchone()
        if row is None:
            return None
        return Generation(
            text=row[0], prompt_tokens=row[1], completion_tokens=row[2], finish_reason=row[3]
        )

    def put(self, key: str, generation: Generation, stage: str = "") -> None:
        with self._lock:
            self._connection.execute(
                "INSERT OR REPLACE INTO responses VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    key,
                    generation.text,
                    generation.prompt_tokens,
                    generation.completion_tokens,
                    generation.finish_reason,
                    stage,
                    time.time(),
                ),
            )

    def __len__(self) -> int:
        with self._lock:
            return self._connection.execute("SELECT COUNT(*) FROM responses").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._connection.close()
