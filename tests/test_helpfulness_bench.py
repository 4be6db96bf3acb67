"""Helpfulness benchmarks (Table 3): answers in each tool's own format, from its question files."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from janus.config.helpfulness import AlpacaEvalRun, HelpfulnessSection
from janus.config.params import load_params
from janus.evaluate.alpaca_eval_judge import alpaca_eval_command, run_alpaca_eval
from janus.evaluate.helpfulness_answering import format_conversation
from janus.evaluate.helpfulness_bench import read_answers, read_questions, run_helpfulness
from janus.io import read_json, read_jsonl
from janus.scale import TooFewRows
from tests.sections import tiny_section
from tests.servers.fake_openai import FakeOpenAIServer

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "data/sources/helpfulness_bench"


def _section(**overrides) -> HelpfulnessSection:
    raw = {
        "models": ["m"],
        "benchmarks": {
            "alpaca_eval": {
                "prompts_path": str(SAMPLES / "alpaca_eval.json"),
                "source": {"path": str(SAMPLES / "alpaca_eval.json"), "revision": None, "split": "train"},
                "max_prompts": 2,
            },
            "mt_bench": {
                "prompts_path": str(SAMPLES / "mt_bench.jsonl"),
                "source": {"path": str(SAMPLES / "mt_bench.jsonl"), "revision": None, "split": "train"},
                "max_prompts": 2,
            },
            "arena_hard": {
                "prompts_path": str(SAMPLES / "arena_hard.jsonl"),
                "source": {"path": str(SAMPLES / "arena_hard.jsonl"), "revision": None, "split": "train"},
                "max_prompts": 2,
            },
        },
        "sampling": {"temperature": 1.0, "top_p": 0.9, "repetition_penalty": 1.0, "max_tokens": 5},
        "engine": tiny_section(
            "helpfulness.engine", backend="transformers", batch_size=4, device="cpu"
        ).model_dump(),
        "allow_smaller": False,
        "alpaca_eval_runs": {},
        "seed": 3,
    }
    raw.update(overrides)
    return HelpfulnessSection(**raw)


def _infer(model_dir: Path):
    return tiny_section("infer", models={"m": {"path": str(model_dir)}}, best_of_n={})


def test_bundled_samples_are_in_each_tools_question_format():
    for benchmark, ids in (
        ("alpaca_eval", ["1", "2", "3"]),
        ("mt_bench", ["1", "2", "3"]),
        ("arena_hard", ["janus-sample-1", "janus-sample-2", "janus-sample-3"]),
    ):
        questions, skipped = read_questions(
            benchmark,
            str(SAMPLES / f"{benchmark}.json{'l' if benchmark != 'alpaca_eval' else ''}"),
            "train",
        )
        assert [q.id for q in questions] == ids and skipped == {}
    mt_bench, _ = read_questions("mt_bench", str(SAMPLES / "mt_bench.jsonl"), "train")
    assert all(len(q.turns) == 2 for q in mt_bench)


def test_bad_question_rows_are_skipped_and_counted(tmp_path):
    path = tmp_path / "question.jsonl"
    rows = [
        {"question_id": 81, "category": "writing", "turns": ["a", "b"]},
        {"question_id": "not-a-number", "category": "writing", "turns": ["a"]},
        {"question_id": 82, "category": "math", "turns": []},
        {"question_id": 81, "category": "writing", "turns": ["again"]},
    ]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    questions, skipped = read_questions("mt_bench", str(path), "train")
    assert [q.id for q in questions] == ["81"]
    assert skipped == {"duplicate_id": 1, "question_id_int_parsing": 1, "turns_too_short": 1}


def test_answer_files_follow_each_tools_answer_format(tiny_model_dir, tmp_path):
    params = _section()
    infer = _infer(tiny_model_dir)
    for benchmark in ("alpaca_eval", "mt_bench", "arena_hard"):
        out = tmp_path / benchmark
        metrics = run_helpfulness(infer, params, benchmark, out, tmp_path / f"{benchmark}.json")
        assert metrics["questions"] == 2 and metrics["models"]["m"]["questions"] == 2
        assert read_json(tmp_path / f"{benchmark}.json")["skipped_rows"] == {}

    alpaca = json.loads((tmp_path / "alpaca_eval" / "m.json").read_text())
    assert isinstance(alpaca, list) and len(alpaca) == 2
    assert set(alpaca[0]) == {"instruction", "output", "generator", "dataset"}
    assert alpaca[0]["generator"] == "m" and alpaca[0]["dataset"] == "janus_sample"
    assert alpaca[0]["instruction"].startswith("Suggest three names")

    mt = read_jsonl(tmp_path / "mt_bench" / "model_answer" / "m.jsonl")
    assert [row["question_id"] for row in mt] == [1, 2]
    assert set(mt[0]) == {"question_id", "answer_id", "model_id", "choices", "tstamp"}
    assert mt[0]["model_id"] == "m" and mt[0]["choices"][0]["index"] == 0
    assert len(mt[0]["choices"][0]["turns"]) == 2  # both turns answered
    assert all(isinstance(turn, str) for turn in mt[0]["choices"][0]["turns"])
    assert metrics_turns(tmp_path / "mt_bench.json") == 4

    arena = read_jsonl(tmp_path / "arena_hard" / "model_answer" / "m.jsonl")
    assert arena[0]["question_id"] == "janus-sample-1"
    assert set(arena[0]["choices"][0]["turns"][0]) == {"content"}
    # the row types read every file back unchanged
    for benchmark, path in (
        ("alpaca_eval", tmp_path / "alpaca_eval" / "m.json"),
        ("mt_bench", tmp_path / "mt_bench" / "model_answer" / "m.jsonl"),
        ("arena_hard", tmp_path / "arena_hard" / "model_answer" / "m.jsonl"),
    ):
        assert len(read_answers(path, benchmark)) == 2


def metrics_turns(path: Path) -> int:
    return read_json(path)["models"]["m"]["turns"]


def test_an_unchanged_rerun_writes_identical_answer_files(tiny_model_dir, tmp_path):
    params, infer = _section(), _infer(tiny_model_dir)
    first = tmp_path / "a"
    second = tmp_path / "b"
    run_helpfulness(infer, params, "arena_hard", first, tmp_path / "a.json")
    run_helpfulness(infer, params, "arena_hard", second, tmp_path / "b.json")
    name = Path("model_answer") / "m.jsonl"
    assert (first / name).read_bytes() == (second / name).read_bytes()


def test_second_turn_sees_the_first_question_and_answer(tiny_model_dir):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    text = format_conversation(tokenizer, [("Q1", "A1"), ("Q2", None)], "mistral")
    assert text == f"[INST]Q1 [/INST]A1{tokenizer.eos_token}[INST]Q2 [/INST]"
    chat = format_conversation(tokenizer, [("Q1", "A1"), ("Q2", None)], "chat_template")
    assert chat.index("Q1") < chat.index("A1") < chat.index("Q2")


def test_endpoint_models_answer_turn_by_turn_with_the_history(monkeypatch, tmp_path):
    monkeypatch.setenv("FAKE_KEY", "k")
    server = FakeOpenAIServer().start()
    try:
        infer = tiny_section(
            "infer",
            models={},
            best_of_n={},
            endpoints={
                "api": tiny_section(
                    "llm.teacher",
                    backend="openai",
                    model="fake",
                    base_url=server.base_url,
                    api_key_env="FAKE_KEY",
                    max_retries=0,
                    timeout_s=5,
                )
            },
        )
        params = _section(models=["api"])
        run_helpfulness(infer, params, "mt_bench", tmp_path / "mt", tmp_path / "mt.json")
        rows = read_jsonl(tmp_path / "mt" / "model_answer" / "api.jsonl")
        first, second = rows[0]["choices"][0]["turns"]
        assert first.startswith("echo:") and "four-line poem" in first
        assert "letter L" in second
        turn_two = [b for b in server.bodies if "letter L" in b["messages"][-1]["content"]][0]
        assert [m["role"] for m in turn_two["messages"]] == ["user", "assistant", "user"]
        assert turn_two["messages"][1]["content"] == first
    finally:
        server.stop()


def test_a_sample_file_is_refused_before_any_model_loads(tmp_path):
    # The model path does not exist: reaching the engine would fail differently.
    infer = tiny_section("infer", models={"m": {"path": str(tmp_path / "no-model")}}, best_of_n={})
    params = _section()
    params.benchmarks["mt_bench"].max_prompts = 80
    with pytest.raises(
        TooFewRows,
        match=r"mt_bench.jsonl: holds 3 valid mt_bench prompts, but "
        r"params ask for 80",
    ):
        run_helpfulness(infer, params, "mt_bench", tmp_path / "out", tmp_path / "m.json")
    assert not (tmp_path / "out").exists()


def test_the_paper_profile_refuses_the_bundled_samples(monkeypatch, tmp_path):
    from janus.data.inputs import make_helpfulness_prompts

    monkeypatch.chdir(REPO)
    params = load_params(REPO / "profiles/paper.yaml")
    assert params.helpfulness is not None and not params.helpfulness.allow_smaller
    # the input stage copies the bundled sample the paper profile names (still in place) ...
    config = params.helpfulness.benchmarks["alpaca_eval"]
    made = tmp_path / "alpaca_eval.jsonl"
    make_helpfulness_prompts("alpaca_eval", config.source, made)
    benchmarks = {**params.helpfulness.benchmarks,
                  "alpaca_eval": config.model_copy(update={"prompts_path": str(made)})}  # fmt: skip
    section = params.helpfulness.model_copy(update={"benchmarks": benchmarks})
    # ... and the helpfulness stage refuses it before any model loads
    with pytest.raises(TooFewRows, match=r"alpaca_eval.jsonl: holds 3 .* ask for 805"):
        run_helpfulness(params.infer, section, "alpaca_eval", "unused", "unused.json")


def test_alpaca_eval_output_matches_the_documented_model_outputs_format(tiny_model_dir, tmp_path):
    """AlpacaEval reads `model_outputs` with pandas.read_json and names the model by the
    `generator` column (alpaca_eval.utils.load_or_convert_to_dataframe / get_generator_name):
    a JSON list of records with instruction, output, generator."""
    import pandas as pd

    run_helpfulness(
        _infer(tiny_model_dir), _section(), "alpaca_eval", tmp_path, tmp_path / "x.json"
    )
    frame = pd.read_json(tmp_path / "m.json")
    assert list(frame.columns[:3]) == ["instruction", "output", "generator"]
    assert frame["generator"].unique().tolist() == ["m"] and len(frame) == 2


def test_alpaca_eval_judge_runs_the_tool_and_reads_its_leaderboard(monkeypatch, tmp_path):
    monkeypatch.setenv("JUDGE_KEY", "secret")
    answers = tmp_path / "m.json"
    answers.write_text(json.dumps([{"instruction": "i", "output": "o", "generator": "m"}]))
    run = AlpacaEvalRun(
        model="m", annotators_config="weighted_alpaca_eval_gpt4_turbo", reference_outputs=None
    )
    judge = tiny_section(
        "llm.judge",
        backend="openai",
        model="gpt-4-turbo",
        base_url="http://127.0.0.1:9/v1",
        api_key_env="JUDGE_KEY",
    )
    seen = {}

    def fake_tool(command, check, env):  # writes what `alpaca_eval evaluate` writes
        seen.update(command=command, env=env)
        out = Path(command[command.index("--output_path") + 1]) / run.annotators_config
        out.mkdir(parents=True)
        with (out / "leaderboard.csv").open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(
                [
                    "",
                    "win_rate",
                    "standard_error",
                    "n_total",
                    "avg_length",
                    "length_controlled_winrate",
                    "lc_standard_error",
                    "mode",
                ]
            )
            writer.writerow(["m", "27.8", "1.3", "805", "1500", "26.9", "0.9", "community"])

    metrics = run_alpaca_eval(
        run, judge, answers, tmp_path / "out", tmp_path / "ae.json", runner=fake_tool
    )
    assert metrics["lc_win_rate"] == 26.9 and metrics["win_rate"] == 27.8
    assert metrics["lc_standard_error"] == 0.9 and metrics["n_total"] == 805
    assert read_json(tmp_path / "ae.json") == metrics
    assert seen["env"]["OPENAI_API_KEY"] == "secret"
    assert seen["env"]["OPENAI_API_BASE"] == "http://127.0.0.1:9/v1"
    assert "secret" not in json.dumps(metrics) and "secret" not in " ".join(seen["command"])
    assert alpaca_eval_command(run, answers, tmp_path)[3:5] == ["evaluate", "--model_outputs"]
