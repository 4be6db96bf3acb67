"""What LLM calls cost: rates from params, token estimates, the spend ledger and the budget stop.

- `Rates`: an `LLMConfig.prices` entry (USD per million tokens: input, cached input, output, and
  the Batch API discount on all three). A model without an entry is free (local models).
- `TokenEstimator`: prompt tokens of a request before it is sent. Local models use their own
  tokenizer and chat template; OpenAI models use tiktoken with the model's encoding when its BPE
  file is in tiktoken's cache (`$TIKTOKEN_CACHE_DIR`), else a documented fallback (4 characters
  a token plus OpenAI's per-message overhead). Estimating never goes online: tiktoken would
  fetch a missing BPE file on first use, and the forecast promises no network.
- `SpendLedger`: `spend.sqlite` next to the response cache, one row per (run, role, stage) with
  the dollars paid. A run is the work toward one git commit (`git rev-parse HEAD`), or
  `$JANUS_RUN_ID` when set, so the stages of one `dvc repro` (separate processes) add up.
- `CostGuard`: what `LLMClient` consults (its only hook into the client): the forecast of a
  call's requests (into the stage's metrics), the budget check before each chunk of jobs is
  handed to the backend, and the ledger entry for each answer paid.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from janus.config.llm import LLMConfig
from janus.llm.cache import (
    close_owner,
    open_owner,
    open_shared_db,
    owner_alive,
    write_transaction,
)
from janus.llm.types import ChatRequest, Generation, Job, UsageStats
from janus.logging_utils import get_logger

log = get_logger(__name__)

LEDGER_FILE = "spend.sqlite"
RUN_ID_ENV = "JANUS_RUN_ID"
# OpenAI's documented chat accounting: every message costs 3 tokens on top of its content, and
# every reply is primed with 3 more.
TOKENS_PER_MESSAGE = 3
TOKENS_PER_REPLY = 3
CHARS_PER_TOKEN = 4  # OpenAI's rule of thumb for English text, used when tiktoken cannot load
BUDGET_POLL_S = 0.2  # how often a process waiting for others' reservations looks again


class BudgetExceeded(RuntimeError):
    """The next requests would pass a `max_usd` cap; everything paid so far is in the cache."""


@dataclass(frozen=True)
class Rates:
    input_per_mtok: float
    cached_input_per_mtok: float
    output_per_mtok: float
    batch_discount: float

    @classmethod
    def of(cls, config: LLMConfig) -> Rates | None:
        price = config.prices.get(config.model)
        if price is None:
            return None
        return cls(
            price.input_per_mtok,
            price.cached_input_per_mtok,
            price.output_per_mtok,
            price.batch_discount,
        )

    def cost(
        self, prompt_tokens: int, completion_tokens: int, cached_tokens: int = 0, batch=False
    ) -> float:
        """USD for one answer; `cached_tokens` (part of `prompt_tokens`) at the cached rate."""
        cached = min(cached_tokens, prompt_tokens)
        usd = (
            (prompt_tokens - cached) * self.input_per_mtok
            + cached * self.cached_input_per_mtok
            + completion_tokens * self.output_per_mtok
        ) / 1e6
        return usd * (1.0 - self.batch_discount) if batch else usd


def generation_cost(rates: Rates | None, generation: Generation, batch: bool) -> float:
    if rates is None:
        return 0.0
    return rates.cost(
        generation.prompt_tokens,
        generation.completion_tokens,
        generation.cached_prompt_tokens,
        batch,
    )


# -- token estimates ---------------------------------------------------------------------------


class TokenEstimator:
    """Prompt tokens of a chat request, estimated before sending; `name` says how."""

    name = f"chars/{CHARS_PER_TOKEN}"

    def text_tokens(self, text: str) -> int:
        return math.ceil(len(text) / CHARS_PER_TOKEN)

    def prompt_tokens(self, messages: Sequence[dict[str, str]]) -> int:
        return TOKENS_PER_REPLY + sum(
            TOKENS_PER_MESSAGE + self.text_tokens(message["content"]) for message in messages
        )


class TiktokenEstimator(TokenEstimator):
    def __init__(self, encoding, model: str):
        self._encoding = encoding
        self.name = f"tiktoken:{encoding.name}"

    def text_tokens(self, text: str) -> int:
        return len(self._encoding.encode(text, disallowed_special=()))


class ChatTemplateEstimator(TokenEstimator):
    """Exact for local models: the checkpoint's tokenizer over its own chat template."""

    def __init__(self, tokenizer, checkpoint: str):
        self._tokenizer = tokenizer
        self.name = f"tokenizer:{checkpoint}"

    def text_tokens(self, text: str) -> int:
        return len(self._tokenizer(text, add_special_tokens=False)["input_ids"])

    def prompt_tokens(self, messages: Sequence[dict[str, str]]) -> int:
        if getattr(self._tokenizer, "chat_template", None):
            encoded = self._tokenizer.apply_chat_template(
                list(messages), tokenize=True, add_generation_prompt=True
            )
            # a list of ids, or (newer transformers) a BatchEncoding holding them
            ids = encoded["input_ids"] if hasattr(encoded, "keys") else encoded
            return len(ids)
        return super().prompt_tokens(messages)


_ESTIMATORS: dict[tuple[str, str], TokenEstimator] = {}
_TIKTOKEN_LOCK = threading.Lock()
# What to do once, online, for exact OpenAI token counts offline afterwards.
TIKTOKEN_HINT = (
    "put tiktoken's BPE file in a lasting cache once, online: TIKTOKEN_CACHE_DIR=~/.cache/tiktoken "
    "python -c \"import tiktoken; tiktoken.encoding_for_model('gpt-4-turbo')\" (and export "
    "TIKTOKEN_CACHE_DIR)"
)


def tiktoken_encoding_on_disk(model: str) -> Any | None:
    """tiktoken's encoding for an OpenAI model (cl100k_base for names it does not know), read
    from tiktoken's cache only; None when its BPE file is not there."""
    import tiktoken
    import tiktoken.load

    def not_on_disk(blobpath: str) -> bytes:
        raise FileNotFoundError(f"{blobpath} is not in tiktoken's cache")

    # tiktoken reads its cache first and calls `read_file` (an HTTP GET) only on a miss: swapping
    # that one function keeps every other step of its loading code and rules out the download.
    with _TIKTOKEN_LOCK:
        fetch = tiktoken.load.read_file
        tiktoken.load.read_file = not_on_disk
        try:
            try:
                return tiktoken.encoding_for_model(model)
            except KeyError:
                return tiktoken.get_encoding("cl100k_base")
        except (FileNotFoundError, ValueError) as error:
            log.info("tiktoken encoding for %s not on disk (%s): estimating", model, error)
            return None
        finally:
            tiktoken.load.read_file = fetch


def token_estimator(config: LLMConfig) -> TokenEstimator:
    """The best estimator available offline for the configured model (memoised)."""
    key = (config.backend, config.model)
    if key in _ESTIMATORS:
        return _ESTIMATORS[key]
    estimator: TokenEstimator = TokenEstimator()
    if config.backend == "local":
        if Path(config.model, "tokenizer_config.json").exists():
            try:
                from transformers import AutoTokenizer

                tokenizer = AutoTokenizer.from_pretrained(config.model)
                estimator = ChatTemplateEstimator(tokenizer, config.model)
            except Exception as error:  # noqa: BLE001 - an estimate; fall back, say so
                log.warning("tokenizer of %s did not load (%s); estimating", config.model, error)
    else:
        encoding = tiktoken_encoding_on_disk(config.model)
        if encoding is not None:
            estimator = TiktokenEstimator(encoding, config.model)
    _ESTIMATORS[key] = estimator
    return estimator


# -- the ledger --------------------------------------------------------------------------------


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


# -- the guard the client consults ---------------------------------------------------------------


class CostGuard:
    """Forecast, budget stop and spend accounting for one `LLMClient`."""

    def __init__(self, config: LLMConfig, stage: str, stats: UsageStats, cache_dir: Path):
        self.config = config
        self.stage = stage or "?"
        self.role = config.role or "llm"
        self.stats = stats
        self.rates = Rates.of(config)
        self.batch = config.mode == "batch"
        self.caps = {
            name: cap
            for name, cap in (("role", config.max_usd), ("run", config.run_max_usd))
            if cap is not None
        }
        self.run_id = current_run_id()
        # the ledger is opened only where money can be spent
        self.ledger = SpendLedger(cache_dir) if self.rates is not None else None
        self.spent_usd = 0.0  # paid by this client (runtime, not a metric)
        self._estimates: dict[int, int] = {}
        self._schema_estimates: dict[str, int] = {}
        self._reservation: int | None = None  # the ledger row of the jobs now in flight

    # -- forecast ------------------------------------------------------------------------------

    def _prompt_estimate(self, request: ChatRequest) -> int:
        """Every prompt token the request can be billed for: its messages, and on an API its
        JSON schema (sent as response_format, or written into the prompt on a fallback route:
        either way billed as prompt tokens)."""
        key = id(request)
        if key not in self._estimates:
            estimator = token_estimator(self.config)
            tokens = estimator.prompt_tokens(request.message_list())
            if request.schema is not None and self.config.backend != "local":
                tokens += self._schema_tokens(request.schema)
            self._estimates[key] = tokens
        return self._estimates[key]

    def _schema_tokens(self, schema: dict[str, Any]) -> int:
        """The larger of the schema's two billed forms: the response_format field, or the
        instructions that carry it in the prompt (json_object and prompt routes)."""
        from janus.llm.structured import schema_json
        from janus.prompts import render

        canonical = schema_json(schema)
        if canonical not in self._schema_estimates:
            estimator = token_estimator(self.config)
            response_format = {
                "type": "json_schema",
                "json_schema": {"name": "output", "schema": schema, "strict": True},
            }
            instructions = render("json_schema_instructions", "user", schema=canonical)
            self._schema_estimates[canonical] = max(
                estimator.text_tokens(json.dumps(response_format)),
                estimator.text_tokens("\n\n" + instructions),
            )
        return self._schema_estimates[canonical]

    def forecast(self, requests: Sequence[ChatRequest]) -> None:
        """Record in the stage's metrics what these requests were forecast to use (first
        attempts, prompt tokens estimated, completions at their max_tokens bound), next to what
        the answers used (`prompt_tokens`, `completion_tokens`, `cost_usd`)."""
        self._estimates.clear()  # keyed by id(): valid only while these requests live
        prompt = sum(self._prompt_estimate(request) for request in requests)
        completion_max = sum(request.max_tokens for request in requests)
        entry = self.stats.extra.setdefault(
            "forecast",
            {
                "requests": 0,
                "prompt_tokens": 0,
                "completion_tokens_max": 0,
                "cost_usd_max": 0.0,
                "batch_cost_usd_max": 0.0,
                "estimator": token_estimator(self.config).name,
            },
        )
        entry["requests"] += len(requests)
        entry["prompt_tokens"] += prompt
        entry["completion_tokens_max"] += completion_max
        if self.rates is not None:
            entry["cost_usd_max"] = round(
                entry["cost_usd_max"] + self.rates.cost(prompt, completion_max), 6
            )
            entry["batch_cost_usd_max"] = round(
                entry["batch_cost_usd_max"] + self.rates.cost(prompt, completion_max, batch=True),
                6,
            )

    # -- budget --------------------------------------------------------------------------------

    def worst_case(self, job: Job) -> float:
        """The most one job can cost: its prompt estimate and max_tokens of output."""
        if self.rates is None:
            return 0.0
        return self.rates.cost(
            self._prompt_estimate(job.request), job.request.max_tokens, batch=self.batch
        )

    def left(self) -> dict[str, float]:
        """USD left under each cap, from the ledger (every process of this run adds to it)."""
        if self.ledger is None:
            return {}
        spent = {
            "role": self.ledger.total(self.run_id, self.role),
            "run": self.ledger.total(self.run_id),
        }
        return {name: cap - spent[name] for name, cap in self.caps.items()}

    def admit(self, jobs: list[Job]) -> Iterator[list[Job]]:
        """The jobs in chunks whose worst case is reserved in the shared ledger, under every cap
        and after what every process of the run has paid and reserved; raises BudgetExceeded
        before a job that would not fit even once nothing else is in flight (while others are,
        it waits for them to settle). With no cap (or a free model), one chunk of everything."""
        if not self.caps or self.rates is None or self.ledger is None:
            yield jobs
            return
        position, waited_since = 0, None
        while position < len(jobs):
            costs = [self.worst_case(job) for job in jobs[position:]]
            count, reservation, left, others = self.ledger.reserve(
                self.run_id, self.role, self.stage, self.caps, costs
            )
            if not count:
                if others <= 0:
                    raise BudgetExceeded(self._stop_message(jobs, position, left))
                # other processes' requests in flight hold the room; what they leave unused
                # comes back when they settle (or die)
                now = time.monotonic()
                if waited_since is None or now - waited_since > 30:
                    log.info(
                        "%s: $%.4f of the budget is reserved by requests of other processes;"
                        " waiting for them to settle",
                        self.stage,
                        others,
                    )
                    waited_since = now
                time.sleep(BUDGET_POLL_S)
                continue
            self._reservation = reservation
            try:
                yield jobs[position : position + count]
            finally:
                self._reservation = None
                self.ledger.release(reservation)
            position += count

    def _stop_message(self, jobs: list[Job], position: int, left: dict[str, float]) -> str:
        binding = min(left, key=left.get)
        cap = self.caps[binding]
        role_key = f"llm.{self.config.role}.max_usd" if self.config.role else "max_usd"
        what = role_key if binding == "role" else "llm.run_max_usd"
        return (
            f"{self.stage}: budget reached ({what} = ${cap:,.2f}): spent ${cap - left[binding]:,.2f}"
            f" in run {self.run_id[:12]}, ${max(left[binding], 0):,.2f} left; the next request"
            f" could cost up to ${self.worst_case(jobs[position]):,.4f} and {len(jobs) - position}"
            f" request(s) are unsent. Everything paid is in the cache: raise the cap and rerun to"
            f" continue."
        )

    # -- accounting ----------------------------------------------------------------------------

    def paid(self, job: Job, generation: Generation | None) -> None:
        """A job admitted by `admit` is done: its answer's cost (none without one) goes into the
        ledger and its worst case out of the reservation, in one transaction."""
        usd = generation_cost(self.rates, generation, self.batch) if generation else 0.0
        self.spent_usd += usd
        if self.ledger is None or (not usd and self._reservation is None):
            return
        worst = self.worst_case(job) if self._reservation is not None else 0.0
        self.ledger.settle(self._reservation, worst, self.run_id, self.role, self.stage, usd)

    def runtime(self, backend: Any = None) -> dict[str, Any]:
        """What this client paid (runtime, not metrics: a warm cache pays nothing), with the
        backend's own account of the run where it keeps one (batch mode)."""
        return {
            "run": self.run_id,
            "role": self.role,
            "mode": self.config.mode,
            "paid_usd": round(self.spent_usd, 6),
            "left_usd": {name: round(value, 6) for name, value in self.left().items()},
            **(
                {"backend": backend.runtime}
                if isinstance(getattr(backend, "runtime", None), dict)
                else {}
            ),
        }

    def close(self, backend: Any = None) -> None:
        if self.ledger is not None:
            from janus.io import write_runtime

            write_runtime(f"cost/{self.stage.replace('/', '_')}", self.runtime(backend))
            self.ledger.close()
