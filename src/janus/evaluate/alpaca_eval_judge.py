"""Optional official judging of AlpacaEval 2.0 answers with the `alpaca_eval` package (F.3).

Stage `alpaca_eval_judge@<run>` (one per `helpfulness.alpaca_eval_runs` entry; none by default,
since every run pays for ~805 judge calls): runs `alpaca_eval evaluate` in a subprocess on the
answer file that `helpfulness@alpaca_eval` wrote, with our judge endpoint (`llm.judge`: its key
from the environment variable it names, its `base_url` as `OPENAI_API_BASE`), then reads the
tool's `leaderboard.csv` back into metrics: length-controlled win rate (Table 3's "LC Win Rate"),
win rate and their standard errors, in percent as the tool writes them.

`alpaca_eval` is not a dependency of janus (it pins its own judge stack): `pip install
alpaca_eval` where this stage runs.
"""

from __future__ import annotations

import csv
import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from janus.config.helpfulness import AlpacaEvalRun
from janus.config.llm import LLMConfig
from janus.io import write_json
from janus.logging_utils import get_logger

log = get_logger(__name__)

LEADERBOARD_COLUMNS = {
    "length_controlled_winrate": "lc_win_rate",
    "lc_standard_error": "lc_standard_error",
    "win_rate": "win_rate",
    "standard_error": "standard_error",
    "n_total": "n_total",
    "avg_length": "avg_length",
}


def alpaca_eval_command(run: AlpacaEvalRun, answers: Path, output_dir: Path) -> list[str]:
    command = [
        sys.executable,
        "-c",
        "from alpaca_eval.main import main; main()",
        "evaluate",
        "--model_outputs",
        str(answers),
        "--annotators_config",
        run.annotators_config,
        "--output_path",
        str(output_dir),
        "--precomputed_leaderboard",
        "None",  # only this model, not the published board
        "--is_cache_leaderboard",
        "False",
    ]
    if run.reference_outputs:
        command += ["--reference_outputs", run.reference_outputs]
    return command


def judge_environment(judge: LLMConfig) -> dict[str, str]:
    """The subprocess's environment: our judge's key and URL under the names alpaca_eval reads."""
    if judge.backend != "openai":
        raise ValueError(
            "alpaca_eval judges through an OpenAI-compatible API: llm.judge.backend "
            "must be openai (a local server works through llm.judge.base_url)"
        )
    key = os.environ.get(judge.api_key_env)
    if not key:
        raise RuntimeError(f"alpaca_eval: the judge key variable {judge.api_key_env} is not set")
    env = dict(os.environ, OPENAI_API_KEY=key)
    if judge.base_url:
        env["OPENAI_API_BASE"] = judge.base_url
    return env


def read_leaderboard(path: Path, model: str) -> dict[str, Any]:
    """The model's row of alpaca_eval's leaderboard.csv, under our metric names."""
    with path.open(newline="", encoding="utf-8") as handle:
        rows = {
            row[""] if "" in row else row.get("Unnamed: 0"): row for row in csv.DictReader(handle)
        }
    if model not in rows:
        raise ValueError(f"{path}: no row for generator {model!r} (rows: {sorted(rows)})")
    row = rows[model]
    return {
        ours: (float(row[theirs]) if row.get(theirs) not in (None, "") else None)
        for theirs, ours in LEADERBOARD_COLUMNS.items()
    }


def run_alpaca_eval(
    run: AlpacaEvalRun,
    judge: LLMConfig,
    answers: str | Path,
    output_dir: str | Path,
    metrics_path: str | Path,
    runner=subprocess.run,
) -> dict[str, Any]:
    if runner is subprocess.run and importlib.util.find_spec("alpaca_eval") is None:
        raise RuntimeError(
            "alpaca_eval_judge needs the alpaca_eval package: pip install alpaca_eval"
        )
    answers, output_dir = Path(answers), Path(output_dir)
    if not answers.exists():
        raise FileNotFoundError(f"{answers}: no answers; run helpfulness@alpaca_eval first")
    command = alpaca_eval_command(run, answers, output_dir)
    log.info("alpaca_eval: %s", " ".join(command[3:]))
    runner(command, check=True, env=judge_environment(judge))
    board = output_dir / run.annotators_config / "leaderboard.csv"
    if not board.exists():
        board = output_dir / "leaderboard.csv"
    metrics = {
        "model": run.model,
        "annotators_config": run.annotators_config,
        "judge_model": judge.model,
        **read_leaderboard(board, run.model),
    }
    path = Path(metrics_path)
    write_json(path, metrics)
    return metrics
