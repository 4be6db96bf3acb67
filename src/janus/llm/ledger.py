"""The spend ledger: dollars paid per (run, role, stage) and reserved by requests in flight.

`SpendLedger`: `spend.sqlite` next to the response cache, one row per (run, role, stage) with
the dollars paid. A run is the work toward one git commit (`git rev-parse HEAD`), or
`$JANUS_RUN_ID` when set, so the stages of one `dvc repro` (separate processes) add up. The
caps are checked against it by `janus.llm.budget.CostGuard`.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from janus.llm.cache import (
    close_owner,
    open_owner,
    open_shared_db,
    owner_alive,
    write_transaction,
)

LEDGER_FILE = "spend.sqlite"
RUN_ID_ENV = "JANUS_RUN_ID"


def current_run_id(cwd: str | Path | None = None) -> str:
    """`$JANUS_RUN_ID`, else the git commit the run works toward, else `no-git`."""
    override = os.environ.get(RUN_ID_ENV)
    if override:
        return override
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, check=True
        ).stdout.strip()
        return head or "no-git"
    except (OSError, subprocess.CalledProcessError):
        return "no-git"


class SpendLedger:
    """Dollars paid per (run, role, stage), in `spend.sqlite`, and the dollars reserved by the
    requests in flight; safe across processes.

    A process about to send requests reserves their worst case in one transaction that first
    checks the caps against everything paid and reserved by every process of the run; each
    answer moves its cost from reserved to paid and frees the rest. A reservation of a process
    that has died is dropped at the next admission, so it holds no budget forever."""

    def __init__(self, directory: Path):
        self.path = directory / LEDGER_FILE
        self._lock = threading.Lock()
        self._connection = open_shared_db(
            self.path,
            (
                "CREATE TABLE IF NOT EXISTS spend ("
                " run TEXT NOT NULL, role TEXT NOT NULL, stage TEXT NOT NULL,"
                " usd REAL NOT NULL, answers INTEGER NOT NULL, updated REAL NOT NULL,"
                " PRIMARY KEY (run, role, stage))",
                "CREATE TABLE IF NOT EXISTS reservations ("
                " id INTEGER PRIMARY KEY AUTOINCREMENT, run TEXT NOT NULL, role TEXT NOT NULL,"
                " stage TEXT NOT NULL, usd REAL NOT NULL, owner TEXT NOT NULL,"
                " pid INTEGER NOT NULL, started REAL NOT NULL, created REAL NOT NULL)",
            ),
        )
        self.owner, self.pid, self.started = open_owner()

    def _transaction(self, body):
        return write_transaction(self._connection, self._lock, self.path, body)

    def add(self, run: str, role: str, stage: str, usd: float, answers: int = 1) -> None:
        with self._lock:
            self._add(self._connection, run, role, stage, usd, answers)

    @staticmethod
    def _add(connection, run: str, role: str, stage: str, usd: float, answers: int) -> None:
        connection.execute(
            "INSERT INTO spend VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (run, role, stage)"
            " DO UPDATE SET usd = usd + excluded.usd, answers = answers + excluded.answers,"
            " updated = excluded.updated",
            (run, role, stage, usd, answers, time.time()),
        )

    def total(self, run: str, role: str | None = None) -> float:
        query, args = "SELECT COALESCE(SUM(usd), 0) FROM spend WHERE run = ?", [run]
        if role is not None:
            query += " AND role = ?"
            args.append(role)
        with self._lock:
            return float(self._connection.execute(query, args).fetchone()[0])

    def reserve(
        self, run: str, role: str, stage: str, caps: dict[str, float], costs: Sequence[float]
    ) -> tuple[int, int | None, dict[str, float], float]:
        """Reserve the longest prefix of `costs` that fits under every cap (`role`: this role's
        spend in the run; `run`: the whole run's), counting what every process has paid and
        reserved. Returns (how many fit, the reservation's id, USD left under each cap before
        this reservation, USD reserved by other live processes)."""
        memo: dict[int, float | None] = {}

        def admit(connection) -> tuple[int, int | None, dict[str, float], float]:
            for rid, owner, pid, started in connection.execute(
                "SELECT id, owner, pid, started FROM reservations WHERE owner != ?", (self.owner,)
            ).fetchall():
                if not owner_alive(owner, pid, started, memo):
                    connection.execute("DELETE FROM reservations WHERE id = ?", (rid,))
            used, others = {}, 0.0
            for name, role_filter in (("role", role), ("run", None)):
                clause, args = " WHERE run = ?", [run]
                if role_filter is not None:
                    clause += " AND role = ?"
                    args.append(role_filter)
                paid = connection.execute(
                    "SELECT COALESCE(SUM(usd), 0) FROM spend" + clause, args
                ).fetchone()[0]
                reserved = connection.execute(
                    "SELECT COALESCE(SUM(usd), 0) FROM reservations" + clause, args
                ).fetchone()[0]
                used[name] = float(paid) + float(reserved)
                if name in caps:
                    others = max(others, float(reserved))
            left = {name: cap - used[name] for name, cap in caps.items()}
            room = min(left.values())
            count, total = 0, 0.0
            while count < len(costs) and total + costs[count] <= room:
                total += costs[count]
                count += 1
            if not count:
                return 0, None, left, others
            cursor = connection.execute(
                "INSERT INTO reservations (run, role, stage, usd, owner, pid, started, created)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (run, role, stage, total, self.owner, self.pid, self.started, time.time()),
            )
            return count, cursor.lastrowid, left, others

        return self._transaction(admit)

    def settle(
        self, reservation: int | None, worst: float, run: str, role: str, stage: str, usd: float
    ) -> None:
        """One request of a reservation is done: `usd` paid (0 without an answer) and its
        worst case `worst` no longer reserved. One transaction, so no cap check sees neither."""

        def move(connection) -> None:
            if reservation is not None:
                connection.execute(
                    "UPDATE reservations SET usd = MAX(usd - ?, 0) WHERE id = ?",
                    (worst, reservation),
                )
            if usd:
                self._add(connection, run, role, stage, usd, 1)

        self._transaction(move)

    def release(self, reservation: int) -> None:
        """What is left of a reservation once its requests are all done or unsent."""
        with self._lock:
            self._connection.execute("DELETE FROM reservations WHERE id = ?", (reservation,))

    def rows(self, run: str | None = None) -> list[dict[str, Any]]:
        query = "SELECT run, role, stage, usd, answers, updated FROM spend"
        args: list[Any] = []
        if run is not None:
            query += " WHERE run = ?"
            args.append(run)
        with self._lock:
            found = self._connection.execute(query + " ORDER BY updated", args).fetchall()
        names = ("run", "role", "stage", "usd", "answers", "updated")
        return [dict(zip(names, row, strict=True)) for row in found]

    def close(self) -> None:
        close_owner(self.owner)
        with self._lock:
            # dropped by the next admission anyway if this fails: the owner is closed
            with contextlib.suppress(sqlite3.Error):
                self._connection.execute("DELETE FROM reservations WHERE owner = ?", (self.owner,))
            self._connection.close()
