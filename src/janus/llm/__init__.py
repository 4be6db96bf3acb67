"""The LLM layer: one client for every stage that asks an LLM (teacher, judge, scorers).

    from janus.llm import LLMClient, ChatRequest
    with LLMClient(params.llm.teacher, stage="preference_sets",
                   max_failed_fraction=params.preference_sets.max_failed_fraction) as client:
        results = client.generate(requests, desc="preference sets")  # same order
    write_json(args.metrics, {"llm": client.stats.as_metrics(), ...})

`generate` returns one result per request; per-item failures land in `result.error` and
`result.failure_reason`. Past `max_failed_fraction` (the stage's params key) it raises
`StageFailed` naming the counts by reason, before the stage writes anything; every answer
received is already cached, so a rerun pays only for the rest. `broken_endpoint_window`
unusable answers or failed requests in a row stop the run early (also `StageFailed`).
`stream(requests)` yields the results in order a chunk at a time (`chunk_size`), for 200k items
with bounded memory; `stream_rows(rows, to_request)` yields each row with its result, reading the
rows only as their requests are asked for (the data stages stream input file to output file). On close, a client with a `stage` writes `runtime/<stage>.llm.json`
(`stats.as_runtime()`: requests sent incl. failed ones, retries, cache hits, seconds, dollars
spent, structured route, per-endpoint counts); `stats.as_metrics()` holds only results that an
unchanged rerun reproduces (items, failures by reason, invalid and empty answers, tokens and
list-price cost of the answers used), for DVC metrics.

Backends (`LLMConfig.backend`):
- `local`: in-process transformers on a checkpoint directory (`LLMConfig.model`), batched
  (`batch_size`, left padding, the tokenizer's chat template), on cuda when available. Sampling
  is seeded per request from its cache key, so an answer does not depend on its batch-mates.
  Temperature 0 is greedy. Schema requests are decoded under outlines' JSON-schema constraint.
- `openai`: `openai.AsyncOpenAI` against any OpenAI-compatible `base_url` (OpenAI, Azure, vLLM,
  `transformers serve`), or a list of them (a fleet: each request to the endpoint with the
  fewest in flight; one that stops answering is taken out, its items go to the others), with
  `max_in_flight` workers per endpoint pulling requests as they go, and requests/tokens per
  minute limits. The key comes only from the environment variable named by `api_key_env`.
  `janus.serving.transformers_serve` serves a local checkpoint that way (tests, benchmark).

Cache: SQLite (WAL) in `$JANUS_CACHE_DIR`, else `LLMConfig.cache_dir` (absolute or ~, outside DVC
outputs so `dvc exp run --temp` copies share it). Each answer is committed the moment it arrives;
an interrupted stage resumes paying only for what is missing, and an unchanged rerun sends zero
requests. The key is a sha256 over the backend, the model's identity (local: a hash of the
checkpoint's files; openai: provider, model name, model_revision, never the URL), the
structured-output mode, the messages, schema, temperature, top_p, max_tokens, sample_index and the
attempt number; never `tag`, never the API key. Every answer is stored, empty ones included, so a
rerun replays the same attempts to the same row; an item whose round of attempts all got rejected
answers starts a fresh round on the next run (`rounds`). Processes sharing the cache claim a key
before asking for it, so each answer is paid once and the first one stored is kept; the budget
caps hold across them through reservations in the spend ledger (see `janus.llm.cache`,
`janus.llm.ledger`, `janus.llm.budget`).

Structured outputs: a request with `schema` gets `result.parsed`, validated with jsonschema. On
the openai backend `structured_output: auto` sends `response_format` json_schema (strict when the
schema allows it); only evidence about the endpoint moves it down to json_object plus the schema
in the prompt (`prompts/json_schema_instructions.user.j2`), then to the prompt alone: a 400/422/501
naming response_format, or `prose_answers_before_fallback` prose answers in a row. A refusal, an
empty answer or one invalid answer is no such evidence. Whatever the route, an invalid, empty or
truncated answer is counted and re-asked as a new sample (the next attempt number) up to
`max_invalid_retries` times; then the item fails.

Faults: 429 (honouring retry-after), 5xx, timeouts and dropped connections are retried with
backoff by the openai client, malformed 2xx bodies by us; both draw on one budget per item
(`max_retries` in all, across its attempts), each retry counted. Errors no retry can fix (401,
403, 404 model not found, 400 for a bad parameter) raise `EndpointConfigError` at once, naming the
endpoint, the model and the params key to fix. On the local backend a failing batch is retried in
halves, so only an item that fails alone fails. A failed item is logged and counted by reason;
the next run asks it again.
"""

from janus.llm.client import LLMClient
from janus.llm.failures import StageFailed, check_failed_fraction
from janus.llm.types import ChatRequest, ChatResult, UsageStats

__all__ = [
    "ChatRequest",
    "ChatResult",
    "LLMClient",
    "StageFailed",
    "UsageStats",
    "check_failed_fraction",
]
