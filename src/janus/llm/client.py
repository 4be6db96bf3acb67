"""`LLMClient`: the cache, schema validation with re-asking, accounting and progress, over a backend."""

from __future__ import annotations

import itertools
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Protocol, TypeVar

from janus.config.llm import LLMConfig
from janus.lifecycle import handle_sigterm
from janus.llm.budget import CostGuard
from janus.llm.cache import ResponseCache, cache_key, item_key, resolve_cache_dir
from janus.llm.structured import InvalidOutput, check_schema, parse_and_validate
from janus.llm.types import ChatRequest, ChatResult, Generation, Job, UsageStats
from janus.logging_utils import get_logger, progress

log = get_logger(__name__)

# Requests handed to the backend at a time: bounds memory at 200k items, and is large enough
# that the pipeline's drain between chunks costs little (the rate limiter banks idle time).
DEFAULT_CHUNK_SIZE = 4096
# How often a process waiting for answers that others are asking for looks again, and how often it
# says so in the log.
CLAIM_POLL_S = 0.1
CLAIM_LOG_S = 30.0

Row = TypeVar("Row")  # a caller's item, paired with its result by `LLMClient.stream_rows`


class StageFailed(RuntimeError):
    """More items failed than the stage's `max_failed_fraction` allows, or the endpoint looks
    broken (a run of failures). Raised before the stage's output is in place (a stage that
    streams its rows to `janus.io.write_jsonl` loses its temporary file); every answer already
    paid for is in the cache, so a rerun replays the items that succeeded and asks again for
    the failed ones (a fresh round of attempts for an item whose answers were all rejected)."""

    def __init__(
        self,
        stage: str,
        failed: int,
        items: int,
        by_reason: dict[str, int],
        max_failed_fraction: float | None,
        unasked: int = 0,
        broken: str | None = None,
        unit: str = "items",  # what failed, in the message: "items", "requests"
    ):
        self.failed, self.items, self.by_reason, self.unasked = failed, items, by_reason, unasked
        reasons = ", ".join(f"{reason}: {n}" for reason, n in sorted(by_reason.items()))
        if broken:
            head = f"{stage}: stopped early, the endpoint looks broken ({broken})"
        else:
            head = (
                f"{stage}: {failed} of {items} {unit} failed, more than "
                f"{stage}.max_failed_fraction={max_failed_fraction} allows"
            )
        super().__init__(
            f"{head}; failed by reason: {{{reasons}}}"
            + (f"; {unasked} items not asked yet" if unasked else "")
            + f". Nothing was written; every answer received is cached, so a rerun (dvc repro)"
            f" takes the {items - failed} items that succeeded from the cache without a request"
            f" and asks again for the {failed} failed"
            + (f" and {unasked} unasked" if unasked else "")
            + " items (a fresh round of attempts for each whose answers were all rejected)."
        )


def check_failed_fraction(
    stage: str,
    by_reason: dict[str, int],
    items: int,
    max_failed_fraction: float | None,
    unit: str = "items",
) -> None:
    """Raise `StageFailed` when more than `max_failed_fraction` of `items` failed. For stages that
    re-ask on their own (the judge); `LLMClient` applies it to every call it is given it for."""
    failed = sum(by_reason.values())
    if max_failed_fraction is not None and failed > max_failed_fraction * items:
        raise StageFailed(stage, failed, items, by_reason, max_failed_fraction, unit=unit)


class Backend(Protocol):
    name: str

    def identity(self) -> dict[str, Any]: ...

    def run(self, jobs: Iterable[Job], on_done) -> None: ...

    def close(self) -> None: ...


def make_backend(config: LLMConfig, stats: UsageStats, stage: str = "") -> Backend:
    if config.backend == "local":
        from janus.llm.local import LocalBackend, hub_snapshot

        hub_id = config.hub_id()
        if hub_id is not None:
            # a hub model (the open judge) runs on vLLM when it can, transformers otherwise
            from janus.llm.local_vllm import LocalVLLMBackend, vllm_ready

            if vllm_ready(config.device):
                path, fingerprint = hub_snapshot(hub_id, config.model_revision)
                return LocalVLLMBackend(path, fingerprint, config.dtype)
        return LocalBackend(
            config.model,
            config.batch_size,
            config.device,
            config.dtype,
            hub_id=config.hub_id(),
            revision=config.model_revision,
        )
    if config.backend == "openai" and config.mode == "batch":
        from janus.llm.batch import BatchBackend

        return BatchBackend(config, stats, stage=stage)  # the stage labels its batches
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


def failure_reason(error: str) -> str:
    """A short, countable key for a backend's error text: http_404, timeout, malformed_response."""
    head = error.split(":", 1)[0]
    if "(HTTP " in head:
        return "http_" + head.split("(HTTP ", 1)[1].rstrip(")").strip()
    if "Timeout" in head:
        return "timeout"
    if "Connection" in head:
        return "connection_error"
    if "Malformed" in head:
        return "malformed_response"
    return head.strip().replace(" ", "_").lower() or "error"


class LLMClient:
    """The one way stages call an LLM. Use as a context manager; see `janus.llm` for the design.

    `max_failed_fraction` (the stage's params key of that name): past it `generate`/`stream`
    raise `StageFailed` at the end instead of returning; None leaves the check to the caller.
    """

    def __init__(
        self,
        config: LLMConfig,
        stage: str = "",
        backend: Backend | None = None,
        max_failed_fraction: float | None = None,
        chunk_size: int | None = None,  # None: the backend's `chunk_size`, else DEFAULT_CHUNK_SIZE
    ):
        self.config = config
        self.stage = stage
        self.max_failed_fraction = max_failed_fraction
        # SIGTERM unwinds like Ctrl-C: claims and reservations released, runtime written
        handle_sigterm()
        self.stats = UsageStats()
        self.cache = ResponseCache(resolve_cache_dir(config.cache_dir))
        # forecast, budget stop and spend ledger (janus.llm.budget): consulted at 4 points below
        self.cost = CostGuard(config, stage, self.stats, resolve_cache_dir(config.cache_dir))
        self.backend = backend or make_backend(config, self.stats, stage)
        # A backend may take more at a time: batch mode a whole batch (50,000 requests), since
        # chunks run one after another and each batch may take hours.
        self.chunk_size = chunk_size or getattr(self.backend, "chunk_size", DEFAULT_CHUNK_SIZE)
        self._identity = self.backend.identity()
        price = config.prices.get(config.model)
        self._price = (price.input_per_mtok, price.output_per_mtok) if price else None
        for name in (
            "sent_prompt_tokens",
            "sent_completion_tokens",
            "spent_usd",
            "seconds",
            "failed_items_asked_again",  # items failed in an earlier run, asked a fresh round
        ):
            self.stats.extra.setdefault(name, 0)
        self._bad_in_a_row = 0
        self._broken: str | None = None  # why the run stopped early, once it has
        # items that had failed in an earlier run and were asked again (fresh rounds)
        self._asked_again: set[str] = set()

    # -- context manager ---------------------------------------------------------------------

    def __enter__(self) -> LLMClient:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        self.backend.close()
        self.cache.close()
        self.cost.close(self.backend)
        if self.stage:
            # how this run went: requests sent, retries, cache hits, seconds, dollars spent
            from janus.io import write_runtime

            runtime = self.stats.as_runtime()
            log.info("%s: LLM runtime %s", self.stage, runtime)
            write_runtime(f"{self.stage}.llm", runtime)

    # -- keys --------------------------------------------------------------------------------

    def cache_key(self, request: ChatRequest, attempt: int = 0) -> str:
        return cache_key(self._identity, request_fields(request), attempt)

    # -- generation --------------------------------------------------------------------------

    def generate(
        self,
        requests: Iterable[ChatRequest],
        desc: str = "generating",
        parse: Callable[[ChatResult], Any] | None = None,
        check_failures: bool = True,
    ) -> list[ChatResult]:
        """One result per request, in order. Per-item failures land in `result.error`; past the
        failure threshold (or on a broken endpoint) raises `StageFailed`.

        `parse(result)` reads an answer (its `text`, and `parsed` when the request has a schema)
        and returns what `result.parsed` becomes, or raises ValueError: the answer then counts as
        invalid and is re-asked like a schema violation (`max_invalid_retries`); the last
        rejection stays in `result.rejection`, so callers can count failures by reason.

        `check_failures=False` leaves the threshold to the caller (`check_failed_fraction`), for
        a pass split over several calls that must be judged as one."""
        requests = list(requests)
        return list(self.stream(requests, desc, len(requests), parse, check_failures))

    def stream(
        self,
        requests: Iterable[ChatRequest],
        desc: str = "generating",
        total: int | None = None,
        parse: Callable[[ChatResult], Any] | None = None,
        check_failures: bool = True,
    ) -> Iterator[ChatResult]:
        """Results in request order, produced a chunk at a time: at 200k items neither the
        requests nor the results need to be held at once (write each row as it comes).

        Failures are counted from this call's own results, so another call made between its
        chunks (gold_responses re-asks a window's cut-off answers) does not count against it."""
        if total is None and hasattr(requests, "__len__"):
            total = len(requests)  # type: ignore[arg-type]
        bar = progress(total, desc)  # tqdm: rate and ETA
        items = 0
        by_reason: Counter[str] = Counter()
        iterator = iter(requests)
        try:
            while chunk := list(itertools.islice(iterator, self.chunk_size)):
                started = time.perf_counter()
                try:
                    results = self._run_chunk(chunk, bar, parse)
                finally:
                    # time spent asking, not time the caller spends between chunks
                    self.stats.extra["seconds"] += time.perf_counter() - started
                items += len(chunk)
                by_reason.update(r.failure_reason for r in results if not r.ok)
                yield from results
                if self._broken:
                    unasked = sum(1 for _ in iterator) if total is None else total - items
                    raise StageFailed(
                        self.stage or desc,
                        by_reason.total(),
                        items,
                        dict(by_reason),
                        self.max_failed_fraction,
                        unasked=unasked,
                        broken=self._broken,
                    )
        finally:
            bar.close()
        failed = by_reason.total()
        log.info(
            "%s: %d ok, %d failed; %d requests, %d cache hits, %d retries, %d invalid outputs,"
            " %d items that had failed before asked again",
            self.stage or desc,
            items - failed,
            failed,
            self.stats.requests,
            self.stats.cache_hits,
            self.stats.retries,
            self.stats.invalid_outputs,
            len(self._asked_again),
        )
        if check_failures:
            check_failed_fraction(
                self.stage or desc, dict(by_reason), items, self.max_failed_fraction
            )

    def stream_rows(
        self,
        rows: Iterable[Row],
        to_request: Callable[[Row], ChatRequest],
        desc: str = "generating",
        total: int | None = None,
        parse: Callable[[ChatResult], Any] | None = None,
    ) -> Iterator[tuple[Row, ChatResult]]:
        """`stream` over `to_request(row)` for each row, yielding each row with its result, in
        order. Rows are read as their requests are asked for, so only the chunk in flight is
        held: a stage streams its input file to its output file."""
        asked: deque[Row] = deque()

        def requests() -> Iterator[ChatRequest]:
            for row in rows:
                asked.append(row)
                yield to_request(row)

        for result in self.stream(requests(), desc, total, parse):
            yield asked.popleft(), result

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
