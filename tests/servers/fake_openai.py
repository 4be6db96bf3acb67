"""A fault-injecting OpenAI Chat Completions server on 127.0.0.1, for the openai backend's tests.

It speaks the wire format of `POST /v1/chat/completions`: a JSON body with `choices[0].message
.content`, `finish_reason` and `usage`; errors as `{"error": {"message", "type", "param",
"code"}}` with the matching status. Faults are scripted per prompt, so they do not depend on the
order in which concurrent requests arrive: a user message starting with `[[429x2,500x1]]` gets
two 429s, then one 500, then a normal answer. Directives:

- `429xN`: rate limited (with `retry-after` / `retry-after-ms` headers)
- `500xN`: internal server error
- `stallxN`: answer only after `stall_s` seconds (past the client's timeout)
- `malformedxN`: status 200 with a body that is not a chat completion
- `dropxN`: close the connection without answering
- `invalidxN`: for JSON requests, valid JSON that violates the schema
- `401xN`: invalid API key
- `404xN`: the model does not exist (`model_not_found`)
- `400xN`: a parameter the endpoint rejects (`invalid_request_error`, not response_format)
- `emptyxN`: status 200 with an empty (whitespace-only) answer
- `refusexN`: status 200 with `content: null` and a `refusal`
- `prosexN`: prose instead of JSON, even under response_format

Server-wide switches: `reject_formats` (response_format types answered with a 400; other types
are accepted), `honor_response_format` (False: accept the field but ignore it), `die_after` (after that many answers every request has its connection dropped, as
if the server died), `delay_s` (every answer takes that long; `peak_in_flight` records the most
concurrent requests), `fault_all` (a directive name applied to every request, e.g. "404",
"prose", "empty": a wrong model name, a server that never answers JSON), `fault_when` (the same,
chosen per prompt by a function of its text), and `valid_json` (the answer to any request that asks for JSON, through
response_format or a schema in the prompt; other requests get `echo: <prompt>`).
`served_models` (a list of model ids): `GET /v1/models` lists them (`{"object": "list", "data":
[{"id", "object": "model", "created", "owned_by"}]}`, counted in `model_list_requests`) and a
chat request for another model gets a 404 `model_not_found`; None (the default): no model list
(404), and any model name is answered.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from servers.loopback import JSONHandler, LoopbackServer, chat_completion

_DIRECTIVES = re.compile(r"^\[\[([^\]]*)\]\]")


class FakeOpenAIServer(LoopbackServer):
    def __init__(
        self,
        port: int = 0,
        valid_json: dict[str, Any] | None = None,
        invalid_json: dict[str, Any] | None = None,
        stall_s: float = 2.0,
        retry_after_s: float = 0.05,
    ):
        self.valid_json = valid_json or {"answer": "ok"}
        self.invalid_json = invalid_json or {"unexpected": True}
        self.stall_s = stall_s
        self.retry_after_s = retry_after_s
        self.reject_formats: set[str] = set()
        self.honor_response_format = True  # False: like `transformers serve`, ignore the field
        self.die_after: int | None = None
        self.fault_all: str | None = None
        # a function of the whole user message: a directive name for prompts that fail (for
        # prompts rendered from templates, where no [[...]] prefix can be written)
        self.fault_when: Callable[[str], str | None] | None = None
        self.delay_s = 0.0
        self.numbered_answers = False
        self.bill_schema = False
        self.served_models: list[str] | None = None
        self.model_list_requests = 0
        self.in_flight = 0
        self.peak_in_flight = 0
        self.authorizations: set[str] = set()  # Authorization headers seen
        self.lock = threading.Lock()
        self.hits: Counter[str] = Counter()  # HTTP requests per prompt (first line)
        self._script_position: Counter[str] = Counter()  # scripted faults consumed per prompt
        self.client_retries = 0  # requests the client marked as retries (x-stainless-retry-count)
        self.http_requests = 0  # every request that reached the handler
        self.answers = 0  # 200 responses carrying a chat completion
        self.serial = 0  # numbered answers given
        self.format_requests: Counter[str] = Counter()  # response_format types seen
        self.bodies: list[dict[str, Any]] = []
        self.arrivals: list[float] = []  # time.monotonic() of each request
        super().__init__(self._handler_class(), port)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def reset_counts(self) -> None:
        with self.lock:
            self.hits.clear()
            self._script_position.clear()
            self.client_retries = 0
            self.peak_in_flight = 0
            self.http_requests = 0
            self.answers = 0
            self.format_requests.clear()
            self.bodies.clear()

    # -- request handling --------------------------------------------------------------------

    def _decide(self, body: dict[str, Any], retry_count: int) -> tuple[str, str]:
        """(action, prompt key) for one request, advancing that prompt's script."""
        messages = body.get("messages") or [{}]
        user_text = next(
            (m.get("content", "") for m in reversed(messages) if m.get("role") == "user"), ""
        )
        prompt_key = str(user_text).split("\n", 1)[0]
        with self.lock:
            self.http_requests += 1
            self.arrivals.append(time.monotonic())
            self.hits[prompt_key] += 1
            self.client_retries += retry_count > 0
            self.bodies.append(body)
            response_format = (body.get("response_format") or {}).get("type")
            if response_format:
                self.format_requests[response_format] += 1
            if self.die_after is not None and self.answers >= self.die_after:
                return "drop", prompt_key
            if self.served_models is not None and body.get("model") not in self.served_models:
                return "404", prompt_key
            if response_format in self.reject_formats:
                return "reject_format", prompt_key
            scripted = self.fault_when(str(user_text)) if self.fault_when else None
            if scripted:
                return scripted, prompt_key
            if self.fault_all:
                if self.fault_all in ("invalid", "prose", "empty", "refuse"):
                    self.answers += 1
                return self.fault_all, prompt_key
            # rejections and drops above do not consume the prompt's scripted faults
            self._script_position[prompt_key] += 1
            seen = self._script_position[prompt_key]
            action = "answer"
            match = _DIRECTIVES.match(prompt_key)
            budget = 0
            for directive in match.group(1).split(",") if match else []:
                name, _, count = directive.strip().partition("x")
                budget += int(count or 1)
                if seen <= budget:
                    action = name
                    break
            if action in ("answer", "invalid", "prose", "empty", "refuse"):
                self.answers += 1
        return action, prompt_key

    def _handler_class(self):
        server = self

        class Handler(JSONHandler):
            def _error(self, status: int, message: str, kind: str, param=None, headers=None):
                payload = {
                    "error": {"message": message, "type": kind, "param": param, "code": None}
                }
                self.send_json(status, payload, headers)

            def do_GET(self):  # noqa: N802 - http.server's naming
                if self.path.rstrip("/") != "/v1/models" or server.served_models is None:
                    self._error(404, f"unknown path {self.path}", "invalid_request_error")
                    return
                with server.lock:
                    server.model_list_requests += 1
                models = [
                    {"id": name, "object": "model", "created": 1700000000, "owned_by": "fake"}
                    for name in server.served_models
                ]
                self.send_json(200, {"object": "list", "data": models})

            def do_POST(self):  # noqa: N802 - http.server's naming
                if self.path.rstrip("/") != "/v1/chat/completions":
                    self._error(404, f"unknown path {self.path}", "invalid_request_error")
                    return
                try:
                    body = self.read_json()
                except json.JSONDecodeError:
                    self._error(400, "body is not JSON", "invalid_request_error")
                    return
                retry_count = int(self.headers.get("x-stainless-retry-count") or 0)
                with server.lock:
                    server.authorizations.add(self.headers.get("authorization", ""))
                    server.in_flight += 1
                    server.peak_in_flight = max(server.peak_in_flight, server.in_flight)
                self._counted = True
                try:
                    action, prompt_key = server._decide(body, retry_count)
                    self._act(action, body, prompt_key)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout) before we answered
                finally:
                    self._leave()

            def _leave(self) -> None:
                # no longer in flight once the answer starts going out: the client may send
                # its next request the moment it has read this one
                if getattr(self, "_counted", False):
                    self._counted = False
                    with server.lock:
                        server.in_flight -= 1

            def send_bytes(self, status, data, headers=None) -> None:
                self._leave()
                super().send_bytes(status, data, headers)

            def _act(self, action: str, body: dict[str, Any], prompt_key: str) -> None:
                if action == "drop":
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                if action == "429":
                    retry = {
                        "retry-after": str(server.retry_after_s),
                        "retry-after-ms": str(int(server.retry_after_s * 1000)),
                    }
                    self._error(429, "Rate limit reached", "requests", headers=retry)
                    return
                if action == "401":
                    self._error(401, "Incorrect API key provided", "invalid_request_error")
                    return
                if action == "404":
                    self._error(
                        404,
                        f"The model `{body.get('model')}` does not exist or you do not have "
                        "access to it.",
                        "invalid_request_error",
                    )
                    return
                if action == "400":
                    self._error(
                        400,
                        "Invalid value for 'temperature': must be at most 2.",
                        "invalid_request_error",
                        param="temperature",
                    )
                    return
                if action == "500":
                    self._error(500, "The server had an error", "server_error")
                    return
                if action == "reject_format":
                    self._error(
                        400,
                        "Invalid parameter: 'response_format' of type "
                        f"'{body['response_format']['type']}' is not supported with this model.",
                        "invalid_request_error",
                        param="response_format",
                    )
                    return
                if action == "malformed":
                    self.send_bytes(200, b'{"id": "chatcmpl-broken", "choices": [{"mess')
                    return
                if action == "stall":
                    time.sleep(server.stall_s)
                elif server.delay_s:
                    time.sleep(server.delay_s)
                schema_in_prompt = "JSON schema" in json.dumps(body.get("messages"))
                wants_json = schema_in_prompt or (
                    server.honor_response_format and bool(body.get("response_format"))
                )
                if action == "empty":
                    content = "  \n"
                elif action == "prose":
                    content = f"Sure! Here is my answer to {prompt_key}."
                elif wants_json:
                    content = json.dumps(
                        server.invalid_json if action == "invalid" else server.valid_json
                    )
                else:
                    content = f"echo: {prompt_key}"
                if server.numbered_answers and content.startswith("echo:"):
                    with server.lock:
                        server.serial += 1
                        content = content.replace("echo:", f"echo #{server.serial}:", 1)
                prompt_tokens = sum(
                    len(str(m.get("content", "")).split()) for m in body["messages"]
                )
                json_schema = (body.get("response_format") or {}).get("json_schema")
                if server.bill_schema and json_schema:
                    prompt_tokens += -(-len(json.dumps(json_schema["schema"])) // 4)
                completion_tokens = len(content.split())
                completion = chat_completion(
                    f"chatcmpl-{server.http_requests}",
                    body.get("model", "fake"),
                    content,
                    prompt_tokens,
                    completion_tokens,
                )
                if action == "refuse":
                    message = completion["choices"][0]["message"]
                    message["content"] = None
                    message["refusal"] = "I'm sorry, I cannot help with that request."
                self.send_json(200, completion)

        return Handler
