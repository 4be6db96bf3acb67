"""The Batch API's files: request lines grouped within its limits, and the lines of an output or
error file read back into answers or failure reasons (see `janus.llm.batch`)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from janus.llm.openai_wire import (
    REJECTION_STATUSES,
    MalformedResponse,
    mentions_response_format,
)
from janus.llm.openai_wire import parse_chat_completion as parse_body
from janus.llm.types import Generation

MAX_REQUESTS_PER_BATCH = 50_000  # the Batch API's limits on one input file
MAX_BYTES_PER_BATCH = 200 * 1024 * 1024
# error codes worth another batch: the request never ran, or hit a transient fault
RETRYABLE_CODES = {"batch_expired", "batch_cancelled", "batch_failed", "rate_limit_exceeded"}


def cached_tokens(body: dict[str, Any]) -> int:
    """`usage.prompt_tokens_details.cached_tokens` of a Chat Completions body (0 if absent)."""
    usage = body.get("usage") if isinstance(body, dict) else None
    details = usage.get("prompt_tokens_details") if isinstance(usage, dict) else None
    value = details.get("cached_tokens") if isinstance(details, dict) else None
    return value if isinstance(value, int) else 0


def split_requests(
    lines: Iterable[tuple[str, bytes]],
    max_requests: int = MAX_REQUESTS_PER_BATCH,
    max_bytes: int = MAX_BYTES_PER_BATCH,
) -> list[list[tuple[str, bytes]]]:
    """(custom_id, JSONL line) pairs grouped into files within both limits, in order."""
    files: list[list[tuple[str, bytes]]] = []
    current: list[tuple[str, bytes]] = []
    size = 0
    for custom_id, line in lines:
        if len(line) > max_bytes:
            raise ValueError(f"request {custom_id} alone is {len(line)} bytes, over {max_bytes}")
        if current and (len(current) >= max_requests or size + len(line) > max_bytes):
            files.append(current)
            current, size = [], 0
        current.append((custom_id, line))
        size += len(line)
    if current:
        files.append(current)
    return files



def rejects_response_format(line: dict[str, Any]) -> bool:
    """Whether an output- or error-file line is the endpoint refusing the request's
    `response_format` (HTTP 400/422/501 whose error names it), as the online client reads it."""
    response = line.get("response")
    if not isinstance(response, dict) or response.get("status_code") not in REJECTION_STATUSES:
        return False
    return mentions_response_format(json.dumps(response.get("body"), default=str))


def parse_line(line: dict[str, Any]) -> tuple[Generation | None, str, bool]:
    """(answer, failure reason, retryable) of one output- or error-file line."""
    response = line.get("response")
    error = line.get("error")
    if isinstance(response, dict) and response.get("status_code") == 200:
        body = response.get("body")
        try:
            generation = parse_body(json.dumps(body))
        except MalformedResponse as malformed:
            return None, f"malformed_body: {malformed}", False
        extra_cached = cached_tokens(body)
        if extra_cached:
            generation = Generation(
                text=generation.text,
                prompt_tokens=generation.prompt_tokens,
                completion_tokens=generation.completion_tokens,
                finish_reason=generation.finish_reason,
                cached_prompt_tokens=extra_cached,
            )
        return generation, "", False
    if isinstance(error, dict) and error.get("code"):
        code = str(error["code"])
        return None, code, code in RETRYABLE_CODES
    status = response.get("status_code") if isinstance(response, dict) else None
    if isinstance(status, int):
        return None, f"http_{status}", status == 429 or status >= 500
    return None, "no_response", True
