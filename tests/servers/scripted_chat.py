"""A scripted OpenAI Chat Completions server on 127.0.0.1: the stand-in for a paid teacher or judge
LLM (GPT-4) in the evaluation tests.

It speaks the wire format of `POST /v1/chat/completions` (a chat.completion body with
`choices[0].message.content`, `finish_reason` and `usage`); what it answers is decided by the
test's `answer(request, times_seen)` function, given the request body (messages, response_format)
and how often that exact request's last user message has arrived (1 on the first request), so a
test can script "prose first, a valid answer when re-asked".
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

from servers.loopback import JSONHandler, LoopbackServer, chat_completion


def user_message(request: dict[str, Any]) -> str:
    """The last user message of a chat request."""
    return next(m["content"] for m in reversed(request["messages"]) if m["role"] == "user")


def system_message(request: dict[str, Any]) -> str | None:
    return next((m["content"] for m in request["messages"] if m["role"] == "system"), None)


def request_schema(request: dict[str, Any]) -> dict[str, Any] | None:
    """The JSON schema a request asks for through response_format, if any."""
    response_format = request.get("response_format") or {}
    return (response_format.get("json_schema") or {}).get("schema")


class ScriptedChatServer(LoopbackServer):
    def __init__(self, answer: Callable[[dict[str, Any], int], str]):
        self.answer = answer
        self.seen: Counter[str] = Counter()  # requests per user message
        self.response_formats: Counter[str] = Counter()  # response_format types requested
        self.lock = threading.Lock()
        server = self

        class Handler(JSONHandler):
            def do_POST(self):  # noqa: N802 - http.server's naming
                body = self.read_json()
                user = user_message(body)
                with server.lock:
                    server.seen[user] += 1
                    times = server.seen[user]
                    kind = (body.get("response_format") or {}).get("type")
                    if kind:
                        server.response_formats[kind] += 1
                content = server.answer(body, times)
                self.send_json(
                    200,
                    chat_completion(
                        f"chatcmpl-{sum(server.seen.values())}",
                        body["model"],
                        content,
                        len(user.split()),
                        len(content.split()),
                    ),
                )

        super().__init__(Handler)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def llm_config(self, **extra) -> dict:
        """The `llm.<role>` params block for this server (the key is read from the environment)."""
        return {
            "backend": "openai",
            "model": "scripted-gpt",
            "base_url": self.base_url,
            "provider": None,
            "model_revision": None,
            "prose_answers_before_fallback": 5,
            "api_key_env": "JANUS_SCRIPTED_CHAT_KEY",
            "max_retries": 0,
            "timeout_s": 120,
            "structured_output": "auto",
            "max_invalid_retries": 2,
            "batch_size": 8,  # the local backend's: unused here, but every block is complete
            "device": "auto",
            "dtype": "auto",
            "requests_per_minute": 600_000,  # loopback: no reason to pace requests
            "cache_dir": "~/.cache/janus/llm",  # tests set JANUS_CACHE_DIR, which wins
            **extra,
        }
