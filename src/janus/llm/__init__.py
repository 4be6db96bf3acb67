"""The LLM layer: one client for every stage that asks an LLM (teacher, judge, scorers).

    from janus.llm import LLMClient, ChatRequest
    with LLMClient(params.llm.teacher, stage="preference_sets") as client:
        results = client.generate(requests, desc="preference sets")  # same order, never raises
    write_metrics("preference_sets", client.stats.as_metrics())

Backends (`LLMConfig.backend`):
- `local`: in-process transformers on a checkpoint directory (`LLMConfig.model`), batched
  (`batch_size`, left padding, the tokenizer's chat template), on cuda when available. Sampling
  is seeded per request from its cache key, so an answer does not depend on its batch-mates.
  Temperature 0 is greedy. Schema requests are decoded under outlines' JSON-schema constraint.
- `openai`: `openai.AsyncOpenAI` against any OpenAI-compatible `base_url` (OpenAI, Azure, vLLM,
  `transformers serve`), with at most `max_in_flight` requests in flight and requests/tokens per
  minute limits. The key comes only from the environment variable named by `api_key_env`.
  `janus.llm.serving.transformers_serve` serves a local checkpoint that way (tests, benchmark).

Cache: SQLite (WAL) in `$JANUS_CACHE_DIR`, else `LLMConfig.cache_dir` (absolute or ~, outside DVC
outputs so `dvc exp run --temp` copies share it). Each answer is committed the moment it arrives;
an interrupted stage resumes paying only for what is missing, and an unchanged rerun sends zero
requests. The key is a sha256 over the backend, the model's identity (local: a hash of the
checkpoint's files; openai: base_url and model name), the structured-output mode, the messages,
schema, temperature, top_p, max_tokens, sample_index and the attempt number; never `tag`, never
the API key.

Structured outputs: a request with `schema` gets `result.parsed`, validated with jsonschema. On
the openai backend `structured_output: auto` sends `response_format` json_schema (strict when the
schema allows it); an endpoint that rejects it (400/422/501 naming response_format), or accepts
it but answers prose (`transformers serve` ignores the field), moves the client to json_object
plus the schema in the prompt (`prompts/json_schema_instructions.user.j2`), then to the prompt
alone. The route is remembered per client, so the rejection is paid once. Whatever the route, an invalid or truncated answer counts in `invalid_outputs` and is
re-asked as a new sample (the next attempt number) up to `max_invalid_retries` times; then the
item fails.

Faults: 429 (honouring retry-after), 5xx, timeouts and dropped connections are retried with
backoff by the openai client (`max_retries`, `timeout_s`), malformed 2xx bodies by us with the
same budget; each retry is counted. A bad key (401/403) stops the run with a clear error. On the
local backend a failing batch is retried in halves, so only an item that fails alone fails.
An item that still fails gets `result.error`, is logged and counted in `stats.failed`; it is not
cached, so the next run asks again. `stats.as_metrics()` has requests, cache hits, retries,
invalid outputs, failures, valid rates, tokens and estimated cost (`LLMConfig.prices`).
"""

from janus.llm.client import LLMClient, StageFailed, check_failed_fraction
from janus.llm.types import ChatRequest, ChatResult, UsageStats

__all__ = [
    "ChatRequest",
    "ChatResult",
    "LLMClient",
    "StageFailed",
    "UsageStats",
    "check_failed_fraction",
]
