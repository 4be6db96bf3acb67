"""The data that crosses the one LLM interface every stage uses."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ChatRequest:
    """One generation: chat messages in, text (and a parsed object, with a schema) out."""

    messages: tuple[tuple[str, str], ...] | list[dict[str, str]]
    schema: dict[str, Any] | None = None  # JSON schema: structured output, validated
    temperature: float = 1.0
    top_p: float = 1.0
    max_tokens: int = 512
    sample_index: int = 0  # distinct samples of the same prompt (best-of-N, repeated judging)
    tag: str = ""  # the caller's id for logs; not part of the cache key

    def message_list(self) -> list[dict[str, str]]:
        if self.messages and isinstance(self.messages[0], dict):
            return [dict(m) for m in self.messages]  # type: ignore[arg-type]
        return [{"role": role, "content": content} for role, content in self.messages]  # type: ignore[misc]


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


@dataclass
class ChatResult:
    request: ChatRequest
    text: str | None = None
    parsed: Any = None  # the schema-valid object when request.schema is set
    error: str | None = None  # None on success; else why the item failed after all retries
    failure_reason: str | None = None  # a short key for counting: invalid_output, http_404, ...
    attempts: int = 0  # generations it took (cached ones included)
    cached: bool = False  # every attempt came from the cache
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str | None = None  # of the last answer: stop | length (cut off by max_tokens)
    rejection: Exception | None = None  # the caller's parse function's last ValueError, if any

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class Generation:
    """One answer from a backend, as the cache stores it."""

    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str = "stop"  # stop | length (cut off by max_tokens)
    # prompt tokens the API served from its prompt cache (usage.prompt_tokens_details); priced at
    # the cached rate. Not stored in the response cache: it describes one payment, not the answer.
    cached_prompt_tokens: int = 0
    # The endpoint's `message.refusal` (not stored in the cache: a refusal is never evidence
    # that the endpoint ignores response_format, and it is re-asked like any invalid answer).
    refusal: bool = field(default=False, compare=False)


@dataclass
class Job:
    """One generation handed to a backend: a request at a given attempt, with its own seed."""

    request: ChatRequest
    messages: list[dict[str, str]]
    attempt: int
    key: str  # the cache key; also what the seed is derived from
    seed: int
    index: int  # position in the caller's list
    # The item's one budget for transport retries and malformed bodies, across all its attempts;
    # the backend adds what it used to `retries_used`.
    retries_left: int = 0
    retries_used: int = 0


@dataclass
class UsageStats:
    """What an LLMClient did. `as_metrics()` holds only results that an unchanged rerun from a
    warm cache reproduces (DVC metrics); `as_runtime()` holds how this run went (requests sent,
    retries, cache hits, seconds, dollars spent), for `janus.io.write_runtime`."""

    requests: int = 0  # generations actually sent to a backend, failed ones included
    cache_hits: int = 0
    retries: int = 0  # transport retries (429, 5xx, timeouts, dropped connections) + malformed
    invalid_outputs: int = 0  # answers that failed schema validation (each was re-asked)
    empty_outputs: int = 0  # empty or whitespace-only answers (re-asked; stored, replayed)
    failed: int = 0  # items that still had no valid answer after every retry
    succeeded: int = 0
    failed_by_reason: dict[str, int] = field(default_factory=dict)
    # Tokens and cost of every answer used (cached ones included): what the outputs cost to make,
    # stable across reruns. What this run itself sent and spent is in the runtime record.
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    schema_outputs: int = 0  # structured answers received (cached ones included)
    # this run only: sent_prompt_tokens, sent_completion_tokens, spent_usd, seconds, the
    # structured-output route, per-endpoint counts, ...
    extra: dict[str, Any] = field(default_factory=dict)

    def count_failure(self, reason: str) -> None:
        self.failed += 1
        self.failed_by_reason[reason] = self.failed_by_reason.get(reason, 0) + 1

    def as_metrics(self) -> dict[str, Any]:
        total = self.succeeded + self.failed
        return {
            "items": total,
            "succeeded": self.succeeded,
            "failed": self.failed,
            "failed_by_reason": dict(sorted(self.failed_by_reason.items())),
            "valid_rate": (self.succeeded / total) if total else None,
            "invalid_outputs": self.invalid_outputs,
            "empty_outputs": self.empty_outputs,
            # the share of structured answers that were schema-valid on arrival
            "valid_output_rate": (
                (self.schema_outputs - self.invalid_outputs) / self.schema_outputs
                if self.schema_outputs
                else None
            ),
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "cost_usd": round(self.cost_usd, 6),  # of the answers used, at list price
            # what these requests were forecast to use (janus.llm.budget): a function of the
            # requests alone, so it sits beside the actual figures above
            **({"forecast": self.extra["forecast"]} if "forecast" in self.extra else {}),
        }

    def as_runtime(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "cache_hits": self.cache_hits,
            "retries": self.retries,
            **{
                key: round(value, 6) if isinstance(value, float) else value
                for key, value in self.extra.items()
                if key != "forecast"  # a result: in as_metrics
            },
        }
