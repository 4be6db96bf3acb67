"""A loopback fake of OpenAI's Files and Batches endpoints, for the batch mode's tests.

Wire format as the API documents it and the `openai` package sends and parses it:

- `POST /v1/files`: multipart/form-data with `purpose` and `file` (JSON Lines, each line
  `{"custom_id", "method": "POST", "url": "/v1/chat/completions", "body"}`); answers a `file`
  object `{id, object: "file", bytes, created_at, filename, purpose, status}`. Malformed lines,
  duplicate custom_ids or a wrong purpose are answered 400 like the API.
- `POST /v1/batches` `{input_file_id, endpoint, completion_window, metadata}`, `GET
  /v1/batches/{id}`, `GET /v1/batches?limit=&after=`: `batch` objects with `status`,
  `request_counts {total, completed, failed}`, `output_file_id`, `error_file_id`, timestamps.
  Each retrieve moves a batch one step: validating -> in_progress -> finalizing -> completed
  (`hold = True` keeps batches in_progress, for killing a client while it polls).
- `GET /v1/files/{id}/content`: the output file (lines `{"id", "custom_id", "response":
  {"status_code": 200, "request_id", "body": <chat.completion>}, "error": null}`) or the error
  file (`"response": {"status_code": 500, ...}` or `"response": null, "error": {"code",
  "message"}`).

Scripted per request by a directive at the start of its last user message, as in
`fake_openai`: `[[fail]]` the request gets a 500 in the error file (once per prompt, so a
resubmission succeeds), `[[fail_always]]` a 400 every time, `[[slow]]` it has not run when an
expiring batch expires (`expire_next` batches expire; their unfinished requests get
`batch_expired` lines), `[[invalid]]` valid JSON that violates the caller's schema, once.
Usage reports `prompt_tokens_details.cached_tokens` (`cached_tokens` per request).
`reject_formats` (response_format types the endpoint does not support, e.g. {"json_schema"}):
such a request gets a 400 line in the error file whose error names `response_format`, as the
API answers it online; `format_requests` counts the response_format types of requests run.

`answer_all=True` (the paper dry run): every request, in a batch or online, gets a valid answer
to what it asks (`servers.valid_answers`: schema-valid JSON, the judge's text format, or text),
and the server also speaks Chat Completions (`POST /v1/chat/completions`). Any path prefix before
`/v1` is accepted and recorded (`/replica-a/v1`: one server stands in for a fleet of replicas).
Every answered request is logged (`requests`: api, prefix, model, janus stage, request kind;
also appended as JSON Lines to `log_path` when given). `served_models`: what `GET /v1/models`
lists (the preflight's check that each model is served).

Run alone (`make paper-dryrun`): `PYTHONPATH=tests python -m servers.fake_batches --port N`.
"""

from __future__ import annotations

import contextlib
import email.parser
import email.policy
import json
import re
import threading
import time
import uuid
from collections import Counter
from typing import Any

from servers.loopback import JSONHandler, LoopbackServer, chat_completion
from servers.valid_answers import answer as valid_answer
from servers.valid_answers import request_kind

_DIRECTIVE = re.compile(r"^\[\[([a-z_]+)\]\]")
STEPS = ("validating", "in_progress", "finalizing", "completed")


class FakeBatchesServer(LoopbackServer):
    def __init__(
        self,
        valid_json: dict[str, Any] | None = None,
        cached_tokens: int = 2,
        answer_all: bool = False,
        port: int = 0,
        log_path: str | None = None,
        served_models: list[str] | None = None,
    ):
        self.valid_json = valid_json or {"answer": "ok"}
        self.cached_tokens = cached_tokens
        self.answer_all = answer_all
        self.log_path = log_path
        # `GET /v1/models` lists these (None: the endpoint has no model list, 404)
        self.served_models = served_models
        self.requests: list[dict[str, Any]] = []  # answer_all: one record per answered request
        self.lock = threading.Lock()
        self.files: dict[str, dict[str, Any]] = {}  # id -> {meta, content}
        self.batches: dict[str, dict[str, Any]] = {}
        self.hold = False  # keep batches in_progress
        self.expire_next = 0  # this many new batches end expired (only [[slow]] requests unrun)
        self.submitted: Counter[str] = Counter()  # custom_id -> times it was in a created batch
        self.uploads = 0
        self.reject_formats: set[str] = set()
        self.format_requests: Counter[str] = Counter()
        self.retrieves = 0
        self._once: Counter[str] = Counter()  # per prompt: one-shot directives consumed
        super().__init__(self._handler_class(), port)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    # -- state ---------------------------------------------------------------------------------

    def _new_file(self, filename: str, purpose: str, content: bytes) -> dict[str, Any]:
        file_id = f"file-{uuid.uuid4().hex[:24]}"
        meta = {
            "id": file_id,
            "object": "file",
            "bytes": len(content),
            "created_at": int(time.time()),
            "filename": filename,
            "purpose": purpose,
            "status": "processed",
        }
        self.files[file_id] = {"meta": meta, "content": content}
        return meta

    def _new_batch(self, request: dict[str, Any], prefix: str = "") -> dict[str, Any]:
        lines = self.files[request["input_file_id"]]["content"].decode().splitlines()
        requests = [json.loads(line) for line in lines if line.strip()]
        for item in requests:
            self.submitted[item["custom_id"]] += 1
        batch_id = f"batch_{uuid.uuid4().hex[:24]}"
        expire = self.expire_next > 0
        self.expire_next -= expire
        batch = {
            "id": batch_id,
            "object": "batch",
            "endpoint": request["endpoint"],
            "errors": None,
            "input_file_id": request["input_file_id"],
            "completion_window": request["completion_window"],
            "status": "validating",
            "output_file_id": None,
            "error_file_id": None,
            "created_at": int(time.time()),
            "in_progress_at": None,
            "expires_at": int(time.time()) + 86400,
            "finalizing_at": None,
            "completed_at": None,
            "failed_at": None,
            "expired_at": None,
            "cancelling_at": None,
            "cancelled_at": None,
            "request_counts": {"total": len(requests), "completed": 0, "failed": 0},
            "metadata": request.get("metadata"),
        }
        self.batches[batch_id] = {
            "object": batch,
            "requests": requests,
            "expire": expire,
            "prefix": prefix,
        }
        return batch

    def _advance(self, batch_id: str) -> dict[str, Any]:
        entry = self.batches[batch_id]
        batch = entry["object"]
        status = batch["status"]
        if status in ("completed", "expired", "failed", "cancelled"):
            return batch
        if status == "in_progress" and self.hold:
            return batch
        if status == "in_progress" and entry["expire"]:
            self._finish(entry, expired=True)
            return batch
        following = STEPS[STEPS.index(status) + 1]
        batch["status"] = following
        batch[f"{following}_at"] = int(time.time())
        if following == "finalizing":
            self._finish(entry, expired=False)
            batch["status"] = "finalizing"
        return batch

    def _record(self, api: str, prefix: str, body: dict[str, Any], stage: str | None) -> None:
        record = {
            "api": api,
            "prefix": prefix,
            "model": body.get("model"),
            "stage": stage,
            "kind": request_kind(body),
        }
        self.requests.append(record)
        if self.log_path:
            with open(self.log_path, "a") as log:
                log.write(json.dumps(record) + "\n")

    def _answer(self, item: dict[str, Any], action: str) -> dict[str, Any]:
        body = item["body"]
        user = next(m["content"] for m in reversed(body["messages"]) if m["role"] == "user")
        wants_json = bool(body.get("response_format")) or "JSON schema" in json.dumps(
            body["messages"]
        )
        if self.answer_all:
            content = valid_answer(body)
        elif wants_json:
            content = json.dumps({"unexpected": True} if action == "invalid" else self.valid_json)
        else:
            content = f"echo: {user.splitlines()[0]}"
        prompt_tokens = sum(len(str(m["content"]).split()) for m in body["messages"])
        completion = chat_completion(
            f"chatcmpl-{uuid.uuid4().hex[:12]}",
            body["model"],
            content,
            prompt_tokens,
            len(content.split()),
        )
        completion["usage"]["prompt_tokens_details"] = {
            "cached_tokens": min(self.cached_tokens, prompt_tokens)
        }
        return completion

    def _finish(self, entry: dict[str, Any], expired: bool) -> None:
        """Run the batch's requests: write its output and error files."""
        batch = entry["object"]
        output, errors = [], []
        for item in entry["requests"]:
            custom_id = item["custom_id"]
            user = next(
                m["content"] for m in reversed(item["body"]["messages"]) if m["role"] == "user"
            )
            match = _DIRECTIVE.match(user)
            action = match.group(1) if match else "answer"
            line: dict[str, Any] = {
                "id": f"batch_req_{uuid.uuid4().hex[:16]}",
                "custom_id": custom_id,
            }
            if action in ("fail", "invalid") and self._once[user]:
                action = "answer"  # one-shot directives: the resubmission or re-ask succeeds
            response_format = (item["body"].get("response_format") or {}).get("type")
            if response_format:
                self.format_requests[response_format] += 1
            if response_format in self.reject_formats and not (expired and action == "slow"):
                errors.append(
                    {
                        **line,
                        "response": {
                            "status_code": 400,
                            "request_id": uuid.uuid4().hex,
                            "body": {
                                "error": {
                                    "message": "Invalid parameter: 'response_format' of type "
                                    f"'{response_format}' is not supported with this model.",
                                    "type": "invalid_request_error",
                                    "param": "response_format",
                                    "code": None,
                                }
                            },
                        },
                        "error": None,
                    }
                )
                continue
            if expired and action == "slow":
                errors.append(
                    {
                        **line,
                        "response": None,
                        "error": {
                            "code": "batch_expired",
                            "message": "This request could not be executed before the "
                            "completion window expired.",
                        },
                    }
                )
                continue
            if action == "fail":
                self._once[user] += 1
            if action in ("fail", "fail_always"):
                status = 500 if action == "fail" else 400
                kind = "server_error" if status == 500 else "invalid_request_error"
                errors.append(
                    {
                        **line,
                        "response": {
                            "status_code": status,
                            "request_id": uuid.uuid4().hex,
                            "body": {
                                "error": {
                                    "message": "scripted failure",
                                    "type": kind,
                                    "param": None,
                                    "code": None,
                                }
                            },
                        },
                        "error": None,
                    }
                )
                continue
            if action == "invalid":
                self._once[user] += 1
            if self.answer_all:
                metadata = batch.get("metadata") or {}
                self._record("batch", entry["prefix"], item["body"], metadata.get("janus_stage"))
            output.append(
                {
                    **line,
                    "response": {
                        "status_code": 200,
                        "request_id": uuid.uuid4().hex,
                        "body": self._answer(item, action),
                    },
                    "error": None,
                }
            )
        counts = batch["request_counts"]
        counts["completed"] = len(output)
        counts["failed"] = len(errors)
        if output:
            batch["output_file_id"] = self._jsonl_file(batch["id"], "output", output)["id"]
        if errors:
            batch["error_file_id"] = self._jsonl_file(batch["id"], "error", errors)["id"]
        if expired:
            batch["status"] = "expired"
            batch["expired_at"] = int(time.time())

    def _jsonl_file(self, batch_id: str, kind: str, lines: list[dict[str, Any]]):
        content = "".join(json.dumps(line) + "\n" for line in lines).encode()
        return self._new_file(f"{batch_id}_{kind}.jsonl", f"batch_{kind}", content)

    # -- HTTP ------------------------------------------------------------------------------------

    def _handler_class(self):
        server = self

        class Handler(JSONHandler):
            def _error(self, status: int, message: str, param: str | None = None) -> None:
                self.send_json(
                    status,
                    {
                        "error": {
                            "message": message,
                            "type": "invalid_request_error",
                            "param": param,
                            "code": None,
                        }
                    },
                )

            def _split_prefix(self) -> tuple[str, str]:
                """(prefix, path from /v1 on): `/replica-a/v1/x` -> ("/replica-a", "/v1/x").
                Only answer_all accepts a prefix; otherwise the path is taken as it is."""
                position = self.path.find("/v1/")
                if server.answer_all and position > 0:
                    return self.path[:position], self.path[position:]
                return "", self.path

            def do_POST(self):  # noqa: N802 - http.server's naming
                prefix, path = self._split_prefix()
                if path == "/v1/files":
                    self._upload()
                elif path == "/v1/chat/completions" and server.answer_all:
                    self._chat_completion(prefix)
                elif path == "/v1/batches":
                    request = self.read_json()
                    with server.lock:
                        if request.get("input_file_id") not in server.files:
                            self._error(404, "No such File object", "input_file_id")
                            return
                        if (
                            request.get("endpoint") != "/v1/chat/completions"
                            or request.get("completion_window") != "24h"
                        ):
                            self._error(400, "invalid endpoint or completion_window")
                            return
                        batch = server._new_batch(request, prefix)
                    self.send_json(200, batch)
                else:
                    self._error(404, f"unknown path {self.path}")

            def _chat_completion(self, prefix: str) -> None:
                try:
                    body = self.read_json()
                except json.JSONDecodeError:
                    self._error(400, "body is not JSON")
                    return
                if not isinstance(body.get("messages"), list) or not body.get("model"):
                    self._error(400, "'model' and 'messages' are required", "messages")
                    return
                with server.lock:
                    server._record("chat", prefix, body, None)
                    completion = server._answer({"body": body}, "answer")
                self.send_json(200, completion)

            def _upload(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length)
                head = f"Content-Type: {self.headers['content-type']}\r\n\r\n".encode()
                message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + raw)
                fields: dict[str, tuple[str | None, bytes]] = {}
                for part in message.iter_parts():
                    name = part.get_param("name", header="content-disposition")
                    fields[name] = (part.get_filename(), part.get_payload(decode=True))
                if fields.get("purpose", (None, b""))[1] != b"batch" or "file" not in fields:
                    self._error(400, "purpose must be 'batch' and a file must be given", "purpose")
                    return
                filename, content = fields["file"]
                seen: set[str] = set()
                for number, line in enumerate(content.decode().splitlines(), 1):
                    try:
                        item = json.loads(line)
                        ok = (
                            item["method"] == "POST"
                            and item["url"] == "/v1/chat/completions"
                            and isinstance(item["body"], dict)
                            and item["custom_id"] not in seen
                        )
                        seen.add(item["custom_id"])
                    except (json.JSONDecodeError, KeyError, TypeError):
                        ok = False
                    if not ok:
                        self._error(400, f"invalid batch request on line {number}", "file")
                        return
                with server.lock:
                    server.uploads += 1
                    meta = server._new_file(filename or "upload.jsonl", "batch", content)
                self.send_json(200, meta)

            def do_GET(self):  # noqa: N802
                path, _, query = self._split_prefix()[1].partition("?")
                parts = path.strip("/").split("/")
                with server.lock:
                    if parts == ["v1", "models"] and server.served_models is not None:
                        models = [
                            {"id": name, "object": "model", "created": 0, "owned_by": "fake"}
                            for name in server.served_models
                        ]
                        self.send_json(200, {"object": "list", "data": models})
                    elif parts[:2] == ["v1", "batches"] and len(parts) == 3:
                        if parts[2] not in server.batches:
                            self._error(404, "No such Batch object")
                            return
                        server.retrieves += 1
                        batch = dict(server._advance(parts[2]))
                        self.send_json(200, batch)
                    elif parts == ["v1", "batches"]:
                        data = [entry["object"] for entry in server.batches.values()][::-1]
                        self.send_json(
                            200,
                            {
                                "object": "list",
                                "data": data,
                                "first_id": data[0]["id"] if data else None,
                                "last_id": data[-1]["id"] if data else None,
                                "has_more": False,
                            },
                        )
                    elif parts[:2] == ["v1", "files"] and len(parts) == 4 and parts[3] == "content":
                        if parts[2] not in server.files:
                            self._error(404, "No such File object")
                            return
                        self.content_type = "application/octet-stream"
                        self.send_bytes(200, server.files[parts[2]]["content"])
                    else:
                        self._error(404, f"unknown path {self.path}")

        return Handler


def main() -> None:
    """Serve the fake in answer-all mode until interrupted (`make paper-dryrun`)."""
    import argparse
    import signal

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--log", help="append one JSON line per answered request here")
    parser.add_argument("--models", nargs="*", help="the model list (GET /v1/models)")
    args = parser.parse_args()
    server = FakeBatchesServer(
        answer_all=True, port=args.port, log_path=args.log, served_models=args.models
    ).start()
    print(f"fake OpenAI API (chat, files, batches) on {server.base_url}", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with contextlib.suppress(KeyboardInterrupt):
        stop.wait()
    server.stop()


if __name__ == "__main__":
    main()
