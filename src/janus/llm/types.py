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


@dataclass
class ChatResult:
    request: ChatRequest
    text: str | None = None
    parsed: Any = None  # the schema-valid object when request.schema is set
    error: str | None = None  # None on success; else why the item failed after all retries
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


@dataclass
class Job:
    """One generation handed to a backend: a request at a given attempt, with its own seed."""

    request: ChatRequest
    messages: list[dict[str, str]]
    attempt: int
    key: str  # the cache key; also what the seed is derived from
    seed: int
    index: int  # position in the caller's list


@dataclass
class UsageStats:
    requests: int = 0  # generations actually sent to a backend (0 on an unchanged rerun)
    cache_hits: int = 0
    retries: int = 0  # transport retries (429, 5xx, timeouts, dropped connections)
    invalid_outputs: int = 0  # answers that failed schema validation (each was re-asked)
    failed: int = 0  # items that still had no valid answer after every retry
    succeeded: int = 0
    # Tokens and cost of every answer used (cached ones included): what the outputs cost to make,
    # stable across reruns. What this run itself sent and spent is in extra["sent_*"/"spent_usd"].
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    def as_metrics(self) -> dict[str, Any]:
        total = self.succeeded + self.failed
        schema_outputs = self.extra.get("schema_outputs", 0)
        return {
            "requests": self.requests,
            "cache_hits": self.cache_hits,
            "retries": self.retries,
            "invalid_outputs": self.invalid_outputs,
            "failed": self.failed,
            "succeeded": self.succeeded,
            "valid_rate": (self.succeeded / total) if total else None,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "cost_usd": round(self.cost_usd, 6),
            # the share of structured answers that were schema-valid on arrival
            "valid_output_rate": (
                (schema_outputs - self.invalid_outputs) / schema_outputs if schema_outputs else None
            ),
            **{
                key: round(value, 6) if isinstance(value, float) else value
                for key, value in self.extra.items()
            },
        }
