"""Params are the whole truth: every schema field that shapes an output is required, so its value
is written in every profile, where `dvc params diff` shows it and a change reruns its stages.

The schema is walked from `Params` down through every nested model (dict values, lists, optionals):
a field with a default fails the test unless it is in an allow-list below, each entry saying why
the value cannot change an output.
"""

from __future__ import annotations

import copy
import typing
from collections.abc import Iterator

import pytest
import yaml
from pydantic import BaseModel

from janus.config.common import ConfigError
from janus.config.params import Params, parse_params
from tests.conftest import REPO_ROOT

PROFILES = ["params.yaml", "profiles/paper.yaml", "profiles/paper_regenerate.yaml", "profiles/tiny.yaml"]

# (model, field): why a default is fine there. Each must still have a default (checked below).
NOT_OUTPUT_SHAPING = {
    ("LLMConfig", "api_key_env"): "the name of the key's environment variable, not the key",
    ("LLMConfig", "max_in_flight"): "how many requests are in flight, not what they ask",
    ("LLMConfig", "requests_per_minute"): "a client-side rate limit",
    ("LLMConfig", "tokens_per_minute"): "a client-side rate limit",
    ("LLMConfig", "cache_dir"): "where answers are cached, not what they are",
    ("LLMConfig", "prices"): "USD for cost accounting, a runtime figure (not a metric)",
    ("LLMConfig", "broken_endpoint_window"): "stops a run on a broken endpoint, never changes an "
    "answer",
    ("LLMConfig", "mode"): "online or Batch API: the same model and request (one cache key); "
    "only the price and the wait differ",
    ("LLMConfig", "batch_poll_s"): "how often a batch's status is polled",
    ("LLMConfig", "max_usd"): "a spending cap: it stops sending, never changes an answer",
    ("LLMSection", "run_max_usd"): "a spending cap: it stops sending, never changes an answer",
    ("PerspectiveParams", "key_env"): "the name of the key's environment variable, not the key",
    ("PerspectiveParams", "requests_per_second"): "a client-side rate limit",
    ("PerspectiveParams", "backoff_s"): "how long to wait before a retry",
}
# Whole models whose fields may all have defaults.
NOT_OUTPUT_SHAPING_MODELS = {
    "TrackingSection": "MLflow logging: writes nothing DVC tracks, and no stage depends on it",
}
# The per-trainer sections pass through to TRL's config classes (janus.train.configs), whose own
# fields are checked against the class when the stage starts; their keys are required in every
# profile all the same (test_every_key_of_a_profile_is_required), like any section's.
TRL_PASSTHROUGH_MODELS = {"SFTStage", "DPOStage", "ORPOStage", "RewardModelStage"}


def _models_in(annotation) -> Iterator[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
    for argument in typing.get_args(annotation):
        yield from _models_in(argument)


def schema_models(root: type[BaseModel] = Params) -> dict[str, type[BaseModel]]:
    """Every model reachable from `root`, by class name."""
    found: dict[str, type[BaseModel]] = {}
    pending = [root]
    while pending:
        model = pending.pop()
        if model.__name__ in found:
            continue
        found[model.__name__] = model
        for field in model.model_fields.values():
            pending += list(_models_in(field.annotation))
    return found


def test_the_walk_reaches_nested_models():
    names = set(schema_models())
    # through dict values (filter.sources, infer.models), optionals and sub-sections
    assert {"SourceConfig", "CheckpointModel", "BestOfNModel", "GenerationParams"} <= names
    assert {"PerspectiveParams", "ClassifierParams", "EngineParams", "Price"} <= names


def test_no_output_shaping_field_has_a_default():
    offenders = []
    for name, model in sorted(schema_models().items()):
        if name in NOT_OUTPUT_SHAPING_MODELS:
            continue
        for field_name, field in model.model_fields.items():
            key = (name, field_name)
            if (
                field.is_required()
                or key in NOT_OUTPUT_SHAPING
            ):
                continue
            offenders.append(
                f"{name}.{field_name} (default {field.get_default(call_default_factory=True)!r})"
            )
    assert not offenders, (
        "these fields shape outputs but have a schema default, which `dvc params diff` cannot "
        "show: make them required and write their values in every profile: " + ", ".join(offenders)
    )


def test_the_allow_list_names_real_defaults():
    models = schema_models()
    for model_name, field_name in NOT_OUTPUT_SHAPING:
        field = models[model_name].model_fields[field_name]
        assert not field.is_required(), (
            f"{model_name}.{field_name} is required: drop it from the list"
        )


def test_every_model_forbids_unknown_keys():
    for name, model in schema_models().items():
        if name in TRL_PASSTHROUGH_MODELS:  # extra keys go to the TRL config, checked there
            continue
        assert model.model_config.get("extra") == "forbid", name


def _raw(name: str) -> dict:
    return yaml.safe_load((REPO_ROOT / name).read_text())


def _leaf_paths(node, path=()) -> Iterator[tuple]:
    if isinstance(node, dict) and node:
        for key, value in node.items():
            yield from _leaf_paths(value, (*path, key))
    else:
        yield path


# Tables of named entries: which entries a profile lists is its own choice.
NAMED_TABLES = {
    "sources",
    "models",
    "best_of_n",
    "endpoints",
    "hub_models",
    "prices",
    "helpfulness_sources",
    "helpfulness_mix",
    "paper_only",
    "rows",
    "alpaca_eval_runs",
    "pairs",  # scorecard.same_judge.pairs: ours -> published
}


def _allowed_to_omit(path: tuple) -> bool:
    """Paths whose field has an allowed default, a whole entry of a named table that is a single
    value (scorecard.rows), or a path in the tracking section (not output-shaping)."""
    if path[0] == "tracking":
        return True
    if len(path) >= 2 and path[-2] in NAMED_TABLES:
        return True
    return path[-1] in {field for _, field in NOT_OUTPUT_SHAPING}


@pytest.mark.parametrize("name", PROFILES)
def test_every_key_of_a_profile_is_required(name):
    """Dropping any one key from a profile fails validation naming that key: no value is
    silently filled in by the schema."""
    raw = _raw(name)
    parse_params(raw, name)  # complete as it is
    checked = 0
    for path in _leaf_paths(raw):
        if _allowed_to_omit(path):
            continue
        broken = copy.deepcopy(raw)
        parent = broken
        for key in path[:-1]:
            parent = parent[key]
        del parent[path[-1]]
        with pytest.raises(ConfigError) as caught:
            parse_params(broken, name)
        dotted = ".".join(str(part) for part in path)
        assert f"{dotted}: required key is missing" in str(caught.value), dotted
        checked += 1
    assert checked > 100


def test_profiles_share_every_key_outside_named_entries():
    """The three profiles spell the same keys in every section that is not a table of named
    entries (sources, models, endpoints): a key one profile lacks is a value it leaves to code."""
    tables = NAMED_TABLES

    def keys(node, path=()) -> set[tuple]:
        found = set()
        if isinstance(node, dict):
            for key, value in node.items():
                found.add((*path, key))
                if key not in tables:
                    found |= keys(value, (*path, key))
        return found

    sets = {name: {k for k in keys(_raw(name)) if not _allowed_to_omit(k)} for name in PROFILES}
    assert all(keys_ == sets["params.yaml"] for keys_ in sets.values()), {
        name: sorted(set().union(*sets.values()) - keys_) for name, keys_ in sets.items()
    }


def _flat(node, prefix: str = "") -> dict[str, object]:
    if isinstance(node, dict) and node:
        flat: dict[str, object] = {}
        for key, value in node.items():
            flat.update(_flat(value, f"{prefix}.{key}" if prefix else str(key)))
        return flat
    return {prefix: node}


def test_dvc_params_diff_shows_every_difference_between_profiles(tmp_path):
    """Switching profiles is copying one over params.yaml; `dvc params diff` must then list
    every value that changes what the pipeline computes: the schema fills in nothing, and every
    section a stage reads is declared in dvc.yaml (an undeclared one would be invisible here)."""
    import json
    import os
    import shutil
    import subprocess
    import sys

    from janus.config.params import load_params

    env = {
        **os.environ,
        "PATH": f"{os.path.dirname(sys.executable)}{os.pathsep}{os.environ['PATH']}",
    }

    def run(*args: str) -> str:
        done = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    shutil.copy(REPO_ROOT / "dvc.yaml", tmp_path / "dvc.yaml")
    shutil.copy(REPO_ROOT / "params.yaml", tmp_path / "params.yaml")
    run("git", "init", "-q")
    run(sys.executable, "-m", "dvc", "init", "-q")
    run("git", "add", "-A")
    run("git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "default profile")
    shutil.copy(REPO_ROOT / "profiles/paper.yaml", tmp_path / "params.yaml")
    shown = set(
        json.loads(run(sys.executable, "-m", "dvc", "params", "diff", "--json"))["params.yaml"]
    )

    default = _flat(load_params(REPO_ROOT / "params.yaml").model_dump(mode="json"))
    paper = _flat(load_params(REPO_ROOT / "profiles/paper.yaml").model_dump(mode="json"))
    hidden = []
    for key in sorted(set(default) | set(paper)):
        before, after = default.get(key), paper.get(key)
        if before == after or before in (None, {}) and after in (None, {}):
            continue  # equal, or an entry that one profile has and the other lacks, read as null
        parts = tuple(key.split("."))
        if parts[0] == "tracking" or _allowed_to_omit(parts) or parts[-2:-1] == ("prices",):
            continue  # allowed defaults: they cannot change an output
        if not any(key == name or key.startswith(name + ".") for name in shown):
            hidden.append(f"{key}: {before!r} -> {after!r}")
    assert len(shown) > 100
    assert not hidden, hidden
