"""How `LLMClient` asks for one chunk of requests: cache look-ups, claims shared with other
processes, the budget's admission, the backend's run, schema validation and re-asking in rounds,
and the early stop on a broken endpoint. `LLMClient` (janus.llm.client) is the front: it streams
requests through `_run_chunk` a chunk at a time and owns the state this mixin reads and updates.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from janus.config.llm import LLMConfig
from janus.llm.backends import Backend
from janus.llm.budget import CostGuard
from janus.llm.cache import ResponseCache, cache_key, item_key
from janus.llm.failures import failure_reason
from janus.llm.structured import InvalidOutput, check_schema, parse_and_validate
from janus.llm.types import ChatRequest, ChatResult, Generation, Job, UsageStats, request_fields
from janus.logging_utils import get_logger

log = get_logger(__name__)

# How often a process waiting for answers that others are asking for looks again, and how often it
# says so in the log.
CLAIM_POLL_S = 0.1
CLAIM_LOG_S = 30.0


class ChunkRunner:
    """The chunk runner of `LLMClient`, which sets these up in its constructor."""

    config: LLMConfig
    stage: str
    stats: UsageStats
    cache: ResponseCache
    cost: CostGuard
    backend: Backend
    max_failed_fraction: float | None
    _identity: dict[str, Any]
    _price: tuple[float, float] | None
    _bad_in_a_row: int
    _broken: str | None  # why the run stopped early, once it has
    _asked_again: set[str]  # items that had failed in an earlier run and were asked again

    # -- keys --------------------------------------------------------------------------------

    def cache_key(self, request: ChatRequest, attempt: int = 0) -> str:
        return cache_key(self._identity, request_fields(request), attempt)

    def _run_chunk(
        self, requests: list[ChatRequest], bar, parse: Callable[[ChatResult], Any] | None = None
    ) -> list[ChatResult]:
        for request in requests:
            if request.schema is not None:
                check_schema(request.schema)
        self.cost.forecast(requests)
        results = [ChatResult(request=request, cached=True) for request in requests]
        retries_used = [0] * len(requests)  # one transport/malformed budget per item
        retry_next_round: list[int] = []
        rounds = self.config.max_invalid_retries + 1  # attempts in a round
        # Each item's round starts where the cache says: 0, or after a round that an earlier
        # run (or another process) finished with every answer rejected (see janus.llm.cache).
        items = [item_key(self._identity, request_fields(request)) for request in requests]
        starts = self.cache.round_starts(items)

        def finish(index: int, error: str | None = None, reason: str | None = None) -> None:
            result = results[index]
            if error is not None:
                result.error = error
                result.failure_reason = reason or failure_reason(error)
                self.stats.count_failure(result.failure_reason)
                log.warning(
                    "%s: item %s failed: %s", self.stage, result.request.tag or index, error
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

        def reask_or_fail(index: int, attempt: int, error: str, reason: str) -> None:
            used = attempt - starts[index] + 1
            if used < rounds and not self._broken:
                retry_next_round.append(index)
                return
            finish(index, f"{error} after {used} attempt(s)", reason)
            if used >= rounds:
                # every attempt of the round was answered and rejected, and is stored: the next
                # run asks this item a fresh round instead of replaying this failure
                self.cache.start_next_round(items[index], starts[index], attempt + 1)

        def take(index: int, attempt: int, generation: Generation, fresh: bool = False) -> None:
            """Account one answer and decide: done, re-ask, or failed. A fresh answer (not from
            the cache) is also evidence on whether the endpoint works."""
            result = results[index]
            request = result.request
            result.attempts += 1
            result.text = generation.text
            result.finish_reason = generation.finish_reason
            if not generation.text.strip():
                # never a success: re-asked as a new sample (stored, so a rerun replays it)
                self.stats.empty_outputs += 1
                if fresh:
                    self._note_outcome(False, "empty answer")
                reask_or_fail(index, attempt, "empty answer", "empty_output")
                return
            result.prompt_tokens += generation.prompt_tokens
            result.completion_tokens += generation.completion_tokens
            self.stats.prompt_tokens += generation.prompt_tokens
            self.stats.completion_tokens += generation.completion_tokens
            self.stats.cost_usd += self._cost(generation)
            if request.schema is not None or parse is not None:
                # answers checked by a schema or a parse function (valid_output_rate's denominator)
                self.stats.schema_outputs += 1
                result.rejection = None
                try:
                    if request.schema is not None:
                        result.parsed = parse_and_validate(generation.text, request.schema)
                    if parse is not None:
                        result.parsed = parse(result)
                except ValueError as invalid:  # InvalidOutput, or the parse function's rejection
                    result.rejection, result.parsed = invalid, None
                    self.stats.invalid_outputs += 1
                    truncated = generation.finish_reason == "length"
                    if truncated:
                        invalid = InvalidOutput(f"truncated at max_tokens; {invalid}")
                    if fresh:
                        self._note_outcome(False, f"invalid output ({invalid})")
                    reason = "truncated" if truncated else "invalid_output"
                    reask_or_fail(index, attempt, f"invalid output ({invalid})", reason)
                    return
            if fresh:
                self._note_outcome(True)
            finish(index)

        # identical requests in one call are sent once; the others share the answer
        duplicates: dict[str, list[int]] = {}

        def answered_elsewhere(job: Job, generation: Generation) -> None:
            """Another process stored the answer while this one held the job: a cache hit."""
            for index in (job.index, *duplicates.get(job.key, ())):
                self.stats.cache_hits += 1
                take(index, job.attempt, generation)

        def on_done(job: Job, generation: Generation | None, error: str | None) -> None:
            results[job.index].cached = False
            retries_used[job.index] += job.retries_used
            self.cost.paid(job, generation)  # out of the reservation, into the ledger
            if starts[job.index] > 0:
                self._asked_again.add(items[job.index])
                self.stats.extra["failed_items_asked_again"] = len(self._asked_again)
            if generation is None:
                # not cached: a rerun (or a process waiting for this claim) asks again
                self.cache.release(job.key)
                self._note_outcome(False, error or "no answer")
                for index in (job.index, *duplicates.get(job.key, ())):
                    finish(index, error or "no answer")
                return
            self.stats.extra["sent_prompt_tokens"] += generation.prompt_tokens
            self.stats.extra["sent_completion_tokens"] += generation.completion_tokens
            self.stats.extra["spent_usd"] += self._cost(generation)
            # committed now (survives a crash); the first answer stored for a key is the one used
            stored = self.cache.put(job.key, generation, self.stage)
            take(job.index, job.attempt, stored, fresh=True)
            for index in duplicates.get(job.key, ()):
                self.stats.cache_hits += 1
                take(index, job.attempt, stored)

        def live(jobs: list[Job], deferred: list[Job]) -> Iterator[Job]:
            # Pulled lazily by the backend, one job as a worker frees up: the one place where a
            # request is let out, so every gate on sending belongs here: the broken endpoint,
            # and the claim (a key another process is asking for now is deferred, not paid for
            # twice). Once the endpoint looks broken, nothing more is sent.
            for job in jobs:
                if self._broken:
                    self.cost.paid(job, None)
                    finish_unsent(job)
                    continue
                claim = self.cache.claim([job.key])[job.key]
                if not claim.mine:
                    self.cost.paid(job, None)  # not sent: its reservation is free again
                    if claim.answer is not None:
                        answered_elsewhere(job, claim.answer)
                    else:
                        deferred.append(job)
                    continue
                self.stats.requests += 1
                yield job

        def finish_unsent(job: Job) -> None:
            results[job.index].cached = False
            for index in (job.index, *duplicates.get(job.key, ())):
                results[index].error = "not asked: the run stopped early"
                results[index].failure_reason = "not_asked"
                self.stats.count_failure("not_asked")
                bar.update(1)

        pending = list(range(len(requests)))
        for step in range(rounds):
            retry_next_round = []
            jobs = []
            duplicates.clear()
            for index in pending:
                attempt = starts[index] + step
                key = self.cache_key(requests[index], attempt)
                cached = self.cache.get(key)
                if cached is not None:
                    self.stats.cache_hits += 1
                    take(index, attempt, cached)
                elif key in duplicates:
                    duplicates[key].append(index)
                else:
                    duplicates[key] = []
                    job = self._job(requests[index], index, attempt, key)
                    job.retries_left = max(0, self.config.max_retries - retries_used[index])
                    jobs.append(job)
            while jobs:
                deferred: list[Job] = []
                # the budget admits the jobs in chunks whose worst case it has reserved;
                # BudgetExceeded at a cap
                for admitted in self.cost.admit(jobs):
                    self.backend.run(live(admitted, deferred), on_done)
                jobs = self._await_others(deferred, answered_elsewhere) if deferred else []
            pending = retry_next_round
            if not pending:
                break
        return results

    def _await_others(
        self, deferred: list[Job], answered: Callable[[Job, Generation], None]
    ) -> list[Job]:
        """Wait for the answers other processes are asking for. Returns the jobs that became
        this client's to ask (their holder gave up or died), once there are any."""
        waiting, since = deferred, time.monotonic()
        logged = since
        while True:
            claims = self.cache.claim([job.key for job in waiting])
            mine = [job for job in waiting if claims[job.key].mine]
            for job in waiting:
                if claims[job.key].answer is not None:
                    answered(job, claims[job.key].answer)
            waiting = [job for job in waiting if claims[job.key].holder is not None]
            if mine or not waiting:
                return mine + waiting  # the rest are deferred again, cheaply, in `live`
            now = time.monotonic()
            if now - logged > CLAIM_LOG_S:
                holders = sorted({claims[job.key].holder for job in waiting})
                log.info(
                    "%s: waiting %.0fs for %d answer(s) being asked by process(es) %s",
                    self.stage or "LLM",
                    now - since,
                    len(waiting),
                    ", ".join(map(str, holders)),
                )
                logged = now
            time.sleep(CLAIM_POLL_S)

    def _note_outcome(self, usable: bool, what: str = "") -> None:
        """Early stop: `broken_endpoint_window` unusable answers or failed requests in a row
        (every answer invalid, every request refused) mean the endpoint is broken."""
        if usable or self.backend.name == "local":
            # a local model's bad answers say nothing about an endpoint; the threshold decides
            self._bad_in_a_row = 0
            return
        self._bad_in_a_row += 1
        window = self.config.broken_endpoint_window
        if self._bad_in_a_row >= window and self.max_failed_fraction != 1.0 and not self._broken:
            self._broken = f"the last {window} requests got no usable answer, the last: {what}"
            log.error("%s: %s; stopping", self.stage or "LLM", self._broken)

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
