"""The one runner of LLM steps (`janus.steps.base.Step`).

    from janus.steps.runner import collect_step, run_step

    metrics = run_step(step, rows, params.llm.teacher, out="data/x.jsonl", total=n)
    outputs, metrics = collect_step(step, rows, params.llm.teacher)  # small steps, kept in memory

`run_step` streams `rows` (any iterable, read lazily) through the LLM client a chunk at a time:
each row's request(s) from `step.format_input`, its answer(s) to `step.format_output`, each output
row written to `out` as it comes (`janus.io.write_jsonl`: a temporary file renamed into place at
the end, so a failure leaves no partial output). Rows keep their input order; only the chunk in
flight is held. A Rejection is counted by reason in `tally.rejected` and logged.

The failure threshold is enforced here and only here: past `max_failed_fraction` (the step's,
unless given) of the first-pass requests ending without an answer (after the client's own
retries and the step's re-asks), `StageFailed` is raised before `out` is in place. The client's
early stop on a broken endpoint raises `StageFailed` too.

Returns the step's metrics (`step.metrics(tally)`) with the client's under "llm".
`collect_step` does the same but returns the output rows as a list instead of writing them.

`client`: an open `janus.llm.LLMClient` to use (the caller closes it), else one is opened for
`llm_config` labelled `step.name`, over `backend` when one is given (tests inject one).
`chunk_size`: the client's (None: its default). `total`: how many rows `rows` holds (progress).
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from janus.config.llm import LLMConfig
from janus.io import write_jsonl
from janus.logging_utils import get_logger
from janus.steps.base import Rejection, Step, Tally

if TYPE_CHECKING:
    from janus.llm import ChatResult, LLMClient
    from janus.llm.client import Backend

log = get_logger(__name__)


class _FromStep:
    def __repr__(self) -> str:
        return "the step's max_failed_fraction"


FROM_STEP: Any = _FromStep()


def run_step(
    step: Step,
    rows: Iterable[dict[str, Any]],
    llm_config: LLMConfig | None,
    out: str | Path,
    total: int | None = None,
    chunk_size: int | None = None,
    max_failed_fraction: float | None = FROM_STEP,
    client: LLMClient | None = None,
    backend: Backend | None = None,
) -> dict[str, Any]:
    """Write the step's output rows for `rows` to `out` as they come; returns its metrics."""
    tally = Tally()
    threshold = _threshold(step, max_failed_fraction)
    with _client(step, llm_config, client, backend, chunk_size, threshold) as open_client:
        write_jsonl(out, _outputs(step, rows, open_client, tally, total, threshold))
    return {**step.metrics(tally), "llm": open_client.stats.as_metrics()}


def collect_step(
    step: Step,
    rows: Iterable[dict[str, Any]],
    llm_config: LLMConfig | None,
    total: int | None = None,
    chunk_size: int | None = None,
    max_failed_fraction: float | None = FROM_STEP,
    client: LLMClient | None = None,
    backend: Backend | None = None,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """`run_step` for a step whose outputs the caller uses in memory: (output rows, metrics)."""
    tally = Tally()
    threshold = _threshold(step, max_failed_fraction)
    with _client(step, llm_config, client, backend, chunk_size, threshold) as open_client:
        outputs = list(_outputs(step, rows, open_client, tally, total, threshold))
    return outputs, {**step.metrics(tally), "llm": open_client.stats.as_metrics()}


def _threshold(step: Step, given: float | None) -> float | None:
    return step.max_failed_fraction if given is FROM_STEP else given


@contextmanager
def _client(
    step: Step,
    config: LLMConfig | None,
    client: LLMClient | None,
    backend: Backend | None,
    chunk_size: int | None,
    threshold: float | None,
) -> Iterator[LLMClient]:
    if client is not None:
        yield client
        return
    from janus.llm import LLMClient

    if config is None:
        raise ValueError(f"{step.name}: an LLM config or an open client is needed")
    # The client gets the threshold too: at 1.0 (failures expected) it does not stop early on a
    # run of failures; the threshold itself is checked by the runner.
    with LLMClient(
        config,
        stage=step.name,
        backend=backend,
        max_failed_fraction=threshold,
        chunk_size=chunk_size,
    ) as opened:
        yield opened


def _outputs(
    step: Step,
    rows: Iterable[dict[str, Any]],
    client: LLMClient,
    tally: Tally,
    total: int | None,
    threshold: float | None,
) -> Iterator[dict[str, Any]]:
    """The step's output rows in input order; raises StageFailed past the threshold at the end."""
    from janus.llm import check_failed_fraction

    # (row, whether format_input gave a list, how many requests) for rows asked, not yet answered
    asked: deque[tuple[dict[str, Any], bool, int]] = deque()

    def requests() -> Iterator[Any]:
        for row in rows:
            made = step.format_input(row)
            listed = isinstance(made, list)
            batch = made if listed else [made]
            tally.rows += 1
            tally.requests += len(batch)
            asked.append((row, listed, len(batch)))
            yield from batch

    wanted = None if total is None else total * step.fan_out
    results: Iterable[ChatResult] = client.stream(
        requests(), step.desc, wanted, step.parse, check_failures=False
    )
    if type(step).reask is not Step.reask:
        results = _with_reasks(step, client, results, tally)
    answers: list[ChatResult] = []
    for result in results:
        if not result.ok:
            tally.failed[result.failure_reason or "error"] += 1
        answers.append(result)
        while asked and len(answers) >= asked[0][2]:
            row, listed, n = asked.popleft()
            mine, answers = answers[:n], answers[n:]
            yield from _written(step, row, mine if listed else mine[0], tally)
    while asked:  # rows that made no request
        row, listed, _ = asked.popleft()
        yield from _written(step, row, [] if listed else None, tally)
    check_failed_fraction(step.name, dict(tally.failed), tally.requests, threshold)


def _written(
    step: Step, row: dict[str, Any], answer: Any, tally: Tally
) -> Iterator[dict[str, Any]]:
    step.observe(row, answer, tally)
    made = step.format_output(row, answer)
    outputs = made if isinstance(made, list) else [made]
    # the answer each output came from, where they pair one to one (else the row's first)
    answers = answer if isinstance(answer, list) else [answer]
    sources = answers if len(answers) == len(outputs) else answers[:1] * len(outputs)
    for output, source in zip(outputs, sources or [None] * len(outputs), strict=True):
        if isinstance(output, Rejection):
            tally.rejected[output.reason] += 1
            tag = getattr(getattr(source, "request", None), "tag", None)
            log.warning("%s: no row for %s: %s (%s)", step.name, tag, output.reason, output.detail)
            continue
        tally.written += 1
        step.count(output, tally)
        yield output


def _with_reasks(
    step: Step, client: LLMClient, results: Iterable[ChatResult], tally: Tally
) -> Iterator[ChatResult]:
    """The results, a window (one client chunk) at a time, each answer the step wants asked again
    replaced by the new answer: the window's re-asks go out together before the window is passed
    on, so the rows keep their order and memory stays bounded."""
    iterator = iter(results)
    while window := list(itertools.islice(iterator, client.chunk_size)):
        again = [(i, step.reask(result, tally)) for i, result in enumerate(window)]
        again = [(i, request) for i, request in again if request is not None]
        if again:
            log.info("%s: asking %d answers again", step.name, len(again))
            answers = client.generate(
                [request for _, request in again],
                desc=f"{step.desc} (asked again)",
                parse=step.parse,
                check_failures=False,  # the runner holds all answers to the threshold together
            )
            for (i, _), answer in zip(again, answers, strict=True):
                window[i] = answer
            tally.reasked += len(again)
        yield from window
