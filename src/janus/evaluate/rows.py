"""The row types that cross evaluation stage boundaries, defined once.

Each is a pydantic model used both to read files (validated row by row, a bad row counted by
reason) and, where an LLM writes it, to build the JSON schema sent to the LLM (`llm_schema`).

- `Rubric`: the published Multifaceted-Bench rubric, ``{criteria, score_descriptions: {"1".."5"}}``
  (the one rubric layout in the repo: our own bench writes it too).
- `PublishedBenchRow`: a row of kaist-ai/Multifaceted-Bench as published (no id; `rubric` in
  older revisions of the dataset, `rubrics` in the current one).
- `BenchRow`: a row of data/bench.jsonl: the published columns, a stable content-derived id, the
  instruction's id and the Table 2 column (`benchmark`) the fine-grained `source` belongs to;
  `read_bench` reads a bench file into them (bad and duplicate rows counted by reason).
- `ResponseRow`: a model's answer to a bench row (outputs/responses/<model>.jsonl).
- `AbsoluteJudgement` / `PairwiseJudgement`: what the judge answers in structured mode.
"""

from __future__ import annotations

import copy
import hashlib
from collections import Counter
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    create_model,
)

from janus.io import read_jsonl
from janus.logging_utils import get_logger

log = get_logger(__name__)

SCORE_KEYS = ("1", "2", "3", "4", "5")
CONDITIONS = ("system", "no_system")


def _not_blank(value: str) -> str:
    # Checked, never rewritten: a published row must read back exactly as it was written.
    if not value.strip():
        raise ValueError("empty text")
    return value


Text = Annotated[str, AfterValidator(_not_blank)]


def _strict_int(value: Any) -> Any:
    # Literal[1..5] alone lets True and 4.0 through (they compare equal to 1 and 4).
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"score is not an integer: {value!r}")
    return value


class Row(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, strict=True)


class ScoreDescriptions(Row):
    """What a response earning each score looks like; keys "1".."5" as in the published bench."""

    one: Text = Field(alias="1")
    two: Text = Field(alias="2")
    three: Text = Field(alias="3")
    four: Text = Field(alias="4")
    five: Text = Field(alias="5")

    def level(self, score: int) -> str:
        return getattr(self, ("one", "two", "three", "four", "five")[score - 1])


class Rubric(Row):
    criteria: Text
    score_descriptions: ScoreDescriptions


class PreferenceFacet(Row):
    """One dimension of a preference set (the published `preference_set` items)."""

    model_config = ConfigDict(extra="allow", strict=True)
    dimension: Text
    subdimension: Text
    preference: Text
    description: Text


class PublishedBenchRow(Row):
    """A row of the published Multifaceted-Bench; unknown extra columns are ignored."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True, strict=True)
    source: Text
    system: Text
    prompt: Text
    reference_answer: Text
    rubrics: list[Rubric] = Field(min_length=1, validation_alias=AliasChoices("rubrics", "rubric"))
    preference_set: list[PreferenceFacet] | None = None


class BenchRow(Row):
    id: Text
    instruction_id: Text
    source: Text  # fine-grained origin (published: e.g. "Alpha-nlg (art)"; ours: the benchmark)
    benchmark: Text  # the Table 2 column: a key of config.BENCH_SOURCE_NAMES, or "unmapped"
    system: Text
    prompt: Text
    reference_answer: Text
    rubrics: list[Rubric] = Field(min_length=1)
    preference_set: list[PreferenceFacet] | None = None

    def dump(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, exclude_none=False)


class ResponseRow(BaseModel):
    """A model's response to one bench row under one condition (extra columns are kept)."""

    model_config = ConfigDict(extra="allow", strict=True)
    model: Text
    condition: Literal["system", "no_system"]
    id: Text
    response: str  # may be empty: counted, never judged


class AbsoluteJudgement(Row):
    feedback: Text
    score: Annotated[Literal[1, 2, 3, 4, 5], BeforeValidator(_strict_int)]


class PairwiseJudgement(Row):
    feedback: Text
    winner: Literal["A", "B", "TIE"]


def rubric_set_model(dimensions: list[str] | tuple[str, ...]) -> type[BaseModel]:
    """{dimension: Rubric} for the bench's one structured rubric call per row."""
    fields: dict[str, Any] = {dimension: (Rubric, ...) for dimension in dimensions}
    return create_model("RubricSet", __config__=ConfigDict(extra="forbid"), **fields)


# ---------------------------------------------------------------------------------------------
# ids
# ---------------------------------------------------------------------------------------------


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()[:16]


def instruction_key(prompt: str) -> str:
    """A published row's instruction id: the same prompt text gives the same id."""
    return "mbi-" + _digest(" ".join(prompt.split()))


def content_id(source: str, system: str, prompt: str) -> str:
    """A stable id from what makes a bench row one item (source, system message, instruction)."""
    return "mb-" + _digest(source, " ".join(system.split()), " ".join(prompt.split()))


# ---------------------------------------------------------------------------------------------
# validation with reasons, and JSON schemas for the LLM
# ---------------------------------------------------------------------------------------------


def error_reason(error: ValidationError) -> str:
    """The metrics key of a row's first validation problem."""
    first = error.errors()[0]
    location = [str(part) for part in first["loc"]]
    kind = first["type"]
    if location and location[-1] in SCORE_KEYS and "score_descriptions" in location:
        return "missing_score_level" if kind == "missing" else "bad_score_level"
    if kind == "missing":
        return "missing_field"
    if kind == "extra_forbidden":
        return "unexpected_field"
    if kind == "value_error":
        return "empty_text"
    if kind in ("too_short",):
        return "empty_list"
    return "wrong_type"


def validate_rows(model: type[BaseModel], rows: list[Any]) -> tuple[list[Any], Counter, list[str]]:
    """(valid models, bad rows by reason, one message per bad row)."""
    valid, reasons, messages = [], Counter(), []
    for number, row in enumerate(rows, start=1):
        try:
            valid.append(model.model_validate(row))
        except ValidationError as error:
            reason = error_reason(error)
            reasons[reason] += 1
            first = error.errors()[0]
            where = ".".join(str(part) for part in first["loc"]) or "(row)"
            messages.append(f"row {number}: {reason}: {where}: {first['msg']}")
    return valid, reasons, messages


def _inline(schema: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in schema:
        return _inline(copy.deepcopy(defs[schema["$ref"].split("/")[-1]]), defs)
    out = {}
    for key, value in schema.items():
        if key in ("title", "description"):
            continue
        if isinstance(value, dict):
            value = (
                _inline(value, defs)
                if key != "properties"
                else {name: _inline(item, defs) for name, item in value.items()}
            )
        elif isinstance(value, list):
            value = [_inline(item, defs) if isinstance(item, dict) else item for item in value]
        out[key] = value
    if out.get("type") == "object":
        out["additionalProperties"] = False
        out["required"] = list(out.get("properties", {}))
    if out.get("type") == "string":
        out.setdefault("minLength", 1)
    return out


def llm_schema(model: type[BaseModel], max_chars: int | None = None) -> dict[str, Any]:
    """The model's JSON schema as the LLM gets it: refs inlined, every object closed and fully
    required (OpenAI strict mode, constrained decoders), strings bounded by `max_chars`."""
    raw = model.model_json_schema(by_alias=True, mode="validation")
    schema = _inline({k: v for k, v in raw.items() if k != "$defs"}, raw.get("$defs", {}))
    if max_chars is not None:
        _bound_strings(schema, max_chars)
    return schema


def _bound_strings(schema: dict[str, Any], max_chars: int) -> None:
    if schema.get("type") == "string" and "enum" not in schema:
        schema["maxLength"] = max_chars
    for value in schema.get("properties", {}).values():
        _bound_strings(value, max_chars)
    if isinstance(schema.get("items"), dict):
        _bound_strings(schema["items"], max_chars)


class JudgementRow(Row):
    """One absolute judgement (outputs/judge/absolute.jsonl): a response graded on one rubric."""

    judge: str  # the llm role that graded it (judge.judges)
    model: str
    condition: Literal["system", "no_system"]
    id: str  # the bench row the response answers
    source: str
    benchmark: str
    kind: Literal[
        "own", "mismatched"
    ]  # its own rubrics, or another system message's (steerability)
    rubric_of: str  # the bench row whose rubric (and reference answer) was used
    rubric_index: int
    repeat: int
    score: int | None
    feedback: str | None
    status: Literal["ok", "unparsed"]
    reason: str | None  # why unparsed (a judge.parser reason, or llm_failed / invalid_output)
    error: str | None
    attempts: int


def read_bench(path: Path | str) -> tuple[list[dict[str, Any]], Counter]:
    """The valid rows of a bench file (as dicts), and the count of dropped rows by reason.

    Here, beside `BenchRow`, so that the stages reading a bench (judge, report) import the row
    type and not the bench's generation (and with it data/ and llm/)."""
    rows, dropped = [], Counter()
    seen_ids: set[str] = set()
    valid, reasons, messages = validate_rows(BenchRow, list(read_jsonl(path)))
    dropped.update(reasons)
    for message in messages:
        log.warning("%s: bench %s (dropped)", path, message)
    for row in valid:
        if row.id in seen_ids:
            dropped["duplicate_id"] += 1
            log.warning("%s: bench id %r appears more than once (dropped)", path, row.id)
            continue
        seen_ids.add(row.id)
        rows.append(row.dump())
    return rows, dropped
