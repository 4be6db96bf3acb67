"""The Chat Completions wire format, for the online and the batch backend alike: a job's body on a
structured-output route, the body of an answer parsed into a `Generation`, and what an error's
text says (a rejected `response_format`, a one-line description to count by reason).
"""

from __future__ import annotations

import json
from typing import Any

from janus.llm.structured import schema_json
from janus.llm.types import Generation, Job
from janus.prompts import render

# auto mode walks down this list when an endpoint rejects (or ignores) a route
ROUTES = ("json_schema", "json_object", "prompt")
REJECTION_STATUSES = {400, 422, 501}


class MalformedResponse(ValueError):
    """A 2xx body that is not a usable chat completion."""


class EndpointConfigError(RuntimeError):
    """A fault that no item can get past (bad key, no permission, unknown model, a parameter the
    endpoint rejects, every endpoint down): raised at once, not counted per item."""



def _strict_compatible(schema: Any) -> bool:
    """Whether OpenAI's strict mode accepts the schema: closed objects, every property required."""
    if isinstance(schema, dict):
        if schema.get("type") == "object" or "properties" in schema:
            properties = schema.get("properties", {})
            if schema.get("additionalProperties") is not False:
                return False
            if set(schema.get("required", [])) != set(properties):
                return False
        return all(_strict_compatible(value) for value in schema.values())
    if isinstance(schema, list):
        return all(_strict_compatible(value) for value in schema)
    return True


def parse_chat_completion(body_text: str) -> Generation:
    """A Generation from a Chat Completions response body, or MalformedResponse."""
    try:
        body = json.loads(body_text)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise MalformedResponse(f"body is not JSON: {body_text[:80]!r}") from error
    if not isinstance(body, dict):
        raise MalformedResponse("body is not a JSON object")
    choices = body.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise MalformedResponse("body has no choices")
    message = choices[0].get("message")
    if not isinstance(message, dict):
        raise MalformedResponse("choices[0] has no message")
    content = message.get("content")
    refusal = False
    if content is None and isinstance(message.get("refusal"), str):
        content = message["refusal"]  # a refusal is an answer (invalid for a schema, re-asked)
        refusal = True
    if not isinstance(content, str):
        raise MalformedResponse("choices[0].message.content is not a string")
    usage = body.get("usage") if isinstance(body.get("usage"), dict) else {}
    prompt_tokens = usage.get("prompt_tokens")
    completion_tokens = usage.get("completion_tokens")
    return Generation(
        text=content,
        prompt_tokens=prompt_tokens if isinstance(prompt_tokens, int) else 0,
        completion_tokens=completion_tokens if isinstance(completion_tokens, int) else 0,
        finish_reason="length" if choices[0].get("finish_reason") == "length" else "stop",
        refusal=refusal,
    )


def is_prose(generation: Generation) -> bool:
    """Whether an answer under a JSON response_format looks like the server ignored the field."""
    text = generation.text.strip()
    if not text or generation.refusal:
        return False  # empty answers and refusals say nothing about response_format
    if generation.finish_reason == "length":
        return text[0] not in "{["
    try:
        json.loads(text)
    except json.JSONDecodeError:
        return True
    return False


def shape_request(job: Job, route: str | None) -> tuple[list[dict[str, str]], dict[str, Any]]:
    """The messages and extra create() arguments of a job on a route."""
    messages = [dict(message) for message in job.messages]
    schema = job.request.schema
    if schema is None or route is None:
        return messages, {}
    if route == "json_schema":
        response_format = {
            "type": "json_schema",
            "json_schema": {
                "name": "output",
                "schema": schema,
                "strict": _strict_compatible(schema),
            },
        }
        return messages, {"response_format": response_format}
    instructions = render("json_schema_instructions", "user", schema=schema_json(schema))
    last_user = max(i for i, m in enumerate(messages) if m.get("role") == "user")
    messages[last_user]["content"] = f"{messages[last_user]['content']}\n\n{instructions}"
    if route == "json_object":
        return messages, {"response_format": {"type": "json_object"}}
    return messages, {}


def mentions_response_format(text: str) -> bool:
    """Whether an error's text blames the structured-output field (evidence to move down)."""
    text = text.lower()
    return any(word in text for word in ("response_format", "json_schema", "json_object"))


def error_mentions_response_format(error) -> bool:
    return mentions_response_format(
        json.dumps(getattr(error, "body", None), default=str) + " " + str(error)
    )


def describe_error(error: BaseException) -> str:
    status = getattr(error, "status_code", None)
    suffix = f" (HTTP {status})" if status else ""
    message = str(error).replace("\n", " ")[:200]
    return f"{type(error).__name__}{suffix}: {message}"
