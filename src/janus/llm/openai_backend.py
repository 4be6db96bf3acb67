"""The openai backend: `openai.AsyncOpenAI` against OpenAI-compatible Chat Completions URLs.

Transport faults (429 with retry-after, 5xx, timeouts, dropped connections) are retried by the
openai client itself (`max_retries`, `timeout_s`, exponential backoff); an httpx event hook counts
each retry. Bodies that arrive but are not a chat completion are retried here; both draw on one
budget per item (`max_retries` in all). Errors no retry can fix (401, 403, 404, a 400 for a bad
parameter) stop the run at once. Structured outputs go the best route the endpoint supports (see
`janus.llm`). Several `base_url`s form a fleet: `max_in_flight` workers per endpoint, each
request to the endpoint with the fewest in flight; one that stops answering is taken out.

The bodies it sends and reads are `janus.llm.openai_wire`'s; the per-minute limits are
`janus.llm.rate_limit`'s.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from janus.config.llm import LLMConfig
from janus.llm.openai_wire import (
    REJECTION_STATUSES,
    ROUTES,
    EndpointConfigError,
    MalformedResponse,
    describe_error,
    error_mentions_response_format,
    is_prose,
    parse_chat_completion,
    shape_request,
)
from janus.llm.rate_limit import RateLimiter
from janus.llm.types import Generation, Job, UsageStats
from janus.logging_utils import get_logger

log = get_logger(__name__)

DEFAULT_BASE_URL = "https://api.openai.com/v1"
_MALFORMED_BACKOFF_S = (0.5, 8.0)  # first delay, cap


# Connection-level failures in a row (after the openai client's own retries) that take an
# endpoint of a fleet out; its items go to the others meanwhile.
ENDPOINT_DOWN_AFTER = 3
_PER_ITEM_400 = (
    "context length",
    "context_length",
    "maximum context",
    "too long",
    "too many tokens",
)


@dataclass
class Endpoint:
    """One server of the fleet, with this run's counts (runtime record `endpoints`)."""

    url: str
    in_flight: int = 0
    alive: bool = True
    connection_failures: int = 0  # in a row
    counts: dict[str, int] = field(
        default_factory=lambda: {"requests": 0, "answers": 0, "errors": 0, "retries": 0}
    )
    client: Any = None


class OpenAIBackend:
    """Concurrent Chat Completions calls with limits, retries, structured-output fallbacks."""

    name = "openai"

    def __init__(self, config: LLMConfig, stats: UsageStats):
        self.config = config
        self.stats = stats
        urls = config.base_urls()
        self._api_key = os.environ.get(config.api_key_env)
        if not self._api_key:
            if None in urls:
                raise EndpointConfigError(
                    f"the openai backend needs an API key in the environment variable "
                    f"{config.api_key_env!r} (llm.*.api_key_env names it)"
                )
            self._api_key = "unused"  # self-hosted servers (vLLM, transformers serve) take none
        self.endpoints = [Endpoint((url or DEFAULT_BASE_URL).rstrip("/")) for url in urls]
        self.base_url = ", ".join(endpoint.url for endpoint in self.endpoints)  # for messages
        # the structured-output route in use; auto starts at the top and only ever goes down
        self.route = (
            "json_schema" if config.structured_output == "auto" else config.structured_output
        )
        self._prose_in_a_row = 0
        self._request_limit = RateLimiter(config.requests_per_minute)
        self._token_limit = RateLimiter(config.tokens_per_minute)
        self._route_lock = threading.Lock()
        for name in ("malformed_responses", "structured_fallbacks", "missing_usage", "refusals"):
            stats.extra.setdefault(name, 0)
        stats.extra["structured_route"] = self.route
        stats.extra["endpoints"] = {endpoint.url: endpoint.counts for endpoint in self.endpoints}

    def identity(self) -> dict[str, Any]:
        # Never the URL: a restarted server on another port, or another replica, is the same
        # model. What is: who serves it, the model's name and revision, the structured mode.
        provider = self.config.provider or (
            "openai" if self.config.base_url is None else "self-hosted"
        )
        return {
            "backend": "openai",
            "provider": provider,
            "model": self.config.model,
            "revision": self.config.model_revision,
            "structured_output": self.config.structured_output,
        }

    def close(self) -> None:
        pass  # each run() opens and closes its own HTTP clients, bound to its own event loop

    # -- structured-output routes --------------------------------------------------------------

    def _downgrade(self, from_route: str, reason: str) -> None:
        if self.config.structured_output != "auto":
            return
        with self._route_lock:
            if self.route != from_route or from_route == ROUTES[-1]:
                return  # another request already moved us down
            self.route = ROUTES[ROUTES.index(from_route) + 1]
            self._prose_in_a_row = 0
            self.stats.extra["structured_fallbacks"] += 1
            self.stats.extra["structured_route"] = self.route
        log.warning(
            "%s (model %s): %s; structured outputs now use the %r route",
            self.base_url,
            self.config.model,
            reason,
            self.route,
        )

    def _note_answer(self, route: str | None, generation: Generation) -> None:
        """Evidence about the endpoint: only a run of prose answers under response_format."""
        if route not in ("json_schema", "json_object"):
            return
        if generation.refusal:
            self.stats.extra["refusals"] += 1
            return
        if not is_prose(generation):
            if generation.text.strip():
                self._prose_in_a_row = 0
            return
        self._prose_in_a_row += 1
        if self._prose_in_a_row >= self.config.prose_answers_before_fallback:
            self._downgrade(
                route, f"{self._prose_in_a_row} prose answers in a row despite response_format"
            )

    # -- running jobs --------------------------------------------------------------------------

    def run(self, jobs: Iterable[Job], on_done) -> None:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            asyncio.run(self._run_all(jobs, on_done))
            return
        # called from inside an event loop (a notebook): run ours on a thread of its own
        failure: list[BaseException] = []

        def target() -> None:
            try:
                asyncio.run(self._run_all(jobs, on_done))
            except BaseException as error:  # noqa: BLE001 - re-raised on the caller's thread
                failure.append(error)

        thread = threading.Thread(target=target, name="janus-llm-openai")
        thread.start()
        thread.join()
        if failure:
            raise failure[0]

    def _pick(self) -> Endpoint:
        alive = [endpoint for endpoint in self.endpoints if endpoint.alive]
        if not alive:
            raise EndpointConfigError(
                f"every endpoint of the fleet stopped answering ({self.base_url}); "
                "check the servers and llm.*.base_url"
            )
        return min(alive, key=lambda endpoint: endpoint.in_flight)

    async def _run_all(self, jobs: Iterable[Job], on_done) -> None:
        import openai

        stats = self.stats

        for endpoint in self.endpoints:

            async def count_retries(request, endpoint=endpoint) -> None:
                # the openai client numbers its attempts in this header; > 0 means a retry
                if request.headers.get("x-stainless-retry-count", "0") not in ("0", ""):
                    stats.retries += 1
                    endpoint.counts["retries"] += 1

            endpoint.client = openai.AsyncOpenAI(
                api_key=self._api_key,
                base_url=endpoint.url,
                max_retries=self.config.max_retries,
                timeout=self.config.timeout_s,
                http_client=_http_client(count_retries, self.config.max_in_flight),
            )
        request_limit, token_limit = self._request_limit, self._token_limit
        source = iter(jobs)  # pulled lazily by the workers: no task per job up front

        async def worker() -> None:
            for job in source:
                try:
                    generation = await self._complete(job, request_limit, token_limit)
                except EndpointConfigError:
                    raise
                except Exception as error:  # noqa: BLE001 - a per-item failure, counted
                    on_done(job, None, describe_error(error))
                    continue
                on_done(job, generation, None)

        workers = self.config.max_in_flight * len(self.endpoints)
        try:
            async with asyncio.TaskGroup() as group:
                for _ in range(workers):
                    group.create_task(worker())
        except* EndpointConfigError as errors:
            raise errors.exceptions[0] from None
        finally:
            for endpoint in self.endpoints:
                await endpoint.client.close()
                endpoint.client = None

    def _fatal(self, endpoint: Endpoint, error) -> EndpointConfigError | None:
        """The error to stop the run with, for faults that no retry or other item can fix."""
        import openai

        status = getattr(error, "status_code", None)
        message = str(error).replace("\n", " ")[:300]
        if isinstance(error, openai.BadRequestError) and any(
            phrase in message.lower() for phrase in _PER_ITEM_400
        ):
            return None  # one prompt too long for the model: that item fails, the rest go on
        if status in (401, 403):
            fix = f"the key in ${self.config.api_key_env} (llm.*.api_key_env) and its permissions"
        elif status == 404:
            fix = "llm.*.model (the model name the endpoint serves) and llm.*.base_url"
        elif status == 400:
            fix = (
                "the parameter it names: llm.*.structured_output, or the stage's generation "
                "params (max_tokens, temperature, top_p)"
            )
        else:
            return None
        return EndpointConfigError(
            f"{endpoint.url} (model {self.config.model!r}) answered {type(error).__name__} "
            f"(HTTP {status}): {message}. No retry can fix this; nothing more is sent. "
            f"Check {fix}."
        )

    async def _complete(
        self, job: Job, request_limit: RateLimiter, token_limit: RateLimiter
    ) -> Generation:
        import openai

        request = job.request
        while True:
            route = self.route if request.schema is not None else None
            messages, extra = shape_request(job, route)
            estimated_tokens = sum(len(m["content"]) for m in messages) / 4 + request.max_tokens
            await request_limit.acquire(1)
            await token_limit.acquire(estimated_tokens)
            endpoint = self._pick()
            budget = max(0, job.retries_left - job.retries_used)
            endpoint.in_flight += 1
            endpoint.counts["requests"] += 1
            try:
                # The openai client's generic post (its README's way to call any endpoint):
                # its retries, errors and headers, without validating params into a typed
                # request and a typed response per call, which costs more CPU than the rest
                # of the request at 200k items. The body is the Chat Completions wire format.
                response = await endpoint.client.post(
                    "/chat/completions",
                    cast_to=_httpx().Response,
                    body={
                        "model": self.config.model,
                        "messages": messages,
                        "temperature": request.temperature,
                        "top_p": request.top_p,
                        "max_tokens": request.max_tokens,
                        "seed": job.seed,
                        **extra,
                    },
                    options={"max_retries": budget},
                )
            except openai.APIStatusError as error:
                endpoint.counts["errors"] += 1
                endpoint.connection_failures = 0
                if (
                    route in ("json_schema", "json_object")
                    and self.config.structured_output == "auto"
                    and error.status_code in REJECTION_STATUSES
                    and error_mentions_response_format(error)
                ):
                    self._downgrade(
                        route, f"rejected response_format {route} ({error.status_code})"
                    )
                    continue  # the same job again, on the next route
                fatal = self._fatal(endpoint, error)
                if fatal is not None:
                    raise fatal from None
                job.retries_used += budget  # the openai client spent them before giving up
                raise
            except openai.APIConnectionError:
                # refused, dropped, timed out, after the client's own retries on this endpoint
                endpoint.counts["errors"] += 1
                endpoint.connection_failures += 1
                others = [e for e in self.endpoints if e.alive and e is not endpoint]
                if others:
                    if endpoint.connection_failures >= ENDPOINT_DOWN_AFTER and endpoint.alive:
                        endpoint.alive = False
                        log.warning(
                            "%s stopped answering; taken out of the fleet, its items go to %s",
                            endpoint.url,
                            ", ".join(e.url for e in others),
                        )
                    continue  # the item goes to another endpoint; its budget is untouched
                job.retries_used += budget
                raise
            finally:
                endpoint.in_flight -= 1
            endpoint.connection_failures = 0
            # the openai client numbers its attempts in this header of the request it sent last
            job.retries_used += int(response.request.headers.get("x-stainless-retry-count") or 0)
            try:
                generation = parse_chat_completion(response.text)
            except MalformedResponse as error:
                self.stats.extra["malformed_responses"] += 1
                endpoint.counts["errors"] += 1
                if job.retries_used >= job.retries_left:
                    raise
                self.stats.retries += 1
                endpoint.counts["retries"] += 1
                delay = min(_MALFORMED_BACKOFF_S[0] * 2**job.retries_used, _MALFORMED_BACKOFF_S[1])
                job.retries_used += 1
                log.info("malformed response (%s); retrying in %.1fs", error, delay)
                await asyncio.sleep(delay)
                continue
            endpoint.counts["answers"] += 1
            if generation.prompt_tokens == 0 and generation.completion_tokens == 0:
                self.stats.extra["missing_usage"] += 1
            self._note_answer(route, generation)
            return generation


def _httpx():
    """The httpx module the openai client is built on (newer releases vendor it as httpx2)."""
    try:
        from openai._base_client import httpx2 as httpx
    except ImportError:
        import httpx
    return httpx


def _http_client(count_retries, max_in_flight: int):
    """The HTTP client under the openai client: its aiohttp transport where the package has it
    (one pool that stays cheap with hundreds of requests in flight; httpx's own pool scans every
    connection per request), else httpx; keep-alive for every connection in flight."""
    import openai

    hooks = {"request": [count_retries]}
    limits = _httpx().Limits(max_connections=max_in_flight, max_keepalive_connections=max_in_flight)
    try:
        return openai.DefaultAioHttpClient(event_hooks=hooks, limits=limits)
    except (RuntimeError, AttributeError):  # the aiohttp extra is not installed
        return openai.DefaultAsyncHttpxClient(event_hooks=hooks, limits=limits)

