"""janus.scale: an input smaller than its params ask for stops the run, naming both counts."""

import pytest

from janus.scale import TooFewRows, require_rows


def test_enough_rows_gives_the_requested_count():
    assert require_rows("f.jsonl", 10, 4, what="prompts", section="s.n", allow_smaller=False) == 4
    assert (
        require_rows("f.jsonl", 10, None, what="prompts", section="s.n", allow_smaller=False) == 10
    )
    assert require_rows("f.jsonl", 4, 4, what="prompts", section="s.n", allow_smaller=False) == 4


def test_too_few_rows_names_the_file_and_both_counts():
    with pytest.raises(TooFewRows) as caught:
        require_rows(
            "data/x.jsonl",
            12,
            10000,
            what="prompts",
            section="toxicity.max_prompts",
            allow_smaller=False,
        )
    message = str(caught.value)
    assert "data/x.jsonl" in message and "12 prompts" in message and "10000" in message
    assert "toxicity.allow_smaller: true" in message


def test_allow_smaller_runs_on_what_is_there(caplog):
    kept = require_rows(
        "data/x.jsonl",
        12,
        10000,
        what="prompts",
        section="toxicity.max_prompts",
        allow_smaller=True,
    )
    assert kept == 12
    assert "allow_smaller: true" in caplog.text


def test_the_paper_profile_bench_refuses_the_bundled_samples(monkeypatch):
    from pathlib import Path

    from janus.config.params import load_params
    from janus.evaluate.bench.selection import select_instructions

    repo = Path(__file__).resolve().parents[1]
    monkeypatch.chdir(repo)
    bench = load_params(repo / "profiles/paper.yaml").bench
    with pytest.raises(
        TooFewRows,
        match=r"alpaca_eval.jsonl \(bench source alpaca_eval\): holds "
        r"\d+ usable instructions, but params ask for 63",
    ):
        select_instructions(bench, set(), repo)
    smaller = bench.model_copy(update={"allow_smaller": True})
    selected, _ = select_instructions(smaller, set(), repo)
    assert 0 < len(selected) < 5 * 63
