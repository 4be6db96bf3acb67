"""The judge: the strict parser on a table of real-looking answers, and whole judging runs against
a scripted judge behind a loopback OpenAI-compatible server (text and structured formats; the
client's re-asks, CIs, position flips, steerability) and against the local backend
(schema-constrained decoding with the tiny model)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from servers.scripted_chat import ScriptedChatServer, user_message

from janus.config.params import parse_params
from janus.evaluate.judge.analysis import GRADING_RECORD
from janus.evaluate.judge.grading import resolve_format, sample_index
from janus.evaluate.judge.parser import (
    JudgeParseError,
    parse_absolute_object,
    parse_absolute_text,
    parse_pairwise_object,
    parse_pairwise_text,
)
from janus.evaluate.judge.run import run_judge
from janus.evaluate.judge.scores import score_judge_outputs
from janus.io import RUNTIME_DIR, read_json, write_json, write_jsonl
from tests.sections import tiny_section

REPO = Path(__file__).resolve().parents[1]

# ---------------------------------------------------------------------------------------------
# the parser
# ---------------------------------------------------------------------------------------------

PARSED = [
    ("Feedback: The response keeps a formal tone throughout. [RESULT] 4", 4),
    ("Feedback: Good use of examples.\n[RESULT] 5\n", 5),
    ("Feedback: Mostly on point. [RESULT] 3.", 3),
    ("Feedback: Adequate. [RESULT]2   \n\n", 2),
    # a marker quoted earlier in the feedback does not count: the last one does
    (
        "Feedback: A lenient grader might write [RESULT] 2 here, but the depth is there. [RESULT] 4",
        4,
    ),
    ("Feedback: Score 3 for tone at first sight; the reasoning lifts it. [RESULT] 5", 5),
    ("The response ignores the novice audience entirely. [RESULT] 1", 1),
    # the verdict forms the reference parsers accept after the final marker
    ("Feedback: Clear and friendly. [RESULT] (4)", 4),
    ("Feedback: Clear and friendly. [RESULT]: 4", 4),
    ("Feedback: Clear and friendly. [RESULT] 4/5", 4),
    ("Feedback: Clear and friendly. [RESULT] 4 out of 5", 4),
    ("Feedback: Clear and friendly. [RESULT] (4/5).", 4),
    ("Feedback: Clear and friendly. [RESULT] **2**", 2),
    ("Feedback: It reads as a 2/5 draft at first, yet [RESULT] 2 [RESULT] 3 out of 5", 3),
]

REJECTED = [
    ("Feedback: Follows the preference well. Score 3", "no_marker"),
    ("Feedback: Follows the preference well. Score: 4/5", "no_marker"),
    ("Feedback: Nearly perfect. [RESULT] 4.5", "not_an_integer"),
    ("Feedback: Nearly perfect. [RESULT] 4,5", "not_an_integer"),
    ("Feedback: Exceptional. [RESULT] 6", "out_of_range"),
    ("Feedback: Nothing right. [RESULT] 0", "out_of_range"),
    ("Feedback: Nothing right. [RESULT] -1", "out_of_range"),
    ("Feedback: Good. [RESULT] 4/10", "wrong_scale"),
    ("Feedback: Good. [RESULT] 8 out of 10", "wrong_scale"),
    ("Feedback: Good. [RESULT] 4.5/5", "not_an_integer"),
    ("Feedback: Good. [RESULT] four", "no_score"),
    ("Feedback: Good. [RESULT] Excellent", "no_score"),
    ("Feedback: Good. [RESULT] 4\nI hope this evaluation helps!", "extra_text"),
    ("Feedback: I would give [RESULT] 4 but maybe 3 after rereading the rubric", "extra_text"),
    ("Feedback: Good. [RESULT] Score 3", "extra_text"),
    ("Feedback: Good. [RESULT] 4 (a 5 would need examples)", "extra_text"),
    ("Feedback: Good. [RESULT]", "no_score"),
    ("Feedback: Good. [result] 4", "no_marker"),
    ("", "empty_answer"),
    ("   \n", "empty_answer"),
    (None, "empty_answer"),
]


@pytest.mark.parametrize(("text", "score"), PARSED)
def test_text_answers_give_the_score_after_the_last_marker(text, score):
    judgement = parse_absolute_text(text)
    assert judgement.verdict == score
    assert isinstance(judgement.verdict, int)
    assert not judgement.feedback.lower().startswith("feedback:")
    assert judgement.feedback  # the text before the last marker


@pytest.mark.parametrize(("text", "reason"), REJECTED)
def test_text_answers_without_a_clean_integer_score_are_rejected(text, reason):
    with pytest.raises(JudgeParseError) as error:
        parse_absolute_text(text)
    assert error.value.reason == reason


def test_feedback_keeps_an_earlier_marker_but_not_the_final_one():
    judgement = parse_absolute_text("Feedback: Not [RESULT] 2 yet. [RESULT] 3")
    assert judgement.feedback == "Not [RESULT] 2 yet."
    assert judgement.verdict == 3


@pytest.mark.parametrize(
    ("text", "verdict"),
    [
        ("Feedback: A follows the rubric. [RESULT] A", "A"),
        ("Feedback: B is better. [RESULT] B.", "B"),
        ("Feedback: Both weak. [RESULT] tie\n", "TIE"),
        ("Feedback: Earlier I said [RESULT] A, but [RESULT] B", "B"),
    ],
)
def test_pairwise_text_verdicts(text, verdict):
    assert parse_pairwise_text(text).verdict == verdict


@pytest.mark.parametrize(
    "text", ["Feedback: hmm [RESULT] C", "[RESULT] A or B", "Response A is better.", "[RESULT] 1"]
)
def test_pairwise_text_without_a_verdict_is_rejected(text):
    with pytest.raises(JudgeParseError):
        parse_pairwise_text(text)


@pytest.mark.parametrize(
    ("obj", "reason"),
    [
        ({"feedback": "ok", "score": 4.0}, "not_an_integer"),
        ({"feedback": "ok", "score": True}, "not_an_integer"),
        ({"feedback": "ok", "score": "4"}, "not_an_integer"),
        ({"feedback": "ok", "score": 7}, "out_of_range"),
        ({"feedback": "ok"}, "no_score"),
        ({"feedback": 3, "score": 3}, "bad_feedback"),
        ("Feedback: ok [RESULT] 3", "not_an_object"),
    ],
)
def test_structured_answers_are_checked_too(obj, reason):
    with pytest.raises(JudgeParseError) as error:
        parse_absolute_object(obj)
    assert error.value.reason == reason


def test_structured_answers_that_are_valid():
    assert parse_absolute_object({"feedback": " fine ", "score": 2}).verdict == 2
    assert parse_pairwise_object({"feedback": "x", "winner": "tie"}).verdict == "TIE"
    with pytest.raises(JudgeParseError):
        parse_pairwise_object({"feedback": "x", "winner": "C"})


# ---------------------------------------------------------------------------------------------
# judging runs against a scripted judge behind the OpenAI wire format
# ---------------------------------------------------------------------------------------------


def _between(text: str, start: str, end: str) -> str:
    return text.split(start, 1)[1].split(end, 1)[0].strip()


def _rubric(criteria: str) -> dict:
    return {"criteria": criteria, "score_descriptions": {str(i): f"level {i}" for i in range(1, 6)}}


SYSTEM = "You are a patient tutor for beginners."


def _bench_row(item_id: str, source: str, criteria=("TONE", "DEPTH")) -> dict:
    return {
        "id": item_id,
        "instruction_id": item_id.rsplit("-", 1)[0],
        "source": source,
        "benchmark": source,
        "system": SYSTEM,
        "prompt": f"Explain recursion ({item_id.rsplit('-', 1)[0]}).",
        "reference_answer": "Recursion is a function calling itself on a smaller input.",
        "rubrics": [_rubric(c) for c in criteria],
        "preference_set": None,
    }


def _write_fixture(
    tmp_path: Path, responses: dict[str, dict[tuple[str, str], str]], bench: list | None = None
) -> tuple[Path, Path]:
    bench = bench or [
        _bench_row("koala-a-0", "koala"),
        _bench_row("koala-a-1", "koala"),
        _bench_row("flask-b-0", "flask"),
    ]
    # a row whose rubric misses a score level: dropped and counted, never judged
    broken = _bench_row("flask-c-0", "flask")
    del broken["rubrics"][1]["score_descriptions"]["3"]
    bench_path = tmp_path / "bench.jsonl"
    write_jsonl(bench_path, [*bench, broken])
    responses_dir = tmp_path / "responses"
    for model, answers in responses.items():
        write_jsonl(
            responses_dir / f"{model}.jsonl",
            [
                {
                    "id": item_id,
                    "model": model,
                    "source": "x",
                    "condition": condition,
                    "system": None,
                    "prompt": "p",
                    "response": text,
                }
                for (item_id, condition), text in answers.items()
            ],
        )
    return bench_path, responses_dir


# The judge settings these tests start from (each test overrides what it is about).
JUDGE_BASE = {
    "max_failed_fraction": 1.0,  # these tests count unparsed answers
    "repeats": 3,
    "format": "auto",
    "include_system_message": False,
    "steerability_repeats": 0,
    "feedback_max_chars": 1000,
    "generation": {"temperature": 1.0, "top_p": 1.0, "max_tokens": 1024},
    "pairwise": [],
    "pairwise_condition": "system",
    "seed": 42,
    "judges": ["judge"],
}


def _params(models: list[str], judge: dict, llm_judge: dict, llm_open_judge: dict | None = None):
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    raw["llm"] = {**raw.get("llm", {}), "judge": {**raw["llm"]["judge"], **llm_judge}}
    if llm_open_judge is not None:
        raw["llm"]["open_judge"] = {**raw["llm"]["open_judge"], **llm_open_judge}
    infer = tiny_section("infer", models={m: {"path": f"checkpoints/{m}"} for m in models})
    raw["infer"] = infer.model_copy(update={"best_of_n": {}}).model_dump(mode="json")
    raw["helpfulness"]["models"] = [m for m in raw["helpfulness"]["models"] if m in models]
    generation = {**JUDGE_BASE["generation"], **judge.get("generation", {})}
    raw["judge"] = {**JUDGE_BASE, **judge, "generation": generation}
    raw["judge_scores"] = {"bootstrap_resamples": 200, "bootstrap_seed": 7}
    return parse_params(raw)


@dataclass
class Judged:
    absolute: list[dict[str, Any]]
    item_scores: list[dict[str, Any]]
    pairwise: list[dict[str, Any]]
    metrics: dict[str, Any]


def _judged(params, bench_path: Path, responses_dir: Path) -> Judged:
    """The judge stage's grading, written as the stage writes it, then the judge_scores stage's
    metrics read back from those files."""
    outputs = run_judge(params, bench_path, responses_dir)
    out = bench_path.parent / "judge"
    write_jsonl(out / "absolute.jsonl", outputs.absolute)
    write_jsonl(out / "pairwise.jsonl", outputs.pairwise)
    write_json(out / GRADING_RECORD, outputs.record)
    metrics = score_judge_outputs(out, bench_path, responses_dir, params.judge_scores)
    return Judged(outputs.absolute, outputs.item_scores, outputs.pairwise, metrics)


def _openai_judge(server: ScriptedChatServer, monkeypatch, **extra) -> dict:
    monkeypatch.setenv("JANUS_SCRIPTED_CHAT_KEY", "sk-test")
    return server.llm_config(**extra)


def _absolute_answer(request: dict, times: int) -> str:
    """GOOD gets 5 on TONE and 3 on DEPTH; FLAKY answers prose first, then a score; NEVER never
    says a score; BAD gets 1."""
    user = user_message(request)
    response = _between(user, "###Response to evaluate:", "###Reference Answer")
    criteria = _between(user, "###Score Rubrics:\n[", "]")
    if "FLAKY" in response:
        return "Feedback: fine, I'd say a four." if times == 1 else "Feedback: fine. [RESULT] 4"
    if "NEVER" in response:
        return "The response is good. Score: 5/5"
    if "GOOD" in response:
        return f"Feedback: {criteria} followed. [RESULT] {5 if criteria == 'TONE' else 3}"
    return "Feedback: ignores the preferences. [RESULT] 1"


def test_text_judging_reasks_strictly_and_never_averages_what_it_cannot_read(tmp_path, monkeypatch):
    responses = {
        "alpha": {
            ("koala-a-0", "system"): "GOOD answer",
            ("koala-a-1", "system"): "FLAKY answer",
            ("flask-b-0", "system"): "   ",  # empty: not judged, counted
            ("koala-a-0", "no_system"): "BAD answer",
            ("koala-a-1", "no_system"): "NEVER answer",
            ("flask-b-0", "no_system"): "BAD answer",
        },
    }
    bench_path, responses_dir = _write_fixture(tmp_path, responses)
    with ScriptedChatServer(_absolute_answer) as server:
        params = _params(
            ["alpha"],
            {
                "repeats": 1,
                "format": "text",
                "feedback_max_chars": 100,
                "generation": {"max_tokens": 100},
            },
            _openai_judge(server, monkeypatch),
        )
        outputs = _judged(params, bench_path, responses_dir)
        # the client's re-asks (llm.judge.max_invalid_retries: 2), not a loop of the judge's own
        never_asked = [user for user in server.seen if "NEVER" in user]
        assert never_asked and all(server.seen[user] == 3 for user in never_asked)  # 1 + 2 re-asks
        assert not server.response_formats  # text format: no response_format sent
        # F.2: the judge sees instruction, response, reference answer and rubric, no system message
        assert not any(SYSTEM in user for user in server.seen)
        assert all("###Task Description:" in user for user in server.seen)

    metrics = outputs.metrics
    assert metrics["format"] == "text"
    assert metrics["bench"]["dropped"] == {"missing_score_level": 1}
    scores = metrics["scores"]["alpha"]
    # GOOD: (5 + 3) / 2 = 4; FLAKY re-asked once: (4 + 4) / 2 = 4; the empty response is not a 1
    assert scores["system"]["koala"]["mean"] == pytest.approx(4.0)
    assert scores["system"]["overall"]["items"] == 2
    assert "flask" not in scores["system"]
    assert scores["system"]["overall"]["std"] is None  # one repeat: no spread, not 0
    assert scores["system"]["overall"]["ci95"] == [pytest.approx(4.0), pytest.approx(4.0)]
    # NEVER is unparsed on both rubrics: the item has no score, so only BAD items count
    assert scores["no_system"]["overall"]["mean"] == pytest.approx(1.0)
    assert scores["no_system"]["overall"]["items"] == 2
    counts = metrics["counts"]["alpha"]
    assert counts["system"]["empty_responses"] == 1
    assert counts["system"]["unparsed_judgements"] == 0
    assert counts["no_system"]["unparsed_judgements"] == 2
    assert counts["no_system"]["unscored_items"] == 1
    assert metrics["parse"]["unparsed"] == 2
    assert metrics["parse"]["reasons"] == {"no_marker": 2}
    assert metrics["parse"]["rate_by_reason"] == {"no_marker": pytest.approx(2 / 10)}
    assert metrics["parse"]["reasked"] == 2 + 2  # FLAKY's two rubrics and NEVER's two
    unparsed_rows = [row for row in outputs.absolute if row["status"] == "unparsed"]
    assert all(row["score"] is None and row["attempts"] == 3 for row in unparsed_rows)


def _pairwise_answer(request: dict, times: int) -> str:
    user = user_message(request)
    if "###Response to evaluate:" in user:
        return "Feedback: ok. [RESULT] 3"
    first = _between(user, "###Response A", "###Response B")
    second = _between(user, "###Response B", "###Reference answer")
    if "BIASED" in first or "BIASED" in second:
        return "Feedback: the first one reads better. [RESULT] A"  # position bias
    if "GOOD" in first and "GOOD" not in second:
        return "Feedback: A follows the preferences. [RESULT] A"
    if "GOOD" in second and "GOOD" not in first:
        return "Feedback: B follows the preferences. [RESULT] B"
    return "Feedback: equally good. [RESULT] TIE"


def test_pairwise_counts_a_win_only_when_both_orders_agree(tmp_path, monkeypatch):
    ids = ("koala-a-0", "koala-a-1", "flask-b-0")
    responses = {
        "janus": {(i, "system"): "GOOD answer" for i in ids},
        "mistral": {
            ("koala-a-0", "system"): "plain answer",  # janus better in both orders: win
            ("koala-a-1", "system"): "BIASED answer",  # the judge prefers position A: tie
            ("flask-b-0", "system"): "",  # empty: not compared, counted
        },
    }
    bench_path, responses_dir = _write_fixture(tmp_path, responses)
    with ScriptedChatServer(_pairwise_answer) as server:
        params = _params(
            ["janus", "mistral"],
            {
                "repeats": 2,
                "format": "auto",
                "pairwise": [["janus", "mistral"]],
                "feedback_max_chars": 100,
                "generation": {"max_tokens": 100},
            },
            # an endpoint without any structured-output mode: auto picks the paper's text format
            _openai_judge(server, monkeypatch, structured_output="prompt"),
        )
        outputs = _judged(params, bench_path, responses_dir)
    pairwise = outputs.metrics["pairwise"]["janus_vs_mistral"]
    assert outputs.metrics["format"] == "text"
    assert (pairwise["win"], pairwise["tie"], pairwise["loss"]) == (2, 2, 0)  # x 2 repeats
    assert pairwise["empty"] == 2 and pairwise["unparsed"] == 0
    assert pairwise["win_rate"] == pytest.approx(0.5)
    assert pairwise["win_or_tie_rate"] == pytest.approx(1.0)
    biased = [row for row in outputs.pairwise if row["id"] == "koala-a-1"]
    assert {(row["verdict_model_as_a"], row["verdict_model_as_b"]) for row in biased} == {
        ("A", "A")
    }
    assert outputs.metrics["scores"]["janus"]["system"]["overall"]["std"] == pytest.approx(0.0)
    # position bias: the BIASED item flips (a win as A, a loss as B) in both repeats
    assert outputs.metrics["health"]["position_flip"] == {"comparisons": 4, "flips": 2, "rate": 0.5}
    # item koala-a-0: 2 wins, koala-a-1: 2 ties; resampling items gives win rates 0, 0.5 or 1
    assert pairwise["ci95"]["win_rate"] == [pytest.approx(0.0), pytest.approx(1.0)]
    assert pairwise["ci95"]["win_or_tie_rate"] == [pytest.approx(1.0), pytest.approx(1.0)]
    assert pairwise["ci95"]["loss_rate"] == [pytest.approx(0.0), pytest.approx(0.0)]


def test_structured_judging_over_the_wire(tmp_path, monkeypatch):
    def answer(request: dict, times: int) -> str:
        user = user_message(request)
        if "GOOD" in _between(user, "###Response to evaluate:", "###Reference Answer"):
            return json.dumps({"feedback": "follows it", "score": 5})
        return json.dumps({"feedback": "does not", "score": 9})  # out of range: schema-invalid

    responses = {"alpha": {("koala-a-0", "system"): "GOOD", ("koala-a-1", "system"): "meh"}}
    bench_path, responses_dir = _write_fixture(tmp_path, responses)
    with ScriptedChatServer(answer) as server:
        params = _params(
            ["alpha"],
            {
                "repeats": 1,
                "format": "auto",
                "feedback_max_chars": 100,
                "generation": {"max_tokens": 100},
            },
            _openai_judge(server, monkeypatch, max_invalid_retries=1),
        )
        assert resolve_format(params.judge, params.llm.judge) == "structured"
        outputs = _judged(params, bench_path, responses_dir)
        assert server.response_formats["json_schema"] > 0
    metrics = outputs.metrics
    assert metrics["scores"]["alpha"]["system"]["overall"]["mean"] == pytest.approx(5.0)
    assert metrics["scores"]["alpha"]["system"]["overall"]["items"] == 1
    assert metrics["counts"]["alpha"]["system"]["unparsed_judgements"] == 2
    assert metrics["parse"]["reasons"] == {"invalid_output": 2}
    assert metrics["llm"]["invalid_outputs"] == 4  # each re-asked once by the client


def test_local_structured_judge_scores_every_rubric_and_reruns_from_cache(tmp_path, tiny_model_dir):
    # The random tiny model writes nonsense, but under the schema every answer is an integer 1-5.
    responses = {"alpha": {("koala-a-0", "system"): "Recursion calls itself."}}
    bench_path, responses_dir = _write_fixture(tmp_path, responses)
    llm = {"backend": "local", "model": str(tiny_model_dir), "cache_dir": "~/.cache/janus/llm"}
    judge = {
        "repeats": 2,
        "format": "auto",
        "feedback_max_chars": 10,
        "generation": {"max_tokens": 48},
    }
    params = _params(["alpha"], judge, llm)
    first = _judged(params, bench_path, responses_dir)
    assert first.metrics["format"] == "structured"
    assert first.metrics["parse"]["unparsed"] == 0
    scores = [row["score"] for row in first.absolute]
    assert len(scores) == 2 * 2  # rubrics x repeats
    assert all(isinstance(score, int) and 1 <= score <= 5 for score in scores)
    overall = first.metrics["scores"]["alpha"]["system"]["overall"]
    assert 1 <= overall["mean"] <= 5 and overall["repeats"] == 2 and overall["std"] is not None
    second = _judged(params, bench_path, responses_dir)
    assert read_json(RUNTIME_DIR / "judge.llm.json")["requests"] == 0  # this run's record
    assert second.metrics["scores"] == first.metrics["scores"]


def test_a_new_seed_or_repeat_asks_for_new_samples():
    params = _params(["a"], {"repeats": 3}, {"backend": "local"})
    indices = {sample_index(params.judge, repeat) for repeat in range(3)}
    assert len(indices) == 3
    other_seed = params.judge.model_copy(update={"seed": params.judge.seed + 1})
    assert not indices & {sample_index(other_seed, r) for r in range(3)}


def _steer_answer(request: dict, times: int) -> str:
    """5 when the response is written for the rubric's preference (its criteria word), else 2."""
    user = user_message(request)
    response = _between(user, "###Response to evaluate:", "###Reference Answer")
    criteria = _between(user, "###Score Rubrics:\n[", "]")
    return f"Feedback: checked. [RESULT] {5 if criteria in response else 2}"


def test_steerability_is_matched_minus_mismatched_rubrics(tmp_path, monkeypatch):
    bench = [
        _bench_row("koala-a-0", "koala", ("FORMAL", "FORMAL")),
        _bench_row("koala-a-1", "koala", ("CASUAL", "CASUAL")),
        _bench_row("flask-b-0", "flask", ("BRIEF",)),  # one system message: no partner
    ]
    bench[1]["system"] = "You are a relaxed friend."
    responses = {
        "steered": {
            ("koala-a-0", "system"): "a FORMAL answer",
            ("koala-a-1", "system"): "a CASUAL answer",
            ("flask-b-0", "system"): "a BRIEF answer",
            ("koala-a-0", "no_system"): "an answer",
            ("koala-a-1", "no_system"): "an answer",
        },
        "deaf": {  # ignores the system message: the same answer for both
            ("koala-a-0", "system"): "a FORMAL answer",
            ("koala-a-1", "system"): "a FORMAL answer",
        },
    }
    bench_path, responses_dir = _write_fixture(tmp_path, responses, bench)
    with ScriptedChatServer(_steer_answer) as server:
        params = _params(
            ["steered", "deaf"],
            {
                "repeats": 1,
                "format": "text",
                "steerability_repeats": 1,
                "include_system_message": True,
                "feedback_max_chars": 100,
                "generation": {"max_tokens": 100},
            },
            _openai_judge(server, monkeypatch),
        )
        outputs = _judged(params, bench_path, responses_dir)
        assert any("You are a relaxed friend." in user for user in server.seen)
    steer = outputs.metrics["steerability"]
    # steered: 5 on its own rubrics, 2 on the other system message's, for both items
    assert steer["steered"] == {
        "items": 2,
        "mean": pytest.approx(3.0),
        "ci95": [pytest.approx(3.0), pytest.approx(3.0)],
        "matched_mean": pytest.approx(5.0),
        "mismatched_mean": pytest.approx(2.0),
    }
    # deaf: koala-a-0 matched 5 / mismatched 2 (+3); koala-a-1 matched 2 / mismatched 5 (-3)
    assert steer["deaf"]["mean"] == pytest.approx(0.0)
    assert steer["deaf"]["ci95"][0] == pytest.approx(-3.0)
    assert steer["deaf"]["ci95"][1] == pytest.approx(3.0)
    mismatched = [row for row in outputs.absolute if row["kind"] == "mismatched"]
    assert {(row["id"], row["rubric_of"]) for row in mismatched} == {
        ("koala-a-0", "koala-a-1"),
        ("koala-a-1", "koala-a-0"),
    }
    # steerability judgements stay out of the scores: steered's system mean is all matched 5s
    assert outputs.metrics["scores"]["steered"]["system"]["overall"]["mean"] == pytest.approx(5.0)
    # Table 8 gap, paired over items: 5 with the system message, 2 without
    gap = outputs.metrics["health"]["system_message_gap"]["steered"]
    assert gap["items"] == 2 and gap["mean"] == pytest.approx(3.0)
    # every no_system answer has the same length: no correlation can be measured there
    lengths = outputs.metrics["health"]["length_correlation"]["by_model"]
    assert lengths["steered"]["no_system"]["pearson"] is None


def test_judge_names_a_missing_model_clearly(tmp_path, monkeypatch):
    bench_path, responses_dir = _write_fixture(tmp_path, {"alpha": {("koala-a-0", "system"): "x"}})
    params = _params(
        ["alpha", "ghost"], {"repeats": 1}, {"backend": "local", "model": "models/base"}
    )
    with pytest.raises(FileNotFoundError, match="ghost"):
        run_judge(params, bench_path, responses_dir)


def test_report_judge_sections_show_cis_and_health_and_mark_what_is_missing():
    from janus.evaluate.report_judge import judge_sections

    judge = {
        "include_system_message": False,
        "scores": {
            "janus": {
                "system": {"overall": {"items": 3, "mean": 4.1, "repeats": 3, "ci95": [3.8, 4.4]}},
            }
        },
        "pairwise": {"janus_vs_base": {"ci95": {"win_rate": [0.25, 0.5], "tie_rate": None}}},
        "parse": {"judgements": 10, "unparsed_rate": 0.1, "rate_by_reason": {"no_marker": 0.1}},
        "health": {
            "repeat_agreement": {"pairs": 4, "exact": 0.5, "within_one": 1.0},
            "position_flip": {"comparisons": 4, "flips": 1, "rate": 0.25},
            "length_correlation": {"pooled": {"items": 3, "pearson": 0.42}},
            "system_message_gap": {"janus": {"items": 3, "mean": 0.3, "ci95": [0.1, 0.5]}},
        },
        "steerability": {},
    }
    text = "\n\n".join(judge_sections(judge, ["janus", "base"]))
    assert "| janus | system | 4.10 | [3.80, 4.40] | 3 | 3 |" in text
    assert "| janus | +0.30 | [0.10, 0.50] | 3 | – | – | – / – | – |" in text
    assert "| base | – | – | – | – | – | – / – | – |" in text  # not judged: no number
    assert "| janus vs base | [25.0%, 50.0%] | – |" in text
    assert "does not see (F.2)" in text and "no_marker 10.0%" in text
    assert "25.0% of 4 comparisons" in text and "0.42 over 3 items" in text


def test_a_second_judge_grades_the_same_responses_and_draws_its_own_samples(tmp_path, monkeypatch):
    """judge.judges = [judge, open_judge], both the same endpoint and model: the second judge's
    requests are new samples (its position is in the sample index), not the first one's cached
    answers; it grades own rubrics only (no steerability, no pairwise); every row names its judge."""

    seeds: dict[str, list[int]] = {}  # prompt -> the samples asked for, in order

    def answer(request: dict, times: int) -> str:
        user = user_message(request)
        if "###Response to evaluate:" not in user:
            return "Feedback: A is better. [RESULT] A"  # pairwise
        asked = seeds.setdefault(user, [])
        if request["seed"] not in asked:
            asked.append(request["seed"])
        # the primary judge runs first: its sample scores 4, the second judge's 3
        return f"Feedback: sample {asked.index(request['seed'])}. [RESULT] {4 - asked.index(request['seed'])}"

    responses = {
        "alpha": {(i, "system"): "GOOD answer" for i in ("koala-a-0", "koala-a-1", "flask-b-0")},
        "beta": {(i, "system"): "BAD answer" for i in ("koala-a-0", "koala-a-1", "flask-b-0")},
    }
    bench_path, responses_dir = _write_fixture(tmp_path, responses)
    with ScriptedChatServer(answer) as server:
        config = _openai_judge(server, monkeypatch, structured_output="prompt")
        params = _params(
            ["alpha", "beta"],
            {
                "repeats": 1,
                "format": "text",
                "steerability_repeats": 1,
                "pairwise": [["alpha", "beta"]],
                "judges": ["judge", "open_judge"],
            },
            config,
            config,
        )
        outputs = _judged(params, bench_path, responses_dir)
    # every prompt graded by both judges was asked for two samples, not one served twice
    assert seeds and all(len(asked) == 2 for asked in seeds.values())

    by_judge = {role: [r for r in outputs.absolute if r["judge"] == role] for role in ("judge", "open_judge")}
    assert {r["kind"] for r in by_judge["open_judge"]} == {"own"}
    assert "mismatched" in {r["kind"] for r in by_judge["judge"]}
    own = [r for r in by_judge["judge"] if r["kind"] == "own"]
    assert len(own) == len(by_judge["open_judge"]) == 2 * 3 * 2  # models x items x rubrics
    assert {r["score"] for r in own} == {4} and {r["score"] for r in by_judge["open_judge"]} == {3}
    assert {row["judge"] for row in outputs.pairwise} == {"judge"}
    assert {row["judge"] for row in outputs.item_scores} == {"judge", "open_judge"}
    metrics = outputs.metrics
    assert [j["role"] for j in metrics["judges"]] == ["judge", "open_judge"]
    assert [j["primary"] for j in metrics["judges"]] == [True, False]
    assert metrics["judges"][1]["label"] == "scripted-gpt"
    assert metrics["scores"]["alpha"]["system"]["overall"]["mean"] == pytest.approx(4.0)
    second = metrics["second_opinions"]["open_judge"]
    assert second["scores"]["alpha"]["system"]["overall"]["mean"] == pytest.approx(3.0)
    assert second["parse"]["judgements"] == 12 and second["parse"]["unparsed"] == 0
    assert list(metrics["second_opinions"]) == ["open_judge"]
