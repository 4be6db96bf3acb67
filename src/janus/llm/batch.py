"""Batch mode of the openai backend (`LLMConfig.mode: batch`): the Files and Batches API.

The jobs of one `run()` are written as request files (JSON Lines, one Chat Completions request
per line, the cache key as `custom_id`), split at the API's limits (50,000 requests and 200 MB
per file), uploaded with `client.files.create(purpose="batch")` and started with
`client.batches.create(endpoint="/v1/chat/completions", completion_window="24h")`. Then the
batches are polled (`client.batches.retrieve`, a progress bar over their `request_counts`) until
each ends; its output file (`files.content(output_file_id)`) is parsed into answers and its error
file into counted failures. The client stores every answer in the cache; invalid answers are
re-asked by the client in a following batch (the next attempt's keys).

Resuming: every file and batch is recorded in `batches.sqlite` next to the response cache
before and after each step, so a stage killed while polling polls the same batches when rerun
(the keys it still needs are found there) instead of submitting them again. A kill between
`batches.create` and recording its id is covered too: the batch carries our file id, and a rerun
adopts the batch found for it in `client.batches.list()` before creating one.

Failed requests: lines of the error file (and requests a batch never reached: expired, failed or
cancelled batches) are counted by reason in `batch_errors`; expired requests and those that
failed with 429/5xx are submitted again in a following batch, up to `max_retries` rounds; the
rest fail for the client, which does not cache them, so a rerun asks again.

Structured-output route: each batch is written on the online backend's route (`auto` starts at
json_schema) and records it. A line the endpoint rejects for its `response_format` (400/422/501
naming it, in the error or output file) is the same evidence as online: the route moves down
(json_schema -> json_object -> prompt) and the item goes into the next batch on the new route,
outside the `max_retries` rounds (there are only two steps down); the batch's other answers are
kept, and a rejected line is not billed, so nothing is paid twice. Prose answers under
response_format count toward `prose_answers_before_fallback` as online.

Prices: the client accounts every answer at the batch rate (`batch_discount`), and the prompt
tokens the API reports as cached (`usage.prompt_tokens_details.cached_tokens`) at the cached rate.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from janus.config.llm import LLMConfig
from janus.llm.batch_files import (
    MAX_BYTES_PER_BATCH,
    MAX_REQUESTS_PER_BATCH,
    parse_line,
    rejects_response_format,
    split_requests,
)
from janus.llm.batch_state import BatchState
from janus.llm.cache import ResponseCache, resolve_cache_dir
from janus.llm.openai_backend import OpenAIBackend
from janus.llm.openai_wire import EndpointConfigError, shape_request
from janus.llm.types import Job, UsageStats
from janus.logging_utils import get_logger, progress

log = get_logger(__name__)

ENDPOINT = "/v1/chat/completions"
COMPLETION_WINDOW = "24h"
TERMINAL = ("completed", "expired", "failed", "cancelled")


class BatchBackend:
    """The Files + Batches API behind the `Backend` protocol (`run(jobs, on_done)`)."""

    name = "openai-batch"

    def __init__(
        self,
        config: LLMConfig,
        stats: UsageStats,
        state_dir: Path | None = None,
        max_requests: int | None = None,
        max_bytes: int | None = None,
        stage: str = "",
    ):
        self.config = config
        self.stats = stats
        # request shaping (structured-output route), the endpoint, the key, the identity: the
        # online backend's, so batch answers share the cache with online ones
        self.online = OpenAIBackend(config, stats)
        self.directory = state_dir or resolve_cache_dir(config.cache_dir)
        self.state = BatchState(self.directory)
        # read at construction, so tests can lower the module limits
        self.max_requests = max_requests or MAX_REQUESTS_PER_BATCH
        # what the client hands over at a time: one full batch, not the online chunk (4096),
        # which would make a 200k-item stage 49 batches waited for one after another
        self.chunk_size = self.max_requests
        self.max_bytes = max_bytes or MAX_BYTES_PER_BATCH
        self.stage = stage
        self._identity_key = json.dumps(self.identity(), sort_keys=True)
        # how this run went (runtime, not metrics: a resumed or warm run differs); the client's
        # CostGuard writes it to runtime/cost/<stage>.json
        self.runtime: dict[str, Any] = {
            "batches_submitted": 0,
            "batches_resumed": 0,
            "requests_submitted": 0,
            "errors": {},  # failed or expired requests by reason (error code, http_<status>)
        }

    def identity(self) -> dict[str, Any]:
        return self.online.identity()

    def close(self) -> None:
        self.state.close()

    def _client(self):
        import openai

        return openai.OpenAI(
            api_key=self.online._api_key,
            base_url=self.online.base_url,
            max_retries=self.config.max_retries,
            timeout=self.config.timeout_s,
        )

    # -- request files -----------------------------------------------------------------------

    def request_line(self, job: Job, route: str | None = None) -> bytes:
        """The JSONL line of a job, on `route` (default: the route in use now)."""
        route = (route or self.online.route) if job.request.schema is not None else None
        messages, extra = shape_request(job, route)
        body = {
            "model": self.config.model,
            "messages": messages,
            "temperature": job.request.temperature,
            "top_p": job.request.top_p,
            "max_tokens": job.request.max_tokens,
            "seed": job.seed,
            **extra,
        }
        line = {"custom_id": job.key, "method": "POST", "url": ENDPOINT, "body": body}
        return (json.dumps(line, ensure_ascii=False) + "\n").encode("utf-8")

    def _submit(self, client, jobs: list[Job]) -> list[str]:
        """Record, upload and start batches for these jobs; returns their local ids."""
        local_ids = []
        route = self.online.route  # moves only while collecting, never during a submit
        lines = ((job.key, self.request_line(job, route)) for job in jobs)
        for group in split_requests(lines, self.max_requests, self.max_bytes):
            local_id = f"janus-{uuid.uuid4().hex}"
            keys = [key for key, _ in group]
            self.state.add(local_id, self._identity_key, self.stage, keys, route)
            local_ids.append(local_id)
            self._start(client, local_id, b"".join(line for _, line in group), len(group))
        return local_ids

    def _start(self, client, local_id: str, content: bytes, count: int) -> None:
        uploaded = client.files.create(file=(f"{local_id}.jsonl", content), purpose="batch")
        self.state.update(local_id, file_id=uploaded.id, status="uploaded")
        self._create(client, local_id, uploaded.id)
        self.runtime["requests_submitted"] += count

    def _create(self, client, local_id: str, file_id: str) -> None:
        batch = client.batches.create(
            input_file_id=file_id,
            endpoint=ENDPOINT,
            completion_window=COMPLETION_WINDOW,
            metadata={"janus_local_id": local_id, "janus_stage": self.stage or "-"},
        )
        self.state.update(local_id, batch_id=batch.id, status=batch.status)
        self.runtime["batches_submitted"] += 1
        log.info("batch %s started (%s)", batch.id, local_id)

    def _recover(self, client, record: dict[str, Any], content: Callable[[], bytes]) -> None:
        """Bring a record interrupted before its batch id was saved to a running batch."""
        if record["file_id"] is None:  # killed before or during the upload: upload again
            self._start(client, record["local_id"], content(), len(record["keys"]))
            return
        for batch in client.batches.list(limit=100):
            if batch.input_file_id == record["file_id"]:  # created, then killed: adopt it
                self.state.update(record["local_id"], batch_id=batch.id, status=batch.status)
                log.info("adopted batch %s for %s", batch.id, record["local_id"])
                return
        self._create(client, record["local_id"], record["file_id"])

    # -- running -----------------------------------------------------------------------------

    def run(self, jobs: list[Job], on_done) -> None:
        if not jobs:
            return
        client = self._client()
        try:
            self._run(client, list(jobs), on_done)
        except Exception as error:
            import openai

            if isinstance(error, openai.AuthenticationError | openai.PermissionDeniedError):
                raise EndpointConfigError(
                    f"{self.online.base_url}: {type(error).__name__}; check the key in "
                    f"${self.config.api_key_env}"
                ) from None
            raise
        finally:
            client.close()

    def _run(self, client, jobs: list[Job], on_done) -> None:
        by_key = {job.key: job for job in jobs}
        waiting: set[str] = set(by_key)  # keys without a final answer or failure yet
        watched: list[dict[str, Any]] = []
        # 1. batches a killed run left open that carry keys we need: poll them, submit nothing
        for record in self.state.open_batches(self._identity_key):
            if waiting.intersection(record["keys"]):
                watched.append(record)
                self.runtime["batches_resumed"] += 1
                if record["batch_id"] is None:
                    keys = [key for key in record["keys"] if key in by_key]
                    self._recover(
                        client,
                        record,
                        lambda keys=keys, route=record["route"]: b"".join(
                            self.request_line(by_key[k], route) for k in keys
                        ),
                    )
        in_flight = {key for record in watched for key in record["keys"]}
        fresh = [job for job in jobs if job.key not in in_flight]
        bar = progress(len(jobs), f"batch {self.stage or self.config.model}", unit="request")
        rounds = 0
        try:
            if fresh:
                self._submit(client, fresh)
            while True:
                retry, rerouted = self._poll_all(client, by_key, waiting, on_done, bar)
                if retry:
                    rounds += 1
                    if rounds > self.config.max_retries:
                        for key in retry:
                            self._fail(
                                by_key[key], waiting, on_done, "retryable failures exhausted"
                            )
                        retry = []
                    else:
                        log.info(
                            "resubmitting %d expired or transiently failed requests", len(retry)
                        )
                if rerouted:
                    log.info(
                        "resubmitting %d requests on the %r route", len(rerouted), self.online.route
                    )
                if not retry and not rerouted:
                    break
                self._submit(client, [by_key[key] for key in retry + rerouted])
            for key in sorted(waiting):  # never leave a job without an outcome
                self._fail(by_key[key], waiting, on_done, "no answer or error line for it")
        finally:
            bar.close()

    def _poll_all(
        self, client, by_key, waiting: set[str], on_done, bar
    ) -> tuple[list[str], list[str]]:
        """Poll every open batch that carries a waiting key until all have ended; collect each
        as it ends. Returns the keys to submit again: (transient failures, moved down a route)."""
        retry: list[str] = []
        rerouted: list[str] = []
        while True:
            records = [
                record
                for record in self.state.open_batches(self._identity_key)
                if waiting.intersection(record["keys"]) and record["batch_id"] is not None
            ]
            if not records:
                return retry, rerouted
            done_counts = 0
            for record in records:
                batch = client.batches.retrieve(record["batch_id"])
                if batch.status != record["status"]:
                    self.state.update(record["local_id"], status=batch.status)
                if batch.status in TERMINAL:
                    again, moved = self._collect(client, record, batch, by_key, waiting, on_done)
                    retry += again
                    rerouted += moved
                elif batch.request_counts is not None:
                    done_counts += batch.request_counts.completed + batch.request_counts.failed
            answered = len(by_key) - len(waiting)
            bar.n = min(len(by_key), answered + done_counts)
            bar.set_postfix(batches=len(records), refresh=False)
            bar.refresh()
            if any(
                r["batch_id"]
                for r in self.state.open_batches(self._identity_key)
                if waiting.intersection(r["keys"])
            ):
                time.sleep(self.config.batch_poll_s)

    def _collect(
        self, client, record, batch, by_key, waiting: set[str], on_done
    ) -> tuple[list[str], list[str]]:
        """Parse an ended batch's output and error files into answers and counted failures.
        Returns the keys to submit again: (transient failures, moved down a route)."""
        errors: dict[str, int] = self.runtime["errors"]
        retry: list[str] = []
        rerouted: list[str] = []
        # lines written before routes were recorded: take the route in use now
        route = record["route"] or self.online.route
        seen: set[str] = set()
        orphans = None
        for file_id in (batch.output_file_id, batch.error_file_id):
            if not file_id:
                continue
            for number, raw in enumerate(client.files.content(file_id).text.splitlines(), 1):
                if not raw.strip():
                    continue
                try:
                    line = json.loads(raw)
                    key = line["custom_id"]
                except (json.JSONDecodeError, KeyError, TypeError):
                    _count(errors, "unreadable_line")
                    log.warning("batch %s: line %d of %s is unreadable", batch.id, number, file_id)
                    continue
                seen.add(key)
                generation, reason, retryable = parse_line(line)
                if key not in waiting:
                    if generation is not None and key not in by_key:
                        # paid for but not asked for by this call (a different stage's keys in a
                        # resumed batch): keep it in the cache for whoever asks next
                        orphans = orphans or ResponseCache(self.directory)
                        orphans.put(key, generation, record["stage"] or "")
                    continue
                has_schema = by_key[key].request.schema is not None
                if generation is not None:
                    if has_schema:
                        self.online._note_answer(route, generation)
                    waiting.discard(key)
                    on_done(by_key[key], generation, None)
                    continue
                if has_schema and rejects_response_format(line):
                    _count(errors, f"rejected_{route}")
                    self.online._downgrade(route, f"a batch line rejected response_format {route}")
                    if self.online.route != route:
                        rerouted.append(key)  # the next batch asks it on the route below
                    else:  # a fixed route, or nothing left below it: no batch can answer it
                        self._fail(
                            by_key[key],
                            waiting,
                            on_done,
                            f"batch request failed: the endpoint rejects response_format "
                            f"{route}; check llm.*.structured_output",
                        )
                    continue
                _count(errors, reason)
                if retryable:
                    retry.append(key)
                else:
                    self._fail(by_key[key], waiting, on_done, f"batch request failed: {reason}")
        # requests the batch never reached (a failed or cancelled batch has no files for them)
        for key in record["keys"]:
            if key in waiting and key not in seen:
                reason = f"batch_{batch.status}"
                _count(errors, reason)
                if batch.status == "failed":
                    detail = _batch_errors(batch)
                    self._fail(by_key[key], waiting, on_done, f"batch failed: {detail}")
                else:
                    retry.append(key)
        if orphans is not None:
            orphans.close()
        self.state.update(record["local_id"], status="collected")
        counts = batch.request_counts
        log.info(
            "batch %s %s: %s completed, %s failed",
            batch.id,
            batch.status,
            counts.completed if counts else "?",
            counts.failed if counts else "?",
        )
        return retry, rerouted

    @staticmethod
    def _fail(job: Job, waiting: set[str], on_done, error: str) -> None:
        waiting.discard(job.key)
        on_done(job, None, error)


def _count(errors: dict[str, int], reason: str) -> None:
    errors[reason] = errors.get(reason, 0) + 1


def _batch_errors(batch) -> str:
    data = getattr(getattr(batch, "errors", None), "data", None) or []
    return "; ".join(f"{e.code}: {e.message}" for e in data) or "no detail"

