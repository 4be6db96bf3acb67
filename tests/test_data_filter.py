"""Stage `filter`: the persona regex, deduplication, A.1's sampling, and its metrics and errors."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from janus.config.filter import SOURCE_NAMES
from janus.config.sources import SourceConfig
from janus.data.filtering import compile_persona_regex, filter_instructions, has_persona
from janus.data.sources import SourceError
from tests.sections import tiny_entry, tiny_section

REPO = Path(__file__).resolve().parents[1]
# A.1's regex as the paper prints it, r"(^?:(?!.).)*b(you are|you're|imagine|take w*(?: w+)* role)\b"
# (its apostrophe typographic, its caret a combining accent),
# with what its PDF text lost put back: the caret and each backslash (its `.` in `(?!.)` is the
# escaped `\.`, its `b` and `w` are `\b` and `\w`). The apostrophe is the paper's typographic one.
PAPER_REGEX = r"^(?:(?!\.).)*\b(you are|you\u2019re|imagine|take \w*(?: \w+)* role)\b"
DEFAULT = tiny_section(
    "filter", sources={"openhermes_preferences": tiny_entry("filter.sources", path="x")}
)
PERSONA = compile_persona_regex(DEFAULT.persona_regex, DEFAULT.persona_regex_flags)
PAPER = compile_persona_regex(PAPER_REGEX, ["IGNORECASE"])

# Matched by both ours and the paper's (typographic apostrophe or none).
MUST_MATCH = [
    "You are a helpful assistant. Summarise this article.",
    "you are given a sentence in English; translate it to French.",
    "In this task, you are given a review. Classify its sentiment.",
    "You\u2019re an expert chef. Suggest a menu.",  # the paper's typographic apostrophe
    "Imagine a world without electricity.",
    "Can you imagine what Rome looked like in 100 AD?",
    "IMAGINE you could fly.",
    "Take on the role of a pirate and greet me.",
    "Please take the role of a tutor.",
    "Take a role as my interviewer.",
    "Pretend you are my grandmother.\nTell me a story.",
    "Paris is where you are going? Then pack light.",  # `?` does not end the scope, `.` does
    "Act as my coach, you are strict",  # no full stop at all: the whole first line
]
# Straight apostrophe: ours matches it too (the paper's text has only the typographic one).
MUST_MATCH_OURS_ONLY = [
    "You're an expert chef. Suggest a menu.",
    "Since you're a lawyer, draft a contract.",
]
MUST_NOT_MATCH = [
    # The first sentence is clean: the persona phrase comes after the first full stop.
    "Summarize the text below. You are free to use bullet points.",
    "Translate this sentence. Imagine the reader is a child.",
    "Write a haiku. Take on the role of a monk while writing it.",
    "Answer briefly. You\u2019re allowed two sentences.",
    "Answer briefly. You're allowed two sentences.",
    "Summarise this article.\nYou are free to use bullet points.",  # persona only on line 2
    "Write a poem about the sea\n\nImagine it is stormy",  # no full stop: still line 1 only
    "What is the capital of France?\nParis is where you are going?",
    "Who are you?",  # "are you", not "you are"
    "Youare not spaced",
    "The yourea is a made-up word.",
    "You\u2018re with an opening quote mark is not an apostrophe.",
    "Describe an imaginary friend.",  # "imaginary" is not the word "imagine"
    "take role",  # the pattern needs a word between "take" and "role"
    "Explain the role of mitochondria.",
    "Mix 2.5 cups of flour. You are done when it is smooth.",  # the first `.` ends the scope
]


@pytest.mark.parametrize("text", MUST_MATCH)
def test_persona_regex_matches(text):
    assert has_persona(text, PERSONA)
    assert has_persona(text, PAPER)


@pytest.mark.parametrize("text", MUST_MATCH_OURS_ONLY)
def test_persona_regex_matches_the_straight_apostrophe(text):
    assert has_persona(text, PERSONA)
    assert not has_persona(text, PAPER)


@pytest.mark.parametrize("text", MUST_NOT_MATCH)
def test_persona_regex_does_not_match(text):
    assert not has_persona(text, PERSONA)
    assert not has_persona(text, PAPER)


def test_persona_regex_is_first_sentence_only_even_with_dotall():
    # The (?!\.) guard ends the scope at the first full stop even when `.` may cross newlines.
    dotall = compile_persona_regex(DEFAULT.persona_regex, ["IGNORECASE", "DOTALL"])
    assert not has_persona("Summarise.\nYou are a pirate.", dotall)
    assert has_persona("Summarise this\nas you are a pirate.", dotall)
    multiline = compile_persona_regex(DEFAULT.persona_regex, ["IGNORECASE", "MULTILINE"])
    assert has_persona("Summarise.\nYou are a pirate.", multiline)


@pytest.mark.parametrize(
    "params_file", ["params.yaml", "profiles/tiny.yaml", "profiles/paper.yaml"]
)
def test_params_carry_the_papers_regex(params_file):
    import yaml

    params = yaml.safe_load((REPO / params_file).read_text())
    regex = params["filter"]["persona_regex"]
    assert regex == DEFAULT.persona_regex
    # The paper's pattern, its apostrophe widened to a class of both, written as escapes.
    assert regex.replace(r"[\x27\u2019]", r"\u2019") == PAPER_REGEX
    assert re.compile(regex)


@pytest.mark.parametrize(
    "params_file", ["params.yaml", "profiles/tiny.yaml", "profiles/paper.yaml"]
)
def test_data_params_survive_the_dvc_lock_file(params_file):
    """DVC compares params with what it wrote to dvc.lock; a value its YAML writer cannot read
    back unchanged makes the stage look modified forever (treeverse/dvc#10668)."""
    import yaml
    from dvc.utils.serialize import dumps_yaml, parse_yaml

    params = yaml.safe_load((REPO / params_file).read_text())
    sections = (
        "filter",
        "expand_seeds",
        "preference_sets",
        "system_messages",
        "gold_responses",
        "published_collection",
        "build_pairs",
    )
    for section in sections:
        # the depth at which dvc.lock stores a stage's params
        lock = {"stages": {section: {"params": {"params.yaml": {section: params[section]}}}}}
        assert parse_yaml(dumps_yaml(lock), "dvc.lock") == lock, section


# -- the whole stage on small source files --------------------------------------------------


def _write(path: Path, rows: list) -> None:
    path.write_text(
        "".join((row if isinstance(row, str) else json.dumps(row)) + "\n" for row in rows)
    )


def _sources(tmp_path: Path) -> dict[str, SourceConfig]:
    _write(
        tmp_path / "nectar.jsonl",
        [
            {
                "prompt": f"\n\nHuman: Nectar question {i}?\n\nAssistant:",
                "source": ["anthropic-hh" if i % 2 else "sharegpt"],
            }
            for i in range(6)
        ]
        + [{"prompt": "\n\nHuman: Shared question?\n\nAssistant:", "source": ["ultrachat"]}],
    )
    _write(
        tmp_path / "ohp.jsonl",
        [{"source": "CamelAI", "prompt": f"Hermes task {i}."} for i in range(10)]
        + [{"source": None, "prompt": "Shared question?"}]  # duplicate of a Nectar instruction
        + [{"source": "airoboros2.2", "prompt": "You are a trivia AI. Name a moon."}]
        + ["{broken json"],
    )
    _write(
        tmp_path / "uf.jsonl",
        [{"prompt": f"UltraFeedback item {i}", "source": "flan_v2_niv2"} for i in range(4)]
        + [
            {"prompt": "UltraFeedback item 0", "source": "flan_v2_niv2"}
        ]  # duplicate within the source
        + [{"prompt": "x", "source": "false_qa"}]  # too short (min_chars 3)
        + [{"prompt": None, "source": "sharegpt"}],
    )
    _write(
        tmp_path / "arena.jsonl",
        [
            {"conversation_a": [{"role": "user", "content": f"Arena prompt {i}"}], "turn": 1}
            for i in range(3)
        ]
        + [{"conversation_a": "not a list"}],
    )
    _write(
        tmp_path / "dsp.jsonl", [{"query": f"Alpaca query {i}", "responses": {}} for i in range(3)]
    )
    return {
        "nectar": tiny_entry("filter.sources", path="nectar.jsonl"),
        "openhermes_preferences": tiny_entry("filter.sources", path="ohp.jsonl"),
        "ultrafeedback_binarized_clean": tiny_entry("filter.sources", path="uf.jsonl"),
        "chatbot_arena_conversations": tiny_entry("filter.sources", path="arena.jsonl"),
        "domain_specific_preference": tiny_entry("filter.sources", path="dsp.jsonl"),
    }


def test_filter_dedups_samples_per_source_and_fills(tmp_path):
    config = tiny_section("filter", sources=_sources(tmp_path), per_source=4, total=20, seed=1)
    kept, metrics = filter_instructions(config, root=tmp_path)

    texts = [row["instruction"] for row in kept]
    assert len(texts) == len(set(texts))
    # Arena and DSP have 3 each: they give all they have, the short one is a shortfall, and no
    # other source shrinks to match (A.1: 12k from each, the smallest gives all it has).
    sources = metrics["sources"]
    assert {key: sources[key]["sampled"] for key in sources} == {
        "nectar": 4,
        "openhermes_preferences": 4 + 2,
        "ultrafeedback_binarized_clean": 4,
        "chatbot_arena_conversations": 3,
        "domain_specific_preference": 3,
    }
    assert {key: sources[key]["shortfall"] for key in sources} == {
        "nectar": 0,
        "openhermes_preferences": 0,
        "ultrafeedback_binarized_clean": 0,
        "chatbot_arena_conversations": 1,
        "domain_specific_preference": 1,
    }
    assert all(sources[key]["requested"] == 4 for key in sources)
    assert metrics["table5"]["domain_specific_preference"] == {
        "requested": 4,
        "available": 3,
        "kept": 3,
        "shortfall": 1,
    }
    assert metrics["shortfall"] == 2
    # The fill source tops the sample up to total: 20 - (4 + 4 + 4 + 3 + 3).
    assert metrics["fill"] == {
        "source": "openhermes_preferences",
        "requested": 2,
        "taken": 2,
        "shortfall": 0,
    }
    assert sources["openhermes_preferences"]["fill"] == 2
    assert metrics["sampled"] == 20
    # The duplicate across sources is dropped from the later source; within a source, too.
    assert sources["openhermes_preferences"]["duplicates"] == 1
    assert sources["ultrafeedback_binarized_clean"]["duplicates"] == 1
    assert sources["ultrafeedback_binarized_clean"]["too_short"] == 1
    assert sources["ultrafeedback_binarized_clean"]["bad_rows"] == {"missing_text": 1}
    assert sources["openhermes_preferences"]["bad_rows"] == {"malformed": 1}
    assert sources["chatbot_arena_conversations"]["bad_rows"] == {"wrong_type": 1}
    assert metrics["removed"]["duplicates"] == 2
    assert metrics["instructions"] == len(kept) == 20 - metrics["removed"]["persona"]
    # Table 5's shape sums to the kept count.
    assert sum(sum(c.values()) for c in metrics["per_original_source"].values()) == len(kept)
    for row in kept:
        assert set(row) == {"instruction_id", "main_source", "original_source", "instruction"}
        assert not has_persona(row["instruction"], PERSONA)


def test_a_short_fill_source_is_a_counted_shortfall(tmp_path):
    # OpenHermes has 11 unique instructions: 40 asked, it gives 4 + 7 and the rest is missing.
    config = tiny_section("filter", sources=_sources(tmp_path), per_source=4, total=40, seed=1)
    kept, metrics = filter_instructions(config, root=tmp_path)
    assert metrics["fill"] == {
        "source": "openhermes_preferences",
        "requested": 22,
        "taken": 7,
        "shortfall": 15,
    }
    assert metrics["sampled"] == 4 + 11 + 4 + 3 + 3


def test_filter_removes_persona_after_sampling(tmp_path):
    sources = _sources(tmp_path)
    config = tiny_section(
        "filter", sources=sources, per_source=3, total=27, seed=1
    )  # all of OpenHermes
    kept, metrics = filter_instructions(config, root=tmp_path)
    assert metrics["sources"]["openhermes_preferences"]["sampled"] == 11
    assert metrics["sources"]["openhermes_preferences"]["persona"] == 1
    assert "You are a trivia AI. Name a moon." not in {row["instruction"] for row in kept}


def test_filter_is_deterministic_and_seeded(tmp_path):
    config = tiny_section("filter", sources=_sources(tmp_path), per_source=2, total=12, seed=7)
    first, _ = filter_instructions(config, root=tmp_path)
    again, _ = filter_instructions(config, root=tmp_path)
    other, _ = filter_instructions(config.model_copy(update={"seed": 8}), root=tmp_path)
    assert first == again
    assert [row["instruction_id"] for row in first] != [row["instruction_id"] for row in other]


def test_instruction_ids_are_stable_and_unique(tmp_path):
    config = tiny_section("filter", sources=_sources(tmp_path), per_source=3, total=27)
    kept, _ = filter_instructions(config, root=tmp_path)
    ids = [row["instruction_id"] for row in kept]
    assert len(ids) == len(set(ids))
    assert all(iid.rsplit("-", 1)[0] in SOURCE_NAMES for iid in ids)
    # The id depends on the instruction, not on the sample it happened to be drawn in.
    other, _ = filter_instructions(config.model_copy(update={"seed": 99}), root=tmp_path)
    by_text = {row["instruction"]: row["instruction_id"] for row in other}
    shared = [row for row in kept if row["instruction"] in by_text]
    assert shared and all(by_text[row["instruction"]] == row["instruction_id"] for row in shared)


def test_multi_turn_skip_policy(tmp_path):
    sources = _sources(tmp_path)
    _write(
        tmp_path / "arena.jsonl",
        [{"conversation_a": [{"role": "user", "content": f"Arena prompt {i}"}]} for i in range(3)]
        + [
            {
                "conversation_a": [
                    {"role": "user", "content": "First question"},
                    {"role": "assistant", "content": "b"},
                    {"role": "user", "content": "c"},
                ]
            }
        ],
    )
    keep = tiny_section("filter", sources=sources, per_source=4, total=40, multi_turn="first_turn")
    skip = keep.model_copy(update={"multi_turn": "skip"})
    _, kept_metrics = filter_instructions(keep, root=tmp_path)
    _, skip_metrics = filter_instructions(skip, root=tmp_path)
    assert kept_metrics["sources"]["chatbot_arena_conversations"]["multi_turn"] == 1
    assert kept_metrics["sources"]["chatbot_arena_conversations"]["pool"] == 4
    assert skip_metrics["sources"]["chatbot_arena_conversations"]["pool"] == 3


def test_missing_source_file_names_it(tmp_path):
    sources = _sources(tmp_path)
    sources["domain_specific_preference"] = tiny_entry("filter.sources", path="missing/dsp.jsonl")
    with pytest.raises(SourceError, match=r"missing/dsp.jsonl: source file not found"):
        filter_instructions(tiny_section("filter", sources=sources), root=tmp_path)


def test_empty_source_names_it(tmp_path):
    sources = _sources(tmp_path)
    (tmp_path / "dsp.jsonl").write_text("\n")
    with pytest.raises(
        SourceError, match=r"'domain_specific_preference' \(dsp.jsonl\) has no rows"
    ):
        filter_instructions(tiny_section("filter", sources=sources), root=tmp_path)


def test_source_with_only_bad_rows_names_it(tmp_path):
    sources = _sources(tmp_path)
    _write(tmp_path / "dsp.jsonl", [{"query": 5}, {"responses": {}}])
    with pytest.raises(SourceError, match="'domain_specific_preference'.*no usable instruction"):
        filter_instructions(tiny_section("filter", sources=sources), root=tmp_path)


def test_disabled_source_is_not_read(tmp_path):
    sources = _sources(tmp_path)
    sources["domain_specific_preference"] = tiny_entry(
        "filter.sources", path="missing.jsonl", enabled=False
    )
    kept, metrics = filter_instructions(
        tiny_section("filter", sources=sources, per_source=2, total=10), root=tmp_path
    )
    assert "domain_specific_preference" not in metrics["sources"]
    assert {row["main_source"] for row in kept} <= {
        "Nectar",
        "OpenHermesPreferences",
        "ultrafeedback_binarized_cleaned",
        "chatbot_arena_conversations",
    }


def test_total_below_equal_shares_is_an_error(tmp_path):
    config = tiny_section("filter", sources=_sources(tmp_path), per_source=3, total=5)
    with pytest.raises(ValueError, match=r"filter.total \(5\) is smaller"):
        filter_instructions(config, root=tmp_path)


def test_params_errors_name_the_key():
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="fill_source"):
        tiny_section("filter", sources={"nectar": tiny_entry("filter.sources", path="x")})
    with pytest.raises(ValidationError, match="not a valid regular expression"):
        tiny_section(
            "filter",
            sources={"openhermes_preferences": tiny_entry("filter.sources", path="x")},
            persona_regex="(",
        )


def test_repo_sample_data_passes_the_filter():
    """The default sample data: every source is readable, duplicates and personas are caught."""
    from janus.config.params import load_params

    params = load_params(REPO / "params.yaml")
    # the DSP file the filter reads is the dsp stage's copy of the bundled one
    dsp = params.filter.sources["domain_specific_preference"].model_copy(
        update={"path": params.filter.dsp_source.path}
    )
    sources = {**params.filter.sources, "domain_specific_preference": dsp}
    config = params.filter.model_copy(update={"per_source": 100, "total": 1000, "sources": sources})
    kept, metrics = filter_instructions(config, root=REPO)
    assert metrics["removed"]["duplicates"] >= 2
    assert metrics["removed"]["persona"] >= 5
    for key, report in metrics["sources"].items():
        assert 8 <= report["rows"] <= 15, key
        assert report["kept"] >= 5, key
