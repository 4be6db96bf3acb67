"""A valid answer to any request janus sends, for the fakes' `answer_all` mode (the paper dry run).

What each request wants is read from the request itself, as a real model would:

- a JSON schema (`response_format: json_schema`, or the schema in the prompt under the `prompt`
  and `json_object` routes): an object built from the schema, valid against it (required keys,
  enums, string lengths, number bounds, array sizes, `$ref`s);
- the judge's text format (F.2): `Feedback: ... [RESULT] N` (absolute, 1-5) or `... [RESULT] A`
  (pairwise: A, B or TIE), by the verdict the prompt asks for;
- anything else: a short plain-text answer.

Answers vary with the prompt (a hash of it), deterministically, so scores are not all equal and a
rerun asks for and gets the same bytes.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

# the judge prompts' answer formats (src/janus/prompts/judge_*.user.j2)
_PAIRWISE = re.compile(r"\[RESULT\] <A, B or TIE>")
# the schema appended to the prompt (src/janus/prompts/json_schema_instructions.user.j2)
_PROMPT_SCHEMA = "The object must be valid against this JSON schema:\n"
SENTENCE = "A plain, careful answer from the dry run's fake endpoint."


def _digest(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big")


def request_kind(body: dict[str, Any]) -> str:
    """What the request asks for: json_schema, json_object, prompt_schema, judge_absolute,
    judge_pairwise or text."""
    response_format = (body.get("response_format") or {}).get("type")
    text = _all_text(body)
    if response_format == "json_schema":
        return "json_schema"
    if _PROMPT_SCHEMA in text:
        return "json_object" if response_format == "json_object" else "prompt_schema"
    if "[RESULT]" in text:
        return "judge_pairwise" if _PAIRWISE.search(text) else "judge_absolute"
    return "text"


def _all_text(body: dict[str, Any]) -> str:
    return "\n".join(str(m.get("content") or "") for m in body.get("messages") or [])


def _schema_of(body: dict[str, Any]) -> dict[str, Any] | None:
    response_format = body.get("response_format") or {}
    if response_format.get("type") == "json_schema":
        return response_format["json_schema"]["schema"]
    text = _all_text(body)
    if _PROMPT_SCHEMA in text:
        schema_text = text.split(_PROMPT_SCHEMA, 1)[1].strip()
        return json.loads(schema_text)
    return None


def answer(body: dict[str, Any]) -> str:
    """The content of a valid answer to this Chat Completions request body."""
    text = _all_text(body)
    seed = _digest(text)
    kind = request_kind(body)
    if kind in ("json_schema", "json_object", "prompt_schema"):
        schema = _schema_of(body)
        assert schema is not None
        return json.dumps(instance(schema, schema, seed))
    if kind == "judge_pairwise":
        return f"Feedback: Both follow the rubric; one more closely. [RESULT] {'AB'[seed % 2]}"
    if kind == "judge_absolute":
        return f"Feedback: The response meets the rubric in part. [RESULT] {1 + seed % 5}"
    return f"{SENTENCE} Answer {seed:08x}."  # distinct per prompt: E.1's pairs need that


def _resolve(node: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        path = node["$ref"].lstrip("#/").split("/")
        target: Any = root
        for part in path:
            target = target[part]
        node = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
    return node


def _string(node: dict[str, Any], seed: int) -> str:
    low, high = node.get("minLength", 1), node.get("maxLength", 200)
    text = f"Plain words {seed % 10000}." if high < len(SENTENCE) + 20 else f"{SENTENCE[:-1]} {seed:08x}."
    text = text if len(text) <= high else "x" * max(low, 1)
    if len(text) < low:
        text = (text + " " + SENTENCE * (low // len(SENTENCE) + 1))[:low]
    return text[:high]


def instance(node: dict[str, Any], root: dict[str, Any], seed: int) -> Any:
    """A value valid against the schema `node` (its `$ref`s resolved in `root`)."""
    node = _resolve(node, root)
    if "const" in node:
        return node["const"]
    if "enum" in node:
        return node["enum"][seed % len(node["enum"])]
    for key in ("anyOf", "oneOf"):
        if key in node:
            return instance(node[key][0], root, seed)
    if "allOf" in node:
        merged: dict[str, Any] = {}
        for part in node["allOf"]:
            merged.update(_resolve(part, root))
        return instance(merged, root, seed)
    kind = node.get("type", "object")
    if isinstance(kind, list):
        kind = next(k for k in kind if k != "null") if kind != ["null"] else "null"
    if kind == "object":
        properties = node.get("properties", {})
        required = node.get("required", list(properties))
        return {
            name: instance(properties.get(name, {"type": "string"}), root, seed + i)
            for i, name in enumerate(required)
        }
    if kind == "array":
        count = max(node.get("minItems", 1), 1)
        count = min(count, node.get("maxItems", count))
        return [instance(node.get("items", {"type": "string"}), root, seed + i) for i in range(count)]
    if kind in ("integer", "number"):
        low = node.get("minimum", node.get("exclusiveMinimum", 0) + (kind == "integer"))
        high = node.get("maximum", low + 4)
        value = low + seed % (int(high - low) + 1) if high >= low else low
        return int(value) if kind == "integer" else float(value)
    if kind == "boolean":
        return bool(seed % 2)
    if kind == "null":
        return None
    return _string(node, seed)
