"""The params schema: every profile validates, and a bad key or type fails naming the key."""

from __future__ import annotations

import copy

import pytest
import yaml

from janus.config.common import (
    PARAMS_KEYS,
    ConfigError,
    load_section,
    load_sections,
    parse_sections,
)
from janus.config.filter import FilterSection
from janus.config.helpfulness import HelpfulnessSection
from janus.config.infer import InferSection
from janus.config.judge import JudgeSection
from janus.config.llm import LLMSection
from janus.config.params import Params, load_params, parse_params
from tests.conftest import REPO_ROOT

PROFILES = ["params.yaml", "profiles/paper.yaml", "profiles/tiny.yaml"]


@pytest.fixture(scope="module")
def default_raw() -> dict:
    return yaml.safe_load((REPO_ROOT / "params.yaml").read_text())


@pytest.mark.parametrize("name", PROFILES)
def test_every_profile_validates(name):
    params = load_params(REPO_ROOT / name)
    assert params.filter.per_source >= 1


def test_profiles_differ_where_the_paper_does():
    local = load_params(REPO_ROOT / "params.yaml")
    paper = load_params(REPO_ROOT / "profiles/paper.yaml")
    assert local.llm.teacher.backend == "local" and local.llm.judge.backend == "local"
    assert paper.llm.teacher.backend == "openai" and paper.llm.judge.backend == "openai"
    assert paper.preference_sets.sets_per_instruction == 3
    assert paper.train.common.prompt_format == "mistral"
    assert paper.judge.repeats == 3


def test_profiles_have_the_same_sections():
    # A stage that reads a section the other profile lacks would fail only after the switch.
    keys = {name: set(yaml.safe_load((REPO_ROOT / name).read_text())) for name in PROFILES}
    assert keys["params.yaml"] == keys["profiles/paper.yaml"] == keys["profiles/tiny.yaml"]


def _error_for(raw: dict) -> str:
    with pytest.raises(ConfigError) as caught:
        parse_params(raw)
    return str(caught.value)


def test_misspelt_key_is_named(default_raw):
    raw = copy.deepcopy(default_raw)
    raw["preference_sets"]["sets_per_instrucion"] = 3
    message = _error_for(raw)
    assert "preference_sets.sets_per_instrucion" in message and "unknown key" in message


def test_wrong_type_is_named(default_raw):
    raw = copy.deepcopy(default_raw)
    raw["llm"]["teacher"]["batch_size"] = "eight"
    assert "llm.teacher.batch_size" in _error_for(raw)


def test_out_of_range_value_is_named(default_raw):
    raw = copy.deepcopy(default_raw)
    raw["preference_sets"]["sets_per_instruction"] = 1  # pairs need another system message
    assert "preference_sets.sets_per_instruction" in _error_for(raw)


def test_missing_section_is_named(default_raw):
    raw = copy.deepcopy(default_raw)
    del raw["filter"]
    message = _error_for(raw)
    assert "filter" in message and "missing" in message


def test_relative_cache_dir_is_refused(default_raw):
    raw = copy.deepcopy(default_raw)
    raw["llm"]["judge"]["cache_dir"] = "cache/llm"
    assert "llm.judge.cache_dir" in _error_for(raw)


def test_missing_or_broken_file_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_params(tmp_path / "params.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("filter: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_params(broken)


# A stage validates only the sections it reads (janus.config.common.load_sections), with the
# messages of the whole schema.


def _section_error_for(raw: dict, *sections) -> str:
    with pytest.raises(ConfigError) as caught:
        parse_sections(raw, *sections)
    return str(caught.value)


def test_the_top_level_keys_are_the_params_fields():
    assert set(PARAMS_KEYS) == set(Params.model_fields)


def test_a_stage_loads_only_its_sections():
    params = load_sections(LLMSection, InferSection, JudgeSection, path=REPO_ROOT / "params.yaml")
    whole = load_params(REPO_ROOT / "params.yaml")
    assert params.judge == whole.judge and params.infer == whole.infer
    assert params.llm.judge.role == "judge"  # the section's own validators ran
    assert not hasattr(params, "filter")
    assert load_section(FilterSection, REPO_ROOT / "params.yaml") == whole.filter


def test_a_bad_key_in_a_loaded_section_reads_as_in_the_whole_schema(default_raw):
    raw = copy.deepcopy(default_raw)
    raw["judge"]["repeat"] = 3
    raw["llm"]["teacher"]["batch_size"] = "eight"
    message = _section_error_for(raw, LLMSection, JudgeSection)
    assert message == _error_for(raw)
    assert "judge.repeat: unknown key" in message


def test_other_sections_are_not_validated_but_their_names_are(default_raw):
    raw = copy.deepcopy(default_raw)
    raw["filter"]["total"] = "many"  # the judge stage does not read filter
    assert parse_sections(raw, JudgeSection).judge.repeats == default_raw["judge"]["repeats"]
    raw["judgee"] = {}
    assert "judgee: unknown key" in _section_error_for(raw, JudgeSection)
    del raw["judgee"], raw["judge"]
    assert "judge: required key is missing" in _section_error_for(raw, JudgeSection)


def test_cross_section_names_are_checked_with_the_sections_loaded(default_raw):
    raw = copy.deepcopy(default_raw)
    raw["helpfulness"]["models"] = ["no_such_model"]
    raw["helpfulness"]["alpaca_eval_runs"] = {}
    message = _section_error_for(raw, HelpfulnessSection, InferSection)
    assert "helpfulness.models: ['no_such_model'] not in infer.models" in message
    assert message == _error_for(raw)
    # without infer (alpaca_eval_judge's sections) the names are checked where infer is loaded
    assert parse_sections(raw, HelpfulnessSection).helpfulness.models == ["no_such_model"]


def test_batch_mode_refuses_a_fleet(default_raw):
    raw = copy.deepcopy(default_raw)
    raw["llm"]["judge"].update(
        backend="openai", mode="batch", base_url=["http://a/v1", "http://b/v1"]
    )
    assert "not a fleet" in _error_for(raw)


def test_an_endpoint_name_with_a_dot_is_refused(default_raw):
    # DVC reads `infer_api@gpt-4.1` as nested params: the stage would not find its section
    raw = copy.deepcopy(default_raw)
    raw["infer"]["models"]["gpt-4.1"] = raw["infer"]["models"]["base"]
    assert "gpt-4.1" in _error_for(raw)


def test_save_strategy_no_survives_a_yaml_1_2_rewrite(default_raw):
    # `dvc exp run -S` writes `save_strategy: no` unquoted; PyYAML reads it back as False
    raw = copy.deepcopy(default_raw)
    raw["train"]["common"]["save_strategy"] = yaml.safe_load("save_strategy: no")["save_strategy"]
    assert raw["train"]["common"]["save_strategy"] is False
    assert parse_params(raw).train.common.save_strategy == "no"
    raw["train"]["common"]["save_strategy"] = True  # any other boolean is still an error
    with pytest.raises(Exception, match="save_strategy"):
        parse_params(raw)
