"""Params sections for tests, taken from profiles/tiny.yaml.

The schema has no defaults for values that shape outputs, so a test builds a section from the
tiny profile and overrides only what it is about:

    tiny_section("build_pairs", pairs_per_instruction=2)
    tiny_section("infer.engine", batch_size=4)
    tiny_section("filter.sources.nectar", path="x.jsonl")   # an entry of a table

An override of a sub-section given as a dict is merged into the profile's (so
`sampling={"max_tokens": 6}` keeps the profile's temperature); a table of named entries
(`models`, `sources`) is replaced, and each entry given as a dict is completed from the
profile's first entry of that table; any other value replaces the profile's.
"""

from __future__ import annotations

import typing
from functools import cache
from typing import Any

import yaml
from pydantic import BaseModel

from janus.config.params import Params
from tests.conftest import REPO_ROOT


@cache
def _tiny_raw() -> str:
    return (REPO_ROOT / "profiles" / "tiny.yaml").read_text()


def _model_in(annotation) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for argument in typing.get_args(annotation):
        found = _model_in(argument)
        if found is not None:
            return found
    return None


def _child_model(model: type[BaseModel], key: str) -> type[BaseModel] | None:
    field = model.model_fields.get(key)
    return None if field is None else _model_in(field.annotation)


# Where to take a table entry's other values from when the profile's table is empty.
ENTRY_TEMPLATES = {"LLMConfig": "llm.teacher"}


def _entry_template(child: type[BaseModel], table: Any) -> dict[str, Any]:
    if isinstance(table, dict) and table:
        return next(iter(table.values()))
    if child.__name__ not in ENTRY_TEMPLATES:
        return {}  # no template: the entry must be given whole
    raw: Any = yaml.safe_load(_tiny_raw())
    for key in ENTRY_TEMPLATES[child.__name__].split("."):
        raw = raw[key]
    return raw


def _merge(model: type[BaseModel] | None, base: Any, overrides: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base or {})
    for key, value in overrides.items():
        child = _child_model(model, key) if model is not None else None
        origin = typing.get_origin(model.model_fields[key].annotation) if child else None
        if (
            child
            and origin is None
            and isinstance(value, dict)
            and isinstance(merged.get(key), dict)
        ):
            merged[key] = _merge(child, merged[key], value)  # a sub-section: merged
        elif child and origin is dict and isinstance(value, dict):
            # a table of named entries: replaced, each entry given as a dict completed from
            # the profile's first entry (so a test names only what it is about)
            template = _entry_template(child, merged.get(key))
            merged[key] = {
                name: _merge(child, template, entry) if isinstance(entry, dict) else entry
                for name, entry in value.items()
            }
        else:
            merged[key] = value
    return merged


def tiny_section(section: str, /, **overrides: Any) -> BaseModel:
    """The section (or table entry) at dotted `section` of the tiny profile, with `overrides`."""
    raw: Any = yaml.safe_load(_tiny_raw())
    model: type[BaseModel] = Params
    in_table = False  # the previous key named a table (dict[str, Model]): this one an entry
    for key in section.split("."):
        raw = raw.get(key) if isinstance(raw, dict) else None
        if in_table:
            in_table = False
            continue
        child = _child_model(model, key)
        if child is None:
            raise KeyError(f"{section}: {model.__name__} has no section {key!r}")
        in_table = typing.get_origin(model.model_fields[key].annotation) is dict
        model = child
    return model.model_validate(_merge(model, raw, overrides))


def tiny_entry(table_path: str, /, **values: Any) -> BaseModel:
    """A new entry of a table (e.g. `filter.sources`), with the values of the profile's first
    entry for whatever `values` does not give."""
    raw: Any = yaml.safe_load(_tiny_raw())
    for key in table_path.split("."):
        raw = raw[key]
    first = next(iter(raw))
    return tiny_section(f"{table_path}.{first}", **values)
