"""The Multifaceted Bench: row validation in the published layout, the published bench imported
(read, written and read back unchanged), instruction selection (training overlap, duplicates
across benchmarks, sampling), and a whole build against a scripted teacher behind the OpenAI
wire format (the paper's teacher is GPT-4-Turbo)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from servers.scripted_chat import (
    ScriptedChatServer,
    request_schema,
    system_message,
    user_message,
)

from janus.config.params import parse_params
from janus.evaluate.bench.build import BenchInputs, build_bench
from janus.evaluate.bench.columns import UNMAPPED, SourceColumns
from janus.evaluate.bench.generation import rubrics_from_object
from janus.evaluate.bench.selection import normalize_instruction, select_instructions
from janus.evaluate.rows import BenchRow, PublishedBenchRow, read_bench, validate_rows
from janus.io import RUNTIME_DIR, read_json, read_jsonl, write_jsonl
from tests.sections import tiny_section

REPO = Path(__file__).resolve().parents[1]
DIMENSIONS = ("style", "background_knowledge", "informativeness", "harmlessness")


COLUMNS_FILE = "data/taxonomy/bench_source_columns.yaml"
SAMPLE = "data/sources/bench/multifaceted_bench_sample.jsonl"


def _rubric(criteria="Is it concise?", drop=None, **levels):
    descriptions = {str(i): f"level {i}" for i in range(1, 6)}
    descriptions.update(levels)
    if drop:
        del descriptions[drop]
    return {"criteria": criteria, "score_descriptions": descriptions}


def _row(**override):
    row = {
        "id": "koala-abc-0",
        "instruction_id": "koala-abc",
        "source": "koala",
        "benchmark": "koala",
        "system": "You are a concise assistant.",
        "prompt": "How do I boil an egg?",
        "reference_answer": "Boil it for nine minutes.",
        "rubrics": [_rubric() for _ in DIMENSIONS],
        "preference_set": None,
    }
    row.update(override)
    return row


def _problems(row) -> dict:
    return dict(validate_rows(BenchRow, [row])[1])


# ---------------------------------------------------------------------------------------------
# validation
# ---------------------------------------------------------------------------------------------


def test_a_complete_row_is_valid():
    assert _problems(_row()) == {}


@pytest.mark.parametrize(
    ("row", "key"),
    [
        (_row(reference_answer="  "), "empty_text"),
        ({k: v for k, v in _row().items() if k != "system"}, "missing_field"),
        (_row(rubrics=[]), "empty_list"),
        (_row(rubrics=[_rubric(), _rubric(**{"3": ""})]), "bad_score_level"),
        (_row(rubrics=[_rubric(drop="5")]), "missing_score_level"),
        (_row(rubrics=[_rubric(criteria=None)]), "wrong_type"),
        (_row(rubrics=["not a rubric"]), "wrong_type"),
        (_row(rubrics=[{**_rubric(), "score1_description": "old layout"}]), "unexpected_field"),
        ("just text", "wrong_type"),
    ],
)
def test_broken_rows_say_what_is_missing(row, key):
    assert _problems(row) == {key: 1}


def test_read_bench_drops_and_counts_broken_rows(tmp_path):
    path = tmp_path / "bench.jsonl"
    write_jsonl(
        path,
        [
            _row(),
            _row(id="koala-abc-1", rubrics=[_rubric(), _rubric(drop="2")]),
            _row(id="koala-abc-2", reference_answer=""),
            _row(),  # the same id again
        ],
    )
    rows, dropped = read_bench(path)
    assert [row["id"] for row in rows] == ["koala-abc-0"]
    assert dropped == {"missing_score_level": 1, "empty_text": 1, "duplicate_id": 1}


def test_rubrics_answer_with_a_blank_level_is_caught():
    answer = {dimension: _rubric() for dimension in DIMENSIONS}
    rubrics, problems = rubrics_from_object(answer, DIMENSIONS)
    assert len(rubrics) == 4 and problems == []
    assert rubrics[0] == _rubric()  # the published layout, keys "1".."5"
    answer["harmlessness"]["score_descriptions"]["4"] = "   "
    rubrics, problems = rubrics_from_object(answer, DIMENSIONS)
    assert len(rubrics) == 3 and len(problems) == 1
    assert problems[0].startswith("bad_score_level: rubric harmlessness")


# ---------------------------------------------------------------------------------------------
# the published bench
# ---------------------------------------------------------------------------------------------


def _published(**override):
    row = {k: v for k, v in _row().items() if k not in ("id", "instruction_id", "benchmark")}
    row["source"] = "Alpha-nlg (art)"
    del row["preference_set"]
    row.update(override)
    return row


def test_the_source_columns_file_maps_fine_grained_labels():
    columns = SourceColumns.load(REPO / COLUMNS_FILE)
    assert columns.column("Alpha-nlg (art)") == "flask"
    assert columns.column("Self-Instruct") == "self_instruct"  # case and punctuation ignored
    assert columns.column("mt_bench") == "mt_bench"
    assert columns.column("Some FLASK sub-dataset") == UNMAPPED  # default: null


def test_published_rows_are_imported_with_stable_ids_and_bad_rows_counted(tmp_path, monkeypatch):
    rows = [
        _published(),
        _published(system="You are a verbose assistant."),  # same instruction, other system
        # the older `rubric` column name
        _published(system="You are a poet.", rubric=[_rubric()], rubrics=None),
        _published(source="koala", rubrics=[_rubric(drop="3")]),
        _published(source="koala", prompt=""),
        {k: v for k, v in _published(source="self-instruct").items() if k != "reference_answer"},
        _published(),  # the first row again
        _published(source="Anli (r1)"),  # a label the mapping file does not name
    ]
    del rows[2]["rubrics"]
    write_jsonl(tmp_path / "published.jsonl", rows)
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    raw["bench"].update(published="published.jsonl")
    params = parse_params(raw)
    (tmp_path / "data/taxonomy").mkdir(parents=True)
    (tmp_path / COLUMNS_FILE).write_text((REPO / COLUMNS_FILE).read_text())
    inputs = BenchInputs(
        (), tmp_path / "collection.jsonl", Path("unused"), Path("unused"), Path("-")
    )
    write_jsonl(inputs.collection, [{"system": "You are a verbose assistant."}])
    bench, similarity, metrics = build_bench(params, inputs, root=tmp_path)

    assert metrics["published_rows"] == 8
    assert metrics["dropped"] == {
        "missing_score_level": 1,
        "empty_text": 1,
        "missing_field": 1,
        "duplicate_row": 1,
    }
    assert metrics["unmapped_sources"] == {"Anli (r1)": 1}
    assert metrics["rows"] == len(bench) == 4
    assert metrics["rows_per_source"] == {"flask": 3, UNMAPPED: 1}
    assert metrics["instructions"] == 1  # one prompt, three system messages (+ one unmapped)
    assert len({row["id"] for row in bench}) == 4
    assert all(re.fullmatch(r"mb-[0-9a-f]{16}", row["id"]) for row in bench)
    assert bench[2]["rubrics"] == [_rubric()]  # `rubric` read as `rubrics`
    # the id depends on content only: the same rows in another order keep their ids
    write_jsonl(tmp_path / "published.jsonl", list(reversed(rows)))
    again, _, _ = build_bench(params, inputs, root=tmp_path)
    assert {row["id"]: row for row in again} == {row["id"]: row for row in bench}
    assert similarity[1]["rouge_l_max"] == pytest.approx(1.0)


def test_published_layout_reads_writes_and_reads_back_unchanged(tmp_path):
    original = list(read_jsonl(REPO / SAMPLE))
    valid, dropped, _ = validate_rows(PublishedBenchRow, original)
    assert not dropped and len(valid) == len(original) == 4
    for row, model in zip(original, valid, strict=True):
        dumped = model.model_dump(mode="json", by_alias=True, exclude_none=True)
        assert dumped == row  # every column, every level key "1".."5", unchanged
    # our own bench file: written, read back, written again, byte for byte
    bench_rows = [
        BenchRow(
            id=f"x-{i}", instruction_id="x", benchmark="flask", **model.model_dump(by_alias=True)
        ).dump()
        for i, model in enumerate(valid)
    ]
    write_jsonl(tmp_path / "a.jsonl", bench_rows)
    read, dropped = read_bench(tmp_path / "a.jsonl")
    assert not dropped and read == bench_rows
    write_jsonl(tmp_path / "b.jsonl", read)
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()


# ---------------------------------------------------------------------------------------------
# instruction selection
# ---------------------------------------------------------------------------------------------


def _sources(tmp_path: Path) -> dict:
    files = {
        "alpaca_eval": [
            {
                "prompt": "Name three  primary colours."
            },  # in the training data (case, spaces differ)
            {"prompt": "Write a limerick about a cat."},  # also in koala: excluded from both
            {"prompt": "Why is the sea salty?"},
            {"prompt": "Why is the sea salty?"},  # duplicate within the source
            {"prompt": "How do tides work?"},
            {"text": "no prompt column"},  # a bad row
        ],
        "koala": [
            {"prompt": "write a LIMERICK about a cat."},
            {"prompt": "what should i cook tonight"},
            {"prompt": "fix my bike chain"},
        ],
        "mt_bench": [
            {"turns": ["Plan a birthday party for a 7-year-old.", "Now make it cheaper."]},
            {"turns": ["Explain inflation to a child."]},
        ],
    }
    config = {}
    for name, rows in files.items():
        write_jsonl(tmp_path / f"{name}.jsonl", rows)
        config[name] = {"path": f"{name}.jsonl"}
    config["mt_bench"]["prompt_field"] = "turns"
    return config


def test_selection_excludes_training_overlap_and_cross_benchmark_duplicates(tmp_path):
    # every pool is smaller than 5: allow_smaller runs on what is there (janus.scale)
    config = tiny_section(
        "bench", sources=_sources(tmp_path), instructions_per_source=5, allow_smaller=True
    )
    training = {normalize_instruction("name three primary colours.")}
    selected, metrics = select_instructions(config, training, tmp_path)
    prompts = {row["instruction"] for row in selected}
    assert "Name three  primary colours." not in prompts
    assert not any("limerick" in prompt.lower() for prompt in prompts)
    assert prompts == {
        "Why is the sea salty?",
        "How do tides work?",
        "what should i cook tonight",
        "fix my bike chain",
        "Plan a birthday party for a 7-year-old.",  # the first turn of a multi-turn item
        "Explain inflation to a child.",
    }
    assert metrics["alpaca_eval"] == {
        "rows": 6,
        "bad_rows": 1,
        "multi_turn_first_kept": 0,
        "duplicates": 1,
        "train_overlap": 1,
        "cross_source_duplicates": 1,
        "pool": 2,
        "sampled": 2,
    }
    assert metrics["koala"]["cross_source_duplicates"] == 1
    assert metrics["mt_bench"]["multi_turn_first_kept"] == 1
    assert all(
        re.fullmatch(rf"{row['source']}-[0-9a-f]{{12}}", row["instruction_id"]) for row in selected
    )


def test_sampling_is_seeded_per_benchmark(tmp_path):
    sources = _sources(tmp_path)
    config = tiny_section("bench", sources=sources, instructions_per_source=1, seed=3)
    first, _ = select_instructions(config, set(), tmp_path)
    again, _ = select_instructions(config, set(), tmp_path)
    assert first == again
    # dropping a benchmark leaves the others' samples as they were
    without_koala = tiny_section(
        "bench",
        sources={k: v for k, v in sources.items() if k != "koala"},
        instructions_per_source=1,
        seed=3,
    )
    fewer, _ = select_instructions(without_koala, set(), tmp_path)
    assert fewer == [row for row in first if row["source"] != "koala"]


def test_unknown_or_disabled_sources_are_config_errors():
    with pytest.raises(ValueError, match="unknown bench source"):
        tiny_section("bench", sources={"alpacaeval": {"path": "x.jsonl"}})
    with pytest.raises(ValueError, match="no bench source is enabled"):
        tiny_section("bench", sources={"koala": {"path": "x.jsonl", "enabled": False}})


# ---------------------------------------------------------------------------------------------
# a whole bench against a scripted teacher
# ---------------------------------------------------------------------------------------------

SHARED_SYSTEM = "You are a calm guide who explains things with one clear picture."


def _teacher(request: dict, times: int) -> str:
    """Answers by what a request asks for (its schema, its system message), not by the wording of
    the data stages' prompts: preference sets and rubrics are schema requests; the reference
    answer is asked under the system message this teacher wrote; anything else asks for one."""
    schema = request_schema(request) or {}
    user = user_message(request)
    if "style" in schema.get("properties", {}) and "criteria" not in json.dumps(schema):
        return json.dumps(
            {
                dimension: {
                    "subdimension": "Clarity",
                    "preference": "Plain",
                    "description": f"Plain words about {dimension}.",
                }
                for dimension in DIMENSIONS
            }
        )
    if schema:  # the rubrics (our own template: the instruction follows "Instruction:")
        instruction = user.split("Instruction:\n", 1)[1].split("\n", 1)[0]
        rubrics = {d: _rubric(f"Does it follow the {d} preference?") for d in DIMENSIONS}
        if "sea" in instruction:
            rubrics["style"]["score_descriptions"]["3"] = " "  # schema-valid, but no level 3
        if "cook" in instruction:
            del rubrics["informativeness"]["score_descriptions"]["4"]  # schema-invalid
        return json.dumps(rubrics)
    if system_message(request) == SHARED_SYSTEM:
        return f"A reference answer to: {user}"
    return (
        f"System message: {SHARED_SYSTEM}"  # the label is the kind of noise the data stage cleans
    )


@pytest.fixture
def bench_inputs(tmp_path) -> BenchInputs:
    write_jsonl(tmp_path / "instructions.jsonl", [{"instruction": "Name three primary colours."}])
    write_jsonl(
        tmp_path / "collection.jsonl",
        [
            {"system": SHARED_SYSTEM, "prompt": "Describe the moon."},
            {"system": "You are a terse mathematician.", "prompt": "What is 2+2?"},
        ],
    )
    write_jsonl(
        tmp_path / "seeds.jsonl",
        [
            {
                "seed_id": "seed-0000",
                "preference_set": [
                    {
                        "dimension": d,
                        "subdimension": "Clarity",
                        "preference": "Plain",
                        "description": "Plain words.",
                    }
                    for d in DIMENSIONS
                ],
            }
        ],
    )
    return BenchInputs(
        training_instructions=(tmp_path / "instructions.jsonl",),
        collection=tmp_path / "collection.jsonl",
        seed_preferences=tmp_path / "seeds.jsonl",
        taxonomy=REPO / "data/taxonomy/seed_taxonomy.yaml",
        system_message_examples=REPO / "data/taxonomy/system_message_examples.jsonl",
    )


def test_build_bench_end_to_end(tmp_path, bench_inputs, monkeypatch):
    monkeypatch.setenv("JANUS_SCRIPTED_CHAT_KEY", "sk-test")
    with ScriptedChatServer(_teacher) as server:
        raw = yaml.safe_load((REPO / "params.yaml").read_text())
        raw["llm"] = {**raw.get("llm", {}), "teacher": server.llm_config(max_invalid_retries=1)}
        source = {"revision": None, "split": "train", "prompt_field": "prompt", "enabled": True}
        raw["bench"] = {
            "published": None,
            "published_revision": None,
            "published_split": "train",
            "source_columns_path": str(REPO / COLUMNS_FILE),
            "allow_smaller": False,
            "max_failed_fraction": 1.0,  # the scripted teacher breaks some answers on purpose
            "sources": {
                "alpaca_eval": {"path": "alpaca_eval.jsonl", **source},
                "koala": {"path": "koala.jsonl", **source},
            },
            "instructions_per_source": 2,
            "system_messages_per_instruction": 2,
            "num_system_message_examples": 1,
            "preference_set_generation": {"temperature": 1.0, "top_p": 1.0, "max_tokens": 768},
            "system_message_generation": {"temperature": 1.0, "top_p": 1.0, "max_tokens": 512},
            "reference_generation": {"temperature": 1.0, "top_p": 1.0, "max_tokens": 2048},
            "rubric_generation": {"temperature": 1.0, "top_p": 1.0, "max_tokens": 1536},
            "preference_name_max_chars": 60,
            "preference_description_max_chars": 300,
            "rubric_max_chars": 300,
            "train_test_max_train_messages": None,
            "seed": 42,
        }
        _sources(tmp_path)
        params = parse_params(raw)
        rows, similarity, metrics = build_bench(params, bench_inputs, root=tmp_path)
        again, _, metrics_again = build_bench(params, bench_inputs, root=tmp_path)

    # alpaca: "sea" (rubric without level 3) and "tides"; koala: "cook" (invalid rubric) and "bike"
    assert metrics["requested_rows"] == 8
    assert metrics["dropped"] == {"failed_rubrics": 2, "bad_score_level": 2}
    assert {row["prompt"] for row in rows} == {"How do tides work?", "fix my bike chain"}
    assert metrics["rows"] == len(rows) == 4 and metrics["instructions"] == 2
    assert metrics["rows_per_source"] == {"alpaca_eval": 2, "koala": 2}
    for row in rows:
        assert list(row)[:2] == ["id", "instruction_id"]
        assert row["id"] in {f"{row['instruction_id']}-0", f"{row['instruction_id']}-1"}
        assert _problems(row) == {}
        assert row["benchmark"] == row["source"]  # our own bench: the benchmark is the source
        assert set(row["rubrics"][0]["score_descriptions"]) == {"1", "2", "3", "4", "5"}
        assert [p["dimension"] for p in row["preference_set"]] == list(DIMENSIONS)
        assert len(row["rubrics"]) == 4
        assert (
            row["rubrics"][1]["criteria"] == "Does it follow the background_knowledge preference?"
        )
        assert row["system"] == SHARED_SYSTEM  # the "System message:" label is cleaned off
        assert row["reference_answer"].startswith("A reference answer to: ")
    # Figure 5: every bench system message is also a training one here
    assert [item["id"] for item in similarity] == [row["id"] for row in rows]
    assert all(item["rouge_l_max"] == pytest.approx(1.0) for item in similarity)
    assert metrics["train_test_rouge_l"]["mean_of_max"] == pytest.approx(1.0)
    assert metrics["train_test_rouge_l"]["train_messages"] == 2
    # a rerun is the same bench: every item that succeeded comes from the cache, and only the
    # two failed rubric items are asked again (a fresh round; the scripted teacher breaks them
    # the same way, so they fail again and the bench is unchanged)
    assert again == rows
    record = read_json(RUNTIME_DIR / "bench.llm.json")  # this run's record
    assert record["failed_items_asked_again"] == 1 and record["requests"] == 2
    assert metrics_again["dropped"] == metrics["dropped"]


def test_train_test_maxima_are_the_same_in_worker_processes(monkeypatch):
    import janus.evaluate.diversity as diversity

    texts = ["you are a calm tutor", "you are a terse critic of films", "answer in haiku"]
    pool = ["you are a calm guide", "a terse critic", "write every answer as a haiku", "hello"]
    sequential = diversity.max_rouge_l_each(texts, pool)
    monkeypatch.setattr(diversity, "_PARALLEL_PAIRS", 0)
    monkeypatch.setattr(diversity.os, "cpu_count", lambda: 2)
    assert diversity.max_rouge_l_each(texts, pool) == sequential
    assert sequential == [max(diversity.rouge_l(p, t) for p in pool) for t in texts]
    assert all(0 < value < 1 for value in sequential)
