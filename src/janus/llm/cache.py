"""The persistent response cache: one SQLite file (WAL), one row per generation.

Each generation is committed as soon as it arrives, so an interrupted stage keeps everything it
paid for, and an unchanged rerun is answered entirely from here. The key is a sha256 over every
input that determines the answer (see `cache_key`); API keys never enter it.

Several processes share one cache (a `dvc exp run --queue` with workers, two people on one
machine), so it also holds:
- claims: the process about to ask for a key records a claim on it; another process that needs
  the same key waits for the answer instead of paying for it again. A claim whose process has
  died (or whose client closed) is taken over. The first answer stored for a key is kept:
  `put` never replaces one, and returns the stored answer for the caller to use.
- rounds: the attempt an item's current round of attempts starts at. An item whose every attempt
  of a round was answered and rejected (invalid, empty, truncated) starts its next round after
  them, so a rerun asks it again with fresh attempts while an item that succeeded replays exactly
  the attempts that made its answer.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from janus.caching import resolve_cache_dir  # noqa: F401 - re-exported to the LLM layer
from janus.lifecycle import process_alive, this_process
from janus.llm.types import Generation

CACHE_FILE = "responses.sqlite"
# Bumped whenever the meaning of a cached row changes (prompt wrapping, decoding); old rows are
# then simply never looked up again. 2: the openai identity lost base_url. (Empty answers are
# stored again since rounds: a rerun replays them, so the row and the counts stay the same.)
KEY_VERSION = 2
# Creating a new database file in WAL mode needs an exclusive lock that SQLite's busy timeout
# does not wait for: two processes opening a fresh cache at once retry instead of crashing.
OPEN_PATIENCE_S = 60.0

T = TypeVar("T")


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


def item_key(identity: dict[str, Any], request_fields: dict[str, Any]) -> str:
    """sha256 over the backend identity and the request, no attempt: the item its rounds belong to."""
    payload = {"version": KEY_VERSION, "backend": identity, "request": request_fields}
    encoded = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(encoded.encode("utf-8")).hexdigest()


# -- shared SQLite files ---------------------------------------------------------------------------


def _patiently(step: Callable[[], T], what: Path) -> T:
    """`step()`, retried while SQLite says the file is locked (a concurrent creator)."""
    deadline = time.monotonic() + OPEN_PATIENCE_S
    delay = 0.005
    while True:
        try:
            return step()
        except sqlite3.OperationalError as error:
            message = str(error).lower()
            if ("locked" not in message and "busy" not in message) or (time.monotonic() > deadline):
                raise sqlite3.OperationalError(f"{what}: {error}") from error
            time.sleep(delay)
            delay = min(delay * 2, 0.25)


def write_transaction(
    connection: sqlite3.Connection,
    lock: threading.Lock,
    path: Path,
    body: Callable[[sqlite3.Connection], T],
) -> T:
    """`body(connection)` in one write transaction (BEGIN IMMEDIATE: no other writer, in this
    process or another, between its reads and its writes)."""
    with lock:
        _patiently(lambda: connection.execute("BEGIN IMMEDIATE"), path)
        try:
            value = body(connection)
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")
        return value


def open_shared_db(path: Path, schema: Iterable[str]) -> sqlite3.Connection:
    """A WAL connection to a SQLite file that other processes may be creating at the same moment,
    with `schema` (CREATE ... IF NOT EXISTS statements) in place. Autocommit: every statement is
    its own transaction unless a caller opens one (`BEGIN IMMEDIATE`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    connection = sqlite3.connect(path, timeout=60, isolation_level=None, check_same_thread=False)
    try:
        _patiently(lambda: connection.execute("PRAGMA journal_mode=WAL").fetchone(), path)
        connection.execute("PRAGMA synchronous=NORMAL")
        for statement in schema:
            _patiently(lambda statement=statement: connection.execute(statement), path)
    except BaseException:
        connection.close()
        raise
    return connection


# -- who holds a claim ----------------------------------------------------------------------------

# owners (clients) of this process that are open: a claim of a closed one is free again
_OPEN_OWNERS: set[str] = set()


def open_owner() -> tuple[str, int, float]:
    """A new owner of claims or reservations in this process: (owner id, pid, start time)."""
    pid, started = this_process()
    owner = f"{pid}:{uuid.uuid4().hex[:12]}"
    _OPEN_OWNERS.add(owner)
    return owner, pid, started


def close_owner(owner: str) -> None:
    _OPEN_OWNERS.discard(owner)


def owner_alive(owner: str, pid: int, started: float, memo: dict[int, float | None]) -> bool:
    """Whether the client `owner` of process (`pid`, `started`) can still answer its claims."""
    if pid == os.getpid():
        return owner in _OPEN_OWNERS
    return process_alive(pid, started, memo)


@dataclass(frozen=True)
class Claim:
    """What `claim` found: the stored answer; else `holder` (the pid of another live process
    asking for it now); else neither: this client holds the claim and should ask."""

    answer: Generation | None = None
    holder: int | None = None

    @property
    def mine(self) -> bool:
        return self.answer is None and self.holder is None


_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS responses ("
    " key TEXT PRIMARY KEY,"
    " text TEXT NOT NULL,"
    " prompt_tokens INTEGER NOT NULL,"
    " completion_tokens INTEGER NOT NULL,"
    " finish_reason TEXT NOT NULL,"
    " stage TEXT,"
    " created REAL NOT NULL)",
    "CREATE TABLE IF NOT EXISTS claims ("
    " key TEXT PRIMARY KEY, owner TEXT NOT NULL, pid INTEGER NOT NULL, started REAL NOT NULL,"
    " since REAL NOT NULL)",
    "CREATE TABLE IF NOT EXISTS rounds (item TEXT PRIMARY KEY, start INTEGER NOT NULL)",
)


def _generation(row) -> Generation:
    return Generation(
        text=row[0], prompt_tokens=row[1], completion_tokens=row[2], finish_reason=row[3]
    )


class ResponseCache:
    """A process- and thread-safe key -> Generation store with atomic per-row commits."""

    def __init__(self, directory: Path):
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / CACHE_FILE
        self._lock = threading.Lock()
        self._connection = open_shared_db(self.path, _SCHEMA)
        self.owner, self.pid, self.started = open_owner()

    def _transaction(self, body: Callable[[sqlite3.Connection], T]) -> T:
        return write_transaction(self._connection, self._lock, self.path, body)

    def get(self, key: str) -> Generation | None:
        with self._lock:
            row = self._connection.execute(
                "SELECT text, prompt_tokens, completion_tokens, finish_reason"
                " FROM responses WHERE key = ?",
                (key,),
            ).fetchone()
        return None if row is None else _generation(row)

    def put(self, key: str, generation: Generation, stage: str = "") -> Generation:
        """Store an answer unless one is stored already (the first answer wins), release this
        client's claim on the key, and return the stored answer: the one to use."""

        def store(connection: sqlite3.Connection) -> Generation:
            connection.execute(
                "INSERT OR IGNORE INTO responses VALUES (?, ?, ?, ?, ?, ?, ?)",
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
            connection.execute("DELETE FROM claims WHERE key = ? AND owner = ?", (key, self.owner))
            row = connection.execute(
                "SELECT text, prompt_tokens, completion_tokens, finish_reason"
                " FROM responses WHERE key = ?",
                (key,),
            ).fetchone()
            return _generation(row)

        stored = self._transaction(store)
        if stored == _generation(
            (
                generation.text,
                generation.prompt_tokens,
                generation.completion_tokens,
                generation.finish_reason,
            )
        ):
            return generation  # ours: with this payment's cached_prompt_tokens and refusal flag
        return stored

    # -- claims ------------------------------------------------------------------------------

    def claim(self, keys: list[str]) -> dict[str, Claim]:
        """For each key: its stored answer, else the live process asking for it, else a claim
        taken now by this client (also from a holder that died). One transaction for all."""
        memo: dict[int, float | None] = {}

        def take(connection: sqlite3.Connection) -> dict[str, Claim]:
            found: dict[str, Claim] = {}
            now = time.time()
            for key in keys:
                row = connection.execute(
                    "SELECT text, prompt_tokens, completion_tokens, finish_reason"
                    " FROM responses WHERE key = ?",
                    (key,),
                ).fetchone()
                if row is not None:
                    found[key] = Claim(answer=_generation(row))
                    continue
                holder = connection.execute(
                    "SELECT owner, pid, started FROM claims WHERE key = ?", (key,)
                ).fetchone()
                if (
                    holder is not None
                    and holder[0] != self.owner
                    and owner_alive(holder[0], holder[1], holder[2], memo)
                ):
                    found[key] = Claim(holder=holder[1])
                    continue
                connection.execute(
                    "INSERT OR REPLACE INTO claims VALUES (?, ?, ?, ?, ?)",
                    (key, self.owner, self.pid, self.started, now),
                )
                found[key] = Claim()
            return found

        return self._transaction(take)

    def release(self, key: str) -> None:
        """Give up this client's claim on a key it got no answer for (another process may ask)."""
        with self._lock:
            self._connection.execute(
                "DELETE FROM claims WHERE key = ? AND owner = ?", (key, self.owner)
            )

    # -- rounds ------------------------------------------------------------------------------

    def round_starts(self, items: list[str]) -> list[int]:
        """The attempt each item's current round starts at (0 for an item never failed)."""
        with self._lock:
            starts = []
            for item in items:
                row = self._connection.execute(
                    "SELECT start FROM rounds WHERE item = ?", (item,)
                ).fetchone()
                starts.append(0 if row is None else row[0])
            return starts

    def start_next_round(self, item: str, current: int, next_start: int) -> None:
        """The item's round that started at `current` failed: its next round starts at
        `next_start`; a no-op when another process already moved it on."""

        def move(connection: sqlite3.Connection) -> None:
            row = connection.execute("SELECT start FROM rounds WHERE item = ?", (item,)).fetchone()
            if (0 if row is None else row[0]) == current:
                connection.execute(
                    "INSERT OR REPLACE INTO rounds VALUES (?, ?)", (item, next_start)
                )

        self._transaction(move)

    def __len__(self) -> int:
        with self._lock:
            return self._connection.execute("SELECT COUNT(*) FROM responses").fetchone()[0]

    def close(self) -> None:
        close_owner(self.owner)
        with self._lock:
            # released anyway if this fails: a closed owner's claims are free to take
            with contextlib.suppress(sqlite3.Error):
                self._connection.execute("DELETE FROM claims WHERE owner = ?", (self.owner,))
            self._connection.close()
