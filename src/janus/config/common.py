"""What every params section shares: the Section base, ConfigError, reading the YAML file, the
error messages, and `load_sections`, which validates only the sections a stage reads.

A stage imports the section modules it reads (`janus.config.judge`, ...) and this core, never the
whole schema (`janus.config.params`), so that editing one section's schema reruns only the stages
that read it.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, create_model

DEFAULT_PARAMS_PATH = Path("params.yaml")
# A hub model id (owner/name), and the prefix that marks one where a local path could stand.
HUB_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$"
HUB_PREFIX = "hub:"

# The top-level keys of a params file (janus.config.params.Params has one field each; a test holds
# them equal). Kept here so that a stage reading a few sections still rejects a misspelt one.
PARAMS_KEYS = (
    "seed",
    "generate",
    "environment",
    "llm",
    "models",
    "filter",
    "expand_seeds",
    "preference_sets",
    "system_messages",
    "gold_responses",
    "published_collection",
    "build_pairs",
    "train",
    "bench",
    "infer",
    "judge",
    "judge_scores",
    "toxicity",
    "report",
    "helpfulness",
    "scorecard",
    "tracking",
)


class ConfigError(ValueError):
    """A params file that does not match the schema; the message names each bad key."""


class Section(BaseModel):
    # extra="forbid" is what turns a typo into an error that names the key.
    model_config = ConfigDict(extra="forbid", validate_default=True)

    # A top-level section's key in the params file (`judge`); nested models have none.
    params_key: ClassVar[str] = ""

    def check_references(self, sections: Mapping[str, Any]) -> None:
        """Raise ValueError when a name this section takes from another loaded section (in
        `sections`, by params key) is not there. Called after every loaded section validated."""


# Params are the whole truth: a field that shapes an output has no default here, so its value is
# written in every params file (params.yaml, profiles/*.yaml) where `dvc params diff` shows it and
# a change reruns the stages that read it. The few defaults left are for settings that cannot
# change an output (where a cache lives, the name of a key's environment variable, rate limits,
# dollar accounting); tests/test_params_complete.py lists them and fails on any other default.


def format_errors(path: Path, errors: list[dict[str, Any]]) -> str:
    """One line per bad key (pydantic's error dicts), under a line naming the file."""
    lines = [f"{path}: {len(errors)} invalid value(s)"]
    for item in errors:
        key = ".".join(str(part) for part in item["loc"]) or "(top level)"
        if item["type"] == "extra_forbidden":
            lines.append(f"  {key}: unknown key (misspelt, or not read by any stage)")
        elif item["type"] == "missing":
            lines.append(f"  {key}: required key is missing")
        else:
            lines.append(f"  {key}: {item['msg']} (got {item.get('input')!r})")
    return "\n".join(lines)


def read_params_file(path: Path | str = DEFAULT_PARAMS_PATH) -> Any:
    """The parsed YAML of a params file (not yet validated)."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path}: params file not found (run from the repository root)")
    try:
        return yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML: {error}") from None


def check_references(path: Path, sections: Mapping[str, Any]) -> None:
    """Run every loaded section's cross-section check; raises ConfigError naming the file."""
    for section in sections.values():
        if isinstance(section, Section):
            try:
                section.check_references(sections)
            except ValueError as error:
                raise ConfigError(f"{path}: {error}") from None


@cache
def _subset_model(sections: tuple[type[Section], ...]) -> type[Section]:
    fields: dict[str, Any] = {}
    for section in sections:
        if not section.params_key:
            raise TypeError(f"{section.__name__} is not a top-level params section")
        fields[section.params_key] = (section, ...)
    return create_model("Params", __base__=Section, **fields)


def parse_sections(raw: Any, *sections: type[Section], path: Path | str = DEFAULT_PARAMS_PATH):
    """Validate the given sections of an already-loaded mapping, and that every other top-level
    key is a known one; returns a model with one attribute per section (`.judge`, `.llm`, ...)."""
    path = Path(path)
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(raw).__name__}")
    model = _subset_model(tuple(sections))
    errors: list[dict[str, Any]] = []
    try:
        loaded = model.model_validate({key: raw[key] for key in model.model_fields if key in raw})
    except ValidationError as error:
        errors = list(error.errors())
    errors += [{"loc": (key,), "type": "extra_forbidden"} for key in raw if key not in PARAMS_KEYS]
    if errors:
        raise ConfigError(format_errors(path, errors))
    check_references(path, dict(loaded))
    return loaded


def load_sections(*sections: type[Section], path: Path | str = DEFAULT_PARAMS_PATH):
    """Read a params file and validate only `sections`: what a stage calls first.

        params = load_sections(LLMSection, InferSection, JudgeSection)
        params.judge.repeats, params.llm.judge, params.infer.model_names()

    Errors read as janus.config.params.load_params's (the same ConfigError, naming each key)."""
    path = Path(path)
    return parse_sections(read_params_file(path), *sections, path=path)


SectionT = TypeVar("SectionT", bound=Section)


def load_section(section: type[SectionT], path: Path | str = DEFAULT_PARAMS_PATH) -> SectionT:
    """One section of a params file, validated: `load_section(FilterSection)`."""
    return getattr(load_sections(section, path=path), section.params_key)
