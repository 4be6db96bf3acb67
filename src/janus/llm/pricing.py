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
    """Dollars paid per (run, role, stage), in `spend.sqlite`; safe across processes."""

    def __init__(self, directory: Path):
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / LEDGER_FILE
        self._lock = threading.Lock()
        self._connection = sqlite3.connect(
            self.path, timeout=60, isolation_level=None, check_same_thread=False
        )
        self._connection.execute("PRAGMA journal_mode=WAL")
        self._connection.execute(
            "CREATE TABLE IF NOT EXISTS spend ("
            " run TEXT NOT NULL, role TEXT NOT NULL, stage TEXT NOT NULL,"
            " usd REAL NOT NULL, answers INTEGER NOT NULL, updated REAL NOT NULL,"
            " PRIMARY KEY (run, role, stage))"
        )

    def add(self, run: str, role: str, stage: str, usd: float, answers: int = 1) -> None:
        with self._lock:
            self._connection.execute(
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
        with self._lock:
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

    # -- forecast ------------------------------------------------------------------------------

    def _prompt_estimate(self, request: ChatRequest) -> int:
        key = id(request)
        if key not in self._estimates:
            estimator = token_estimator(self.config)
            self._estimates[key] = estimator.prompt_tokens(request.message_list())
        return self._estimates[key]

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
        """The jobs in chunks whose worst case fits what is left; raises BudgetExceeded before a
        job that would not fit. With no cap (or a free model), one chunk of everything."""
        if not self.caps or self.rates is None:
            yield jobs
            return
        position = 0
        while position < len(jobs):
            left = self.left()
            room = min(left.values())
            chunk_end, reserved = position, 0.0
            while chunk_end < len(jobs):
                cost = self.worst_case(jobs[chunk_end])
                if reserved + cost > room:
                    break
                reserved += cost
                chunk_end += 1
            if chunk_end == position:
                raise BudgetExceeded(self._stop_message(jobs, position, left))
            yield jobs[position:chunk_end]
            position = chunk_end

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

    def paid(self, generation: Generation) -> None:
        """One answer arrived from the backend (not the cache): add it to the ledger."""
        usd = generation_cost(self.rates, generation, self.batch)
        self.spent_usd += usd
        if self.ledger is not None and usd:
            self.ledger.add(self.run_id, self.role, self.stage, usd)

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
