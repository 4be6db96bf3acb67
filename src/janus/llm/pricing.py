"""What LLM calls cost: rates from params and token estimates before sending.

- `Rates`: an `LLMConfig.prices` entry (USD per million tokens: input, cached input, output, and
  the Batch API discount on all three). A model without an entry is free (local models).
- `TokenEstimator`: prompt tokens of a request before it is sent. Local models use their own
  tokenizer and chat template; OpenAI models use tiktoken with the model's encoding when its BPE
  file is in tiktoken's cache (`$TIKTOKEN_CACHE_DIR`), else a documented fallback (4 characters
  a token plus OpenAI's per-message overhead). Estimating never goes online: tiktoken would
  fetch a missing BPE file on first use, and the forecast promises no network.

The dollars paid are kept in `janus.llm.ledger` (`SpendLedger`); the budget stop that the
client consults is `janus.llm.budget` (`CostGuard`).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from janus.config.llm import LLMConfig
from janus.llm.types import Generation
from janus.logging_utils import get_logger

log = get_logger(__name__)

# OpenAI's documented chat accounting: every message costs 3 tokens on top of its content, and
# every reply is primed with 3 more.
TOKENS_PER_MESSAGE = 3
TOKENS_PER_REPLY = 3
CHARS_PER_TOKEN = 4  # OpenAI's rule of thumb for English text, used when tiktoken cannot load


@dataclass(frozen=True)
class Rates:
    input_per_mtok: float
    cached_input_per_mtok: float
    output_per_mtok: float
    batch_discount: float

    @classmethod
    def of(cls, config: LLMConfig) -> Rates | None:
        price = config.prices.get(config.model)
        if price is None:
            return None
        return cls(
            price.input_per_mtok,
            price.cached_input_per_mtok,
            price.output_per_mtok,
            price.batch_discount,
        )

    def cost(
        self, prompt_tokens: int, completion_tokens: int, cached_tokens: int = 0, batch=False
    ) -> float:
        """USD for one answer; `cached_tokens` (part of `prompt_tokens`) at the cached rate."""
        cached = min(cached_tokens, prompt_tokens)
        usd = (
            (prompt_tokens - cached) * self.input_per_mtok
            + cached * self.cached_input_per_mtok
            + completion_tokens * self.output_per_mtok
        ) / 1e6
        return usd * (1.0 - self.batch_discount) if batch else usd


def generation_cost(rates: Rates | None, generation: Generation, batch: bool) -> float:
    if rates is None:
        return 0.0
    return rates.cost(
        generation.prompt_tokens,
        generation.completion_tokens,
        generation.cached_prompt_tokens,
        batch,
    )


# -- token estimates ---------------------------------------------------------------------------


class TokenEstimator:
    """Prompt tokens of a chat request, estimated before sending; `name` says how."""

    name = f"chars/{CHARS_PER_TOKEN}"

    def text_tokens(self, text: str) -> int:
        return math.ceil(len(text) / CHARS_PER_TOKEN)

    def prompt_tokens(self, messages: Sequence[dict[str, str]]) -> int:
        return TOKENS_PER_REPLY + sum(
            TOKENS_PER_MESSAGE + self.text_tokens(message["content"]) for message in messages
        )


class TiktokenEstimator(TokenEstimator):
    def __init__(self, encoding, model: str):
        self._encoding = encoding
        self.name = f"tiktoken:{encoding.name}"

    def text_tokens(self, text: str) -> int:
        return len(self._encoding.encode(text, disallowed_special=()))


class ChatTemplateEstimator(TokenEstimator):
    """Exact for local models: the checkpoint's tokenizer over its own chat template."""

    def __init__(self, tokenizer, checkpoint: str):
        self._tokenizer = tokenizer
        self.name = f"tokenizer:{checkpoint}"

    def text_tokens(self, text: str) -> int:
        return len(self._tokenizer(text, add_special_tokens=False)["input_ids"])

    def prompt_tokens(self, messages: Sequence[dict[str, str]]) -> int:
        if getattr(self._tokenizer, "chat_template", None):
            encoded = self._tokenizer.apply_chat_template(
                list(messages), tokenize=True, add_generation_prompt=True
            )
            # a list of ids, or (newer transformers) a BatchEncoding holding them
            ids = encoded["input_ids"] if hasattr(encoded, "keys") else encoded
            return len(ids)
        return super().prompt_tokens(messages)


_ESTIMATORS: dict[tuple[str, str], TokenEstimator] = {}
_TIKTOKEN_LOCK = threading.Lock()
# What to do once, online, for exact OpenAI token counts offline afterwards.
TIKTOKEN_HINT = (
    "put tiktoken's BPE file in a lasting cache once, online: TIKTOKEN_CACHE_DIR=~/.cache/tiktoken "
    "python -c \"import tiktoken; tiktoken.encoding_for_model('gpt-4-turbo')\" (and export "
    "TIKTOKEN_CACHE_DIR)"
)


def tiktoken_encoding_on_disk(model: str) -> Any | None:
    """tiktoken's encoding for an OpenAI model (cl100k_base for names it does not know), read
    from tiktoken's cache only; None when its BPE file is not there."""
    import tiktoken
    import tiktoken.load

    def not_on_disk(blobpath: str) -> bytes:
        raise FileNotFoundError(f"{blobpath} is not in tiktoken's cache")

    # tiktoken reads its cache first and calls `read_file` (an HTTP GET) only on a miss: swapping
    # that one function keeps every other step of its loading code and rules out the download.
    with _TIKTOKEN_LOCK:
        fetch = tiktoken.load.read_file
        tiktoken.load.read_file = not_on_disk
        try:
            try:
                return tiktoken.encoding_for_model(model)
            except KeyError:
                return tiktoken.get_encoding("cl100k_base")
        except (FileNotFoundError, ValueError) as error:
            log.info("tiktoken encoding for %s not on disk (%s): estimating", model, error)
            return None
        finally:
            tiktoken.load.read_file = fetch


def token_estimator(config: LLMConfig) -> TokenEstimator:
    """The best estimator available offline for the configured model (memoised)."""
    key = (config.backend, config.model)
    if key in _ESTIMATORS:
        return _ESTIMATORS[key]
    estimator: TokenEstimator = TokenEstimator()
    if config.backend == "local":
        if Path(config.model, "tokenizer_config.json").exists():
            try:
                from transformers import AutoTokenizer

                tokenizer = AutoTokenizer.from_pretrained(config.model)
                estimator = ChatTemplateEstimator(tokenizer, config.model)
            except Exception as error:  # noqa: BLE001 - an estimate; fall back, say so
                log.warning("tokenizer of %s did not load (%s); estimating", config.model, error)
    else:
        encoding = tiktoken_encoding_on_disk(config.model)
        if encoding is not None:
            estimator = TiktokenEstimator(encoding, config.model)
    _ESTIMATORS[key] = estimator
    return estimator

