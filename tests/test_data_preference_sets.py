"""Preference sets: the schema, parsing and validation; the taxonomy and seed sets; the request
builders of the LLM stages (no model needed)."""

from __future__ import annotations

import copy
from pathlib import Path

import jsonschema
import pytest

from janus.data.common import (
    Limits,
    PreferenceSetError,
    iter_preference_set_rows,
    preference_set_as_object,
    preference_set_from_object,
    preference_set_schema,
    read_preference_set_rows,
    validate_preference_set,
)
from janus.data.preference_sets import build_preference_set_requests
from janus.data.seeds import assemble_seed_sets, clean_description, select_keywords
from janus.data.system_messages import (
    build_system_message_requests,
    clean_system_message,
    load_examples,
)
from janus.data.taxonomy import TaxonomyError, load_taxonomy, parse_taxonomy
from janus.io import write_jsonl
from tests.sections import tiny_section

REPO = Path(__file__).resolve().parents[1]
DIMENSIONS = ("style", "background_knowledge", "informativeness", "harmlessness")


def _object() -> dict:
    return {
        "style": {
            "subdimension": "Conciseness",
            "preference": "Brief",
            "description": "Short answers.",
        },
        "background_knowledge": {
            "subdimension": "Novice",
            "preference": "New to coding",
            "description": "Explain jargon.",
        },
        "informativeness": {
            "subdimension": "Practicality",
            "preference": "Examples",
            "description": "Show runnable code.",
        },
        "harmlessness": {
            "subdimension": "Trustworthiness",
            "preference": "Safe code",
            "description": "Warn about risky commands.",
        },
    }


def _list() -> list[dict]:
    return [{"dimension": key, **value} for key, value in _object().items()]


# -- the schema and the parser ------------------------------------------------------------------


def test_valid_object_becomes_the_published_list_format():
    result = preference_set_from_object(_object(), DIMENSIONS)
    assert result == _list()
    assert [item["dimension"] for item in result] == list(DIMENSIONS)
    assert preference_set_as_object(result) == _object()


def test_valid_list_in_any_order_comes_back_in_dimension_order():
    shuffled = list(reversed(_list()))
    assert validate_preference_set(shuffled, DIMENSIONS) == _list()


def test_whitespace_is_normalised():
    value = _object()
    value["style"]["description"] = "  Short\n  answers. "
    assert preference_set_from_object(value, DIMENSIONS)[0]["description"] == "Short answers."


def test_missing_dimension():
    value = _object()
    del value["harmlessness"]
    with pytest.raises(PreferenceSetError, match=r"missing dimension\(s\) \['harmlessness'\]"):
        preference_set_from_object(value, DIMENSIONS)
    with pytest.raises(PreferenceSetError, match="missing dimension"):
        validate_preference_set(_list()[:3], DIMENSIONS)


def test_duplicated_dimension():
    items = _list()
    items[3] = {**items[0], "preference": "Another style"}
    with pytest.raises(PreferenceSetError, match="'style' appears more than once"):
        validate_preference_set(items, DIMENSIONS)


def test_unknown_dimension():
    value = _object()
    value["tone"] = value["style"]
    with pytest.raises(PreferenceSetError, match=r"unknown dimension\(s\) \['tone'\]"):
        preference_set_from_object(value, DIMENSIONS)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda v: v.update(style="Brief"), "style: expected an object, got str"),
        (
            lambda v: v["style"].update(description=3),
            "style: description is int, expected a string",
        ),
        (lambda v: v["style"].pop("subdimension"), "style: subdimension is missing"),
        (lambda v: v["style"].update(preference="   "), "style: preference is empty"),
        (lambda v: v["style"].update(extra="x"), r"unexpected field\(s\) \['extra'\]"),
        (lambda v: v["harmlessness"].update(preference=["a"]), "preference is list"),
    ],
)
def test_wrong_types_and_shapes(mutate, message):
    value = _object()
    mutate(value)
    with pytest.raises(PreferenceSetError, match=message):
        preference_set_from_object(value, DIMENSIONS)


@pytest.mark.parametrize("value", [None, "a string", 3, [["style"]], [{"dimension": 1}]])
def test_not_a_preference_set_at_all(value):
    with pytest.raises(PreferenceSetError):
        validate_preference_set(value, DIMENSIONS)


def test_length_limits():
    value = _object()
    value["style"]["description"] = "x" * 31
    limits = Limits(name_max_chars=20, description_max_chars=30)
    with pytest.raises(PreferenceSetError, match="31 characters, more than 30"):
        preference_set_from_object(value, DIMENSIONS, limits)
    assert preference_set_from_object(value, DIMENSIONS)  # no limits: fine


def test_schema_makes_one_preference_per_dimension_structural():
    schema = preference_set_schema(DIMENSIONS, Limits(name_max_chars=20, description_max_chars=40))
    jsonschema.validate(_object(), schema)
    missing = _object()
    del missing["informativeness"]
    too_long = _object()
    too_long["style"]["description"] = "x" * 41
    extra_dimension = {**_object(), "tone": _object()["style"]}
    wrong_type = {**_object(), "style": "Brief"}
    for bad in (missing, too_long, extra_dimension, wrong_type):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, schema)


def test_read_rows_checks_every_row_and_infers_dimensions(tmp_path):
    path = tmp_path / "rows.jsonl"
    write_jsonl(path, [{"id": 1, "preference_set": _list()}, {"id": 2, "preference_set": _list()}])
    rows, dimensions = read_preference_set_rows(path)
    assert dimensions == DIMENSIONS and len(rows) == 2
    broken = copy.deepcopy(_list())[:3]
    write_jsonl(path, [{"id": 1, "preference_set": _list()}, {"id": 2, "preference_set": broken}])
    with pytest.raises(
        ValueError, match=r"rows.jsonl:2: invalid preference_set: missing dimension"
    ):
        read_preference_set_rows(path)
    # Read lazily, a row is checked when it is reached: the good first row comes first.
    rows, dimensions = iter_preference_set_rows(path)
    assert dimensions == DIMENSIONS and next(rows)["id"] == 1
    with pytest.raises(ValueError, match=r"rows.jsonl:2: invalid preference_set"):
        next(rows)


# -- taxonomy and seeds -------------------------------------------------------------------------


def test_taxonomy_is_table_6_in_full():
    taxonomy = load_taxonomy(REPO / "data/taxonomy/seed_taxonomy.yaml")
    assert taxonomy.counts() == {"dimensions": 4, "subdimensions": 18, "keywords": 107}
    assert taxonomy.keys == DIMENSIONS
    names = {d.key: [s.name for s in d.subdimensions] for d in taxonomy.dimensions}
    assert names["background_knowledge"] == [
        "Basic",
        "Novice",
        "Intermediate",
        "Advanced",
        "Expert",
    ]
    assert names["harmlessness"] == ["Accuracy", "Morality", "Trustworthiness"]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({}, "'dimensions' list"),
        ({"dimensions": []}, "has no dimensions"),
        (
            {"dimensions": [{"name": "Style", "key": "style", "subdimensions": []}]},
            "no subdimensions",
        ),
        (
            {
                "dimensions": [
                    {"name": "S", "key": "s", "subdimensions": [{"name": "F", "keywords": []}]}
                ]
            },
            r"subdimensions\[0\]: expected a mapping with a non-empty 'keywords'",
        ),
    ],
)
def test_taxonomy_errors_name_the_place(raw, message):
    with pytest.raises(TaxonomyError, match=message):
        parse_taxonomy(raw)


def test_select_keywords_all_or_k_per_subdimension():
    taxonomy = load_taxonomy(REPO / "data/taxonomy/seed_taxonomy.yaml")
    assert (
        len(select_keywords(taxonomy, tiny_section("expand_seeds", keywords_per_subdimension=None)))
        == 107
    )
    one = select_keywords(
        taxonomy, tiny_section("expand_seeds", keywords_per_subdimension=1, seed=3)
    )
    assert len(one) == 18
    assert len({(item["dimension"], item["subdimension"]) for item in one}) == 18
    again = select_keywords(
        taxonomy, tiny_section("expand_seeds", keywords_per_subdimension=1, seed=3)
    )
    assert one == again


def test_assemble_seed_sets_one_preference_per_dimension():
    preferences = [
        {
            "dimension": d,
            "subdimension": f"{d}-sub{i}",
            "preference": f"p{i}",
            "description": f"{d} {i}.",
        }
        for d in DIMENSIONS
        for i in range(3)
    ]
    sets = assemble_seed_sets(preferences, DIMENSIONS, count=20, seed=5)
    assert len(sets) == 20 and len({s["seed_id"] for s in sets}) == 20
    for seed_set in sets:
        assert (
            validate_preference_set(seed_set["preference_set"], DIMENSIONS)
            == seed_set["preference_set"]
        )
    assert sets == assemble_seed_sets(preferences, DIMENSIONS, count=20, seed=5)
    assert sets != assemble_seed_sets(preferences, DIMENSIONS, count=20, seed=6)
    with pytest.raises(
        ValueError, match=r"no expanded preference for dimension\(s\) \['harmlessness'\]"
    ):
        assemble_seed_sets(preferences[:9], DIMENSIONS, count=2, seed=5)


@pytest.mark.parametrize(
    ("text", "expected", "cut"),
    [
        ("Prefers short answers.", "Prefers short answers.", False),
        ('  "Prefers short answers."\n\nExtra paragraph.', "Prefers short answers.", False),
        ("Description: Prefers short tables.", "Prefers short tables.", False),
        ("Prefers a b. Then more words that go past the limit", "Prefers a b.", True),
        ("Prefers.", None, False),
        ("Prefers: formal", None, False),
        ("Prefers words without any sentence end at all", "Prefers words without any.", True),
        ("Prefers a b alongwordthatneverstopsatall", "Prefers a b.", True),
        ("Prefers alongwordthatneverstopsatall", None, False),
        ("", None, False),
        ("   \n  ", None, False),
        (None, None, False),
    ],
)
def test_clean_description(text, expected, cut):
    assert clean_description(text, max_chars=30) == (expected, cut)


# -- request builders ---------------------------------------------------------------------------


def _seed_sets(n: int = 5) -> list[dict]:
    sets = []
    for i in range(n):
        items = _list()
        items[0] = {**items[0], "preference": f"Seed style {i}"}
        sets.append({"seed_id": f"seed-{i:04d}", "preference_set": items})
    return sets


def test_preference_set_requests_use_a_seeded_example_and_distinct_samples():
    taxonomy = load_taxonomy(REPO / "data/taxonomy/seed_taxonomy.yaml")
    instructions = [
        {
            "instruction_id": f"dsp-{i}",
            "main_source": "m",
            "original_source": "o",
            "instruction": f"Question {i}?",
        }
        for i in range(4)
    ]
    config = tiny_section(
        "preference_sets",
        sets_per_instruction=3,
        name_max_chars=30,
        description_max_chars=100,
        description_max_sentences=1,
    )
    jobs = build_preference_set_requests(instructions, _seed_sets(), taxonomy, config)
    assert len(jobs) == 12
    assert [row["set_index"] for row, _ in jobs[:3]] == [0, 1, 2]
    assert [request.sample_index for _, request in jobs[:3]] == [0, 1, 2]
    for row, request in jobs:
        user = request.message_list()[-1]["content"]
        assert row["instruction"] in user
        seed = next(s for s in _seed_sets() if s["seed_id"] == row["seed_id"])
        assert seed["preference_set"][0]["preference"] in user  # the drawn example is shown
        assert request.schema["required"] == list(DIMENSIONS)
        assert (
            request.schema["properties"]["style"]["properties"]["description"]["maxLength"] == 100
        )
    again = build_preference_set_requests(instructions, _seed_sets(), taxonomy, config)
    assert [row["seed_id"] for row, _ in jobs] == [row["seed_id"] for row, _ in again]
    # An instruction's draws do not depend on the other instructions.
    alone = build_preference_set_requests(instructions[2:3], _seed_sets(), taxonomy, config)
    assert [row["seed_id"] for row, _ in alone] == [row["seed_id"] for row, _ in jobs[6:9]]


# -- system messages ----------------------------------------------------------------------------


def test_example_pool_is_hand_written_and_valid():
    from collections import Counter

    from janus.data.taxonomy import load_taxonomy

    examples = load_examples(REPO / "data/taxonomy/system_message_examples.jsonl", DIMENSIONS)
    assert len(examples) >= 50  # 3.2: "We manually create 50 system messages"
    assert len({example["system"] for example in examples}) == len(examples)
    assert len({example["instruction"] for example in examples}) == len(examples)
    for example in examples:
        assert example["system"].startswith("You ")
        assert len(example["system"].split()) >= 25
    # spread over the taxonomy: every subdimension of every dimension is shown several times
    used = Counter(
        (item["dimension"], item["subdimension"])
        for example in examples
        for item in example["preference_set"]
    )
    taxonomy = load_taxonomy(REPO / "data/taxonomy/seed_taxonomy.yaml")
    for dimension in taxonomy.dimensions:
        for subdimension in dimension.subdimensions:
            assert used[(dimension.key, subdimension.name)] >= 3, (dimension.key, subdimension)


def test_example_pool_errors_name_the_line(tmp_path):
    path = tmp_path / "pool.jsonl"
    write_jsonl(
        path,
        [
            {"instruction": "Hi?", "preference_set": _list(), "system": "You are kind."},
            {"instruction": "Hi?", "preference_set": _list()[:2], "system": "x"},
        ],
    )
    with pytest.raises(ValueError, match=r"pool.jsonl:2: invalid preference_set"):
        load_examples(path, DIMENSIONS)
    write_jsonl(path, [{"instruction": "Hi?", "preference_set": _list(), "system": ""}])
    with pytest.raises(ValueError, match=r"pool.jsonl:1: 'system' must be a non-empty string"):
        load_examples(path, DIMENSIONS)
    write_jsonl(path, [{"preference_set": _list(), "system": "You are kind."}])
    with pytest.raises(ValueError, match=r"pool.jsonl:1: 'instruction' must be a non-empty"):
        load_examples(path, DIMENSIONS)


@pytest.mark.parametrize("with_instruction", [True, False])
def test_system_message_requests_show_seeded_examples_as_turns(with_instruction):
    examples = []
    for i in range(6):
        preference_set = _list()
        preference_set[0] = {**preference_set[0], "preference": f"Example style {i}"}
        examples.append(
            {
                "instruction": f"Example task {i}?",
                "preference_set": preference_set,
                "system": f"You are example number {i}.",
            }
        )
    rows = [
        {
            "instruction_id": "x-1",
            "set_index": k,
            "instruction": "Explain DNS.",
            "preference_set": _list(),
        }
        for k in range(3)
    ]
    config = tiny_section("system_messages", num_examples=3, with_instruction=with_instruction)
    requests = build_system_message_requests(rows, examples, config)
    for request in requests:
        messages = request.message_list()
        assert [m["role"] for m in messages] == ["system"] + ["user", "assistant"] * 3 + ["user"]
        for user, assistant in zip(messages[1:-1:2], messages[2:-1:2], strict=True):
            number = int(assistant["content"].split()[-1].rstrip("."))
            assert f"Example style {number}." in user["content"]  # each example's own preferences
            # each example with its own instruction, or none at all
            assert (f"Example task {number}?" in user["content"]) == with_instruction
            assert "Instruction:" not in user["content"] or with_instruction
        assert "Warn about risky commands." in messages[-1]["content"]
        assert "Example style" not in messages[-1]["content"]
        assert ("Explain DNS." in messages[-1]["content"]) == with_instruction
        assert ("do not answer it" in messages[0]["content"]) == with_instruction
    assert requests == build_system_message_requests(rows, examples, config)
    shown = [tuple(m["content"] for m in r.message_list()[2:-1:2]) for r in requests]
    assert len(set(shown)) > 1  # each preference set draws its own examples
    with pytest.raises(ValueError, match="num_examples is 7 but the pool"):
        build_system_message_requests(
            rows, examples, tiny_section("system_messages", num_examples=7, with_instruction=True)
        )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("You are a guide.", "You are a guide."),
        ("System message: You are a guide.", "You are a guide."),
        ('"You are a guide."', "You are a guide."),
        ("  \n ", None),
        (None, None),
    ],
)
def test_clean_system_message(text, expected):
    assert clean_system_message(text) == expected


@pytest.mark.parametrize(
    ("text", "sentences"),
    [
        ("Prefers short answers.", 1),
        ("Prefers short answers", 1),
        ("Prefers answers of 3.5 lines, e.g. summaries.", 1),
        ("Knows Node.js well. Wants async examples.", 2),
        ('Likes quotes ("be brief.") A lot.', 2),
        ("Wants it fast! Why wait? Now.", 3),
        ("", 0),
    ],
)
def test_count_sentences(text, sentences):
    from janus.data.common import count_sentences

    assert count_sentences(text) == sentences


def test_description_sentence_limit():
    two = "Prefers concise answers. Dislikes filler words."
    value = {d: {"subdimension": "S", "preference": "P", "description": two} for d in DIMENSIONS}
    assert preference_set_from_object(value, DIMENSIONS, Limits(60, 400, 2))
    with pytest.raises(PreferenceSetError, match="description has 2 sentences, more than 1"):
        preference_set_from_object(value, DIMENSIONS, Limits(60, 400, 1))
