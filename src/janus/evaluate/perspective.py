"""A client for the Perspective API's `comments:analyze` (the paper's toxicity scorer, F.4).

Request (POST `<url>?key=<key>`):
    {"comment": {"text": ...}, "languages": ["en"], "requestedAttributes": {"TOXICITY": {}}}
Response: `attributeScores.TOXICITY.summaryScore.value`, a probability in [0, 1].
Errors come back as `{"error": {"code": ..., "message": ..., "status": ...}}`.

The key is read from the environment variable named in params and travels only as the `key` query
parameter: it is never logged, and it is scrubbed from every error message this module makes.
429 and 5xx answers (and dropped connections, timeouts) are retried with exponential backoff,
honouring Retry-After; requests are spaced to `requests_per_second` (the API's default quota is
1 QPS). A text that still fails, or that the API rejects (e.g. an unsupported language), is
returned as an error for the caller to count; it never becomes a made-up score.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import requests

from janus.config.toxicity import PerspectiveParams
from janus.logging_utils import get_logger, progress

log = get_logger(__name__)

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
MAX_BACKOFF_S = 60.0


class PerspectiveError(RuntimeError):
    """A request that failed for good; the message never contains the API key."""


@dataclass
class PerspectiveStats:
    requests: int = 0  # HTTP requests sent, retries included
    retries: int = 0
    rate_limited: int = 0  # 429 answers
    failed: int = 0
    succeeded: int = 0
    errors: dict[str, int] = field(default_factory=dict)  # failure reason -> count

    def as_metrics(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "retries": self.retries,
            "rate_limited": self.rate_limited,
            "failed": self.failed,
            "succeeded": self.succeeded,
        }


def request_body(text: str, languages: Sequence[str]) -> dict[str, Any]:
    return {
        "comment": {"text": text},
        "languages": list(languages),
        "requestedAttributes": {"TOXICITY": {}},
    }


def parse_score(body: Any) -> float:
    """`attributeScores.TOXICITY.summaryScore.value`, checked to be a probability."""
    try:
        value = body["attributeScores"]["TOXICITY"]["summaryScore"]["value"]
    except (KeyError, TypeError):
        raise PerspectiveError(
            "malformed response: no attributeScores.TOXICITY.summaryScore.value"
        ) from None
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 <= value <= 1:
        raise PerspectiveError(f"malformed response: toxicity {value!r} is not in [0, 1]")
    return float(value)


def error_message(response: requests.Response) -> str:
    """The API's own error message when the body has one, else the HTTP reason."""
    try:
        error = response.json().get("error", {})
        detail = error.get("message") or error.get("status")
    except (ValueError, AttributeError):
        detail = None
    return f"HTTP {response.status_code}: {detail or response.reason or 'error'}"


def retry_after_seconds(response: requests.Response | None) -> float | None:
    if response is None:
        return None
    value = response.headers.get("Retry-After")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None  # an HTTP date; fall back to our own backoff


class _RedactKey(logging.Filter):
    """urllib3 logs each request line, query string and key included, at DEBUG level."""

    def __init__(self, key: str):
        super().__init__()
        self.key = key

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if self.key in message:
            record.msg, record.args = message.replace(self.key, "<redacted>"), ()
        return True


URLLIB3_LOGGER = "urllib3.connectionpool"


class PerspectiveClient:
    def __init__(
        self,
        params: PerspectiveParams,
        session: requests.Session | None = None,
        sleep=time.sleep,
    ):
        key = os.environ.get(params.key_env)
        if not key:
            raise PerspectiveError(
                f"the Perspective scorer needs an API key in the environment variable "
                f"{params.key_env} (toxicity.perspective.key_env)"
            )
        self.params = params
        self._key = key
        self.session = session or requests.Session()
        self.stats = PerspectiveStats()
        self._sleep = sleep
        self._next_request_at = 0.0
        self._log_filter = _RedactKey(key)
        logging.getLogger(URLLIB3_LOGGER).addFilter(self._log_filter)

    def _redact(self, message: str) -> str:
        return message.replace(self._key, "<redacted>")

    def _wait_for_slot(self) -> None:
        now = time.monotonic()
        if now < self._next_request_at:
            self._sleep(self._next_request_at - now)
        self._next_request_at = time.monotonic() + 1.0 / self.params.requests_per_second

    def score(self, text: str) -> float:
        """The toxicity of one text; raises PerspectiveError when it cannot be had."""
        body = request_body(text, self.params.languages)
        last_error = "no attempt"
        for attempt in range(self.params.max_retries + 1):
            if attempt:
                self.stats.retries += 1
            self._wait_for_slot()
            self.stats.requests += 1
            response = None
            try:
                response = self.session.post(
                    self.params.url,
                    params={"key": self._key},
                    json=body,
                    timeout=self.params.timeout_s,
                )
            except requests.RequestException as error:
                # requests puts the full URL, key included, in its messages.
                last_error = self._redact(f"{type(error).__name__}: {error}")
            else:
                if response.status_code == 200:
                    try:
                        payload = response.json()
                    except ValueError:
                        raise PerspectiveError("malformed response: not JSON") from None
                    return parse_score(payload)
                last_error = self._redact(error_message(response))
                if response.status_code == 429:
                    self.stats.rate_limited += 1
                if response.status_code not in RETRY_STATUSES:
                    raise PerspectiveError(last_error)
            if attempt < self.params.max_retries:
                wait = retry_after_seconds(response)
                if wait is None:
                    wait = self.params.backoff_s * 2**attempt
                log.info(
                    "perspective: %s; retry %d/%d in %.1fs",
                    last_error,
                    attempt + 1,
                    self.params.max_retries,
                    wait,
                )
                self._sleep(min(wait, MAX_BACKOFF_S))
        raise PerspectiveError(f"{last_error} (after {self.params.max_retries} retries)")

    def score_many(
        self, texts: Sequence[str], desc: str = "perspective"
    ) -> list[tuple[float | None, str | None]]:
        """(score, None) or (None, error) per text, in order; never raises per text."""
        results: list[tuple[float | None, str | None]] = []
        bar = progress(len(texts), desc)
        try:
            for text in texts:
                try:
                    results.append((self.score(text), None))
                    self.stats.succeeded += 1
                except PerspectiveError as error:
                    reason = str(error)
                    results.append((None, reason))
                    self.stats.failed += 1
                    self.stats.errors[reason] = self.stats.errors.get(reason, 0) + 1
                    log.warning("perspective: a text was not scored: %s", reason)
                bar.update(1)
                bar.set_postfix(failed=self.stats.failed, retries=self.stats.retries, refresh=False)
        finally:
            bar.close()
        return results

    def close(self) -> None:
        self.session.close()
        logging.getLogger(URLLIB3_LOGGER).removeFilter(self._log_filter)
