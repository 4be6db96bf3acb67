"""`batches.sqlite`: the record of every request file and batch that batch mode submits, so a
stage killed while its batches run polls the same batches when rerun (see `janus.llm.batch`)."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from janus.llm.cache import open_shared_db

STATE_FILE = "batches.sqlite"


class BatchState:
    """`batches.sqlite`: each request file and its batch, and the keys it carries."""

    def __init__(self, directory: Path):
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / STATE_FILE
        self._lock = threading.Lock()
        self._db = open_shared_db(  # safe when several processes create it at once
            self.path,
            (
                "CREATE TABLE IF NOT EXISTS batches ("
                " local_id TEXT PRIMARY KEY, identity TEXT NOT NULL, stage TEXT,"
                " file_id TEXT, batch_id TEXT, status TEXT NOT NULL, created REAL NOT NULL)",
                "CREATE TABLE IF NOT EXISTS batch_keys ("
                " local_id TEXT NOT NULL, key TEXT NOT NULL, PRIMARY KEY (local_id, key))",
                "CREATE INDEX IF NOT EXISTS batch_keys_key ON batch_keys (key)",
                # the structured-output route each batch's lines were written on; a table of its
                # own, so state files of earlier versions are read and written by both
                "CREATE TABLE IF NOT EXISTS batch_routes (local_id TEXT PRIMARY KEY, route TEXT)",
            ),
        )

    def add(
        self, local_id: str, identity: str, stage: str, keys: list[str], route: str | None
    ) -> None:
        with self._lock:
            self._db.execute("BEGIN")
            self._db.execute(
                "INSERT INTO batches VALUES (?, ?, ?, NULL, NULL, 'writing', ?)",
                (local_id, identity, stage, time.time()),
            )
            self._db.execute("INSERT INTO batch_routes VALUES (?, ?)", (local_id, route))
            self._db.executemany(
                "INSERT INTO batch_keys VALUES (?, ?)", [(local_id, key) for key in keys]
            )
            self._db.execute("COMMIT")

    def update(self, local_id: str, **fields: Any) -> None:
        names = ", ".join(f"{name} = ?" for name in fields)
        with self._lock:
            self._db.execute(
                f"UPDATE batches SET {names} WHERE local_id = ?", (*fields.values(), local_id)
            )

    def open_batches(self, identity: str) -> list[dict[str, Any]]:
        """Batches not yet collected, for one model identity, with their keys."""
        with self._lock:
            rows = self._db.execute(
                "SELECT local_id, stage, file_id, batch_id, status, route FROM batches"
                " LEFT JOIN batch_routes USING (local_id)"
                " WHERE identity = ? AND status != 'collected' ORDER BY created",
                (identity,),
            ).fetchall()
            found = []
            for local_id, stage, file_id, batch_id, status, route in rows:
                keys = [
                    row[0]
                    for row in self._db.execute(
                        "SELECT key FROM batch_keys WHERE local_id = ?", (local_id,)
                    )
                ]
                found.append(
                    {
                        "local_id": local_id,
                        "stage": stage,
                        "file_id": file_id,
                        "batch_id": batch_id,
                        "status": status,
                        "route": route,
                        "keys": keys,
                    }
                )
        return found

    def close(self) -> None:
        with self._lock:
            self._db.close()
