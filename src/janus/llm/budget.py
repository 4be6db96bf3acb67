"""The budget guard `LLMClient` consults: forecast, budget stop and the ledger entry per answer.

`CostGuard` is the client's only hook into pricing: the forecast of a call's requests (into the
stage's metrics), the budget check before each chunk of jobs is handed to the backend (against
the shared `janus.llm.ledger.SpendLedger`, so the caps hold across processes), and the ledger
entry for each answer paid. Rates and token estimates come from `janus.llm.pricing`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from janus.config.llm import LLMConfig
from janus.llm.ledger import SpendLedger, current_run_id
from janus.llm.pricing import Rates, generation_cost, token_estimator
from janus.llm.types import ChatRequest, Generation, Job, UsageStats
from janus.logging_utils import get_logger

log = get_logger(__name__)

BUDGET_POLL_S = 0.2  # how often a process waiting for others' reservations looks again


class BudgetExceeded(RuntimeError):
    """The next requests would pass a `max_usd` cap; everything paid so far is in the cache."""


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
