"""`LLMClient`: the cache, schema validation with re-asking, accounting and progress, over a backend."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from janus.config import LLMConfig
from janus.llm.cache import ResponseCache, cache_key, resolve_cache_dir
from janus.llm.pricing import CostGuard
from janus.llm.structured import InvalidOutput, check_schema, parse_and_validate
from janus.llm.types import ChatRequest, ChatResult, Generation, Job, UsageStats
from janus.logging_utils import get_logger, progress

log = get_logger(__name__)


class Backend(Protocol):
    name: str

    def identity(self) -> dict[str, Any]: ...

    def run(self, jobs: list[Job], on_done) -> None: ...

    def close(self) -> None: ...


def make_backend(config: LLMConfig, stats: UsageStats) -> Backend:
    if config.backend == "local":
        from janus.llm.local import LocalBackend

        return LocalBackend(config.model, config.batch_size, config.device, config.dtype)
    if config.backend == "openai" and config.mode == "batch":
        from janus.llm.batch import BatchBackend

        return BatchBackend(config, stats)
    if config.backend == "openai":
        from janus.llm.openai_backend import OpenAIBackend

        return OpenAIBackend(config, stats)
    raise ValueError(f"unknown LLM backend {config.backend!r}")


def request_fields(request: ChatRequest) -> dict[str, Any]:
    """What of a request determines its answer (everything but `tag`)."""
    return {
        "messages": request.message_list(),
        "schema": request.schema,
        "temperature": request.temperature,
        "top_p": request.top_p,
        "max_tokens": request.max_tokens,
        "sample_index": request.sample_index,
    }


class LLMClient:
    """The one way stages call an LLM. Use as a context manager; see `janus.llm` for the design."""

    def __init__(self, config: LLMConfig, stage: str = "", backend: Backend | None = None):
        self.config = config
        self.stage = stage
        self.stats = UsageStats()
        self.cache = ResponseCache(resolve_cache_dir(config.cache_dir))
        # forecast, budget stop and spend ledger (janus.llm.pricing): consulted at 4 points below
        self.cost = CostGuard(config, stage, self.stats, resolve_cache_dir(config.cache_dir))
        self.backend = backend or make_backend(config, self.stats)
        self._identity = self.backend.identity()
        price = config.prices.get(config.model)
        self._price = (price.input_per_mtok, price.output_per_mtok) if price else None
        for name in ("sent_prompt_tokens", "sent_completion_tokens", "spent_usd", "seconds"):
            self.stats.extra.setdefault(name, 0)
        self.stats.extra["schema_outputs"] = 0

    # -- context manager ---------------------------------------------------------------------

    def __enter__(self) -> LLMClient:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        self.backend.close()
        self.cache.close()
        self.cost.close(self.backend)

    # -- keys --------------------------------------------------------------------------------

    def cache_key(self, request: ChatRequest, attempt: int = 0) -> str:
        return cache_key(self._identity, request_fields(request), attempt)

    # -- generation --------------------------------------------------------------------------

    def generate(
        self,
        requests: Iterable[ChatRequest],
        desc: str = "generating",
        parse: Callable[[ChatResult], Any] | None = None,
    ) -> list[ChatResult]:
        """One result per request, in order. Per-item failures land in `result.error`.

        `parse(result)` reads an answer (its `text`, and `parsed` when the request has a schema)
        and returns what `result.parsed` becomes, or raises ValueError: the answer then counts as
        invalid and is re-asked like a schema violation (`max_invalid_retries`); the last
        rejection stays in `result.rejection`, so callers can count failures by reason."""
        requests = list(requests)
        for request in requests:
            if request.schema is not None:
                check_schema(request.schema)
        self.cost.forecast(requests)
        results = [ChatResult(request=request, cached=True) for request in requests]
        started = time.perf_counter()
        bar = progress(len(requests), desc)
        retry_next_round: list[int] = []

        def finish(index: int, error: str | None = None) -> None:
            result = results[index]
            if error is not None:
                result.error = error
                self.stats.failed += 1
                log.warning(
                    "%s: item %s failed: %s", self.stage or desc, result.request.tag or index, error
                )
            else:
                self.stats.succeeded += 1
            bar.update(1)
            bar.set_postfix(
                cached=self.stats.cache_hits,
                invalid=self.stats.invalid_outputs,
                retries=self.stats.retries,
                failed=self.stats.failed,
                refresh=False,
            )

        def take(index: int, attempt: int, generation: Generation) -> None:
            """Account one answer and decide: done, re-ask, or failed."""
            result = results[index]
            request = result.request
            result.attempts += 1
            result.prompt_tokens += generation.prompt_tokens
            result.completion_tokens += generation.completion_tokens
            self.stats.prompt_tokens += generation.prompt_tokens
            self.stats.completion_tokens += generation.completion_tokens
            self.stats.cost_usd += self._cost(generation)
            result.text = generation.text
            result.finish_reason = generation.finish_reason
            if request.schema is None and parse is None:
                finish(index)
                return
            # answers checked by a schema or a parse function (valid_output_rate's denominator)
            self.stats.extra["schema_outputs"] += 1
            result.rejection = None
            try:
                if request.schema is not None:
                    result.parsed = parse_and_validate(generation.text, request.schema)
                if parse is not None:
                    result.parsed = parse(result)
            except ValueError as invalid:  # InvalidOutput, or the parse function's rejection
                result.rejection, result.parsed = invalid, None
                self.stats.invalid_outputs += 1
                if generation.finish_reason == "length":
                    invalid = InvalidOutput(f"truncated at max_tokens; {invalid}")
                if attempt < self.config.max_invalid_retries:
                    retry_next_round.append(index)
                else:
                    finish(index, f"invalid output after {attempt + 1} attempt(s): {invalid}")
                return
            finish(index)

        # identical requests in one call are sent once; the others share the answer
        duplicates: dict[str, list[int]] = {}

        def on_done(job: Job, generation: Generation | None, error: str | None) -> None:
            results[job.index].cached = False
            if generation is None:
                # not cached: a rerun tries again
                for index in (job.index, *duplicates.get(job.key, ())):
                    finish(index, error or "no answer")
                return
            self.cache.put(job.key, generation, self.stage)  # committed now: survives a crash
            self.stats.requests += 1
            self.stats.extra["sent_prompt_tokens"] += generation.prompt_tokens
            self.stats.extra["sent_completion_tokens"] += generation.completion_tokens
            self.stats.extra["spent_usd"] += self._cost(generation)
            self.cost.paid(generation)
            take(job.index, job.attempt, generation)
            for index in duplicates.get(job.key, ()):
                self.stats.cache_hits += 1
                take(index, job.attempt, generation)

        pending = list(range(len(requests)))
        try:
            for attempt in range(self.config.max_invalid_retries + 1):
                retry_next_round = []
                jobs = []
                duplicates.clear()
                for index in pending:
                    key = self.cache_key(requests[index], attempt)
                    cached = self.cache.get(key)
                    if cached is not None:
                        self.stats.cache_hits += 1
                        take(index, attempt, cached)
                    elif key in duplicates:
                        duplicates[key].append(index)
                    else:
                        duplicates[key] = []
                        jobs.append(self._job(requests[index], index, attempt, key))
                for admitted in self.cost.admit(jobs) if jobs else ():
                    self.backend.run(admitted, on_done)  # raises BudgetExceeded at a cap
                pending = retry_next_round
                if not pending:
                    break
        finally:
            bar.close()
            self.stats.extra["seconds"] += time.perf_counter() - started
        log.info(
            "%s: %d ok, %d failed; %d requests, %d cache hits, %d retries, %d invalid outputs",
            self.stage or desc,
            sum(result.ok for result in results),
            sum(not result.ok for result in results),
            self.stats.requests,
            self.stats.cache_hits,
            self.stats.retries,
            self.stats.invalid_outputs,
        )
        return results

    def _job(self, request: ChatRequest, index: int, attempt: int, key: str) -> Job:
        return Job(
            request=request,
            messages=request.message_list(),
            attempt=attempt,
            key=key,
            seed=int(key[:15], 16),  # fits a signed 64-bit seed
            index=index,
        )

    def _cost(self, generation: Generation) -> float:
        if self._price is None:
            return 0.0
        return (
            generation.prompt_tokens * self._price[0]
            + generation.completion_tokens * self._price[1]
        ) / 1e6
