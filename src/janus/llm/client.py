"""`LLMClient`: the cache, schema validation with re-asking, accounting and progress, over a backend.

This is the front stages use (construction, streaming in chunks, closing); how one chunk is asked
is `janus.llm.chunks`, the failures it raises `janus.llm.failures`, the backends
`janus.llm.backends`.
"""

from __future__ import annotations

import itertools
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

from janus.config.llm import LLMConfig
from janus.lifecycle import handle_sigterm
from janus.llm.backends import Backend, make_backend
from janus.llm.budget import CostGuard
from janus.llm.cache import ResponseCache, resolve_cache_dir
from janus.llm.chunks import ChunkRunner
from janus.llm.failures import StageFailed, check_failed_fraction
from janus.llm.types import ChatRequest, ChatResult, UsageStats
from janus.logging_utils import get_logger, progress

log = get_logger(__name__)

# Requests handed to the backend at a time: bounds memory at 200k items, and is large enough
# that the pipeline's drain between chunks costs little (the rate limiter banks idle time).
DEFAULT_CHUNK_SIZE = 4096

Row = TypeVar("Row")  # a caller's item, paired with its result by `LLMClient.stream_rows`


class LLMClient(ChunkRunner):
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
        # forecast, budget stop and spend ledger (janus.llm.budget), consulted in janus.llm.chunks
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

