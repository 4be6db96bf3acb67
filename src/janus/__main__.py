"""`python -m janus <command>`: tools around the pipeline that are not DVC stages.

python -m janus forecast [--params profiles/paper.yaml] [--json]   # the LLM bill, nothing paid
python -m janus preflight [--params profiles/paper.yaml]           # what the run needs, in seconds
python -m janus spend [--run RUN]                                  # the spend ledger
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _forecast(args: argparse.Namespace) -> int:
    import yaml

    from janus.config.params import load_params
    from janus.forecast import forecast
    from janus.forecast_table import as_json, render_table
    from janus.preflight.common import FAIL, llm_configs
    from janus.preflight.endpoints import served_checks

    params = load_params(args.params)
    raw = yaml.safe_load(Path(args.params).read_text())
    forecasts = forecast(params, root=Path(args.root), raw_params=raw)
    # a model the endpoint no longer serves: its whole bill is a 404 (only model lists are read)
    unserved = [
        row for row in served_checks(llm_configs(params), probe=False) if row.status == FAIL
    ]
    if args.json:
        print(json.dumps(as_json(forecasts), indent=2))
    else:
        print(f"LLM forecast for {args.params} (nothing paid, no key needed)\n")
        print(render_table(forecasts, params))
    for row in unserved:
        label = "NOT SERVED" if "not in the model list" in row.detail else "NOT CHECKED"
        print(f"{label}: {row.what}: {row.detail}", file=sys.stderr if args.json else sys.stdout)
    return 0


def _preflight(args: argparse.Namespace) -> int:
    from janus.preflight.common import failed
    from janus.preflight.run import render, run_preflight

    rows = run_preflight(args.params, args.root)
    print(f"Preflight for {args.params} (nothing paid)\n")
    print(render(rows))
    bad = failed(rows)
    print(f"\n{len(bad)} failing row(s)" if bad else "\nall checks passed")
    return 1 if bad else 0


def _spend(args: argparse.Namespace) -> int:
    from janus.config.params import load_params
    from janus.llm.cache import resolve_cache_dir
    from janus.llm.ledger import LEDGER_FILE, SpendLedger, current_run_id

    params = load_params(args.params)
    directory = resolve_cache_dir(params.llm.teacher.cache_dir)
    if not (directory / LEDGER_FILE).exists():
        print(f"no spend recorded yet ({directory / LEDGER_FILE})")
        return 0
    ledger = SpendLedger(directory)
    run = None if args.all else (args.run or current_run_id())
    rows = ledger.rows(run)
    ledger.close()
    for row in rows:
        print(f"{row['run'][:12]}  {row['role']:<8} {row['stage']:<20} ${row['usd']:,.4f}"
              f"  {row['answers']} answers")  # fmt: skip
    print(f"total ${sum(row['usd'] for row in rows):,.4f}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m janus")
    commands = parser.add_subparsers(dest="command", required=True)
    forecast = commands.add_parser("forecast", help="requests, tokens and cost per LLM stage")
    forecast.add_argument("--params", default="params.yaml")
    forecast.add_argument("--root", default=".", help="the repository (dvc.yaml, data/)")
    forecast.add_argument("--json", action="store_true")
    forecast.set_defaults(run=_forecast)
    preflight = commands.add_parser(
        "preflight", help="served models, keys, GPUs, inputs, hub revisions, disk, tiktoken"
    )
    preflight.add_argument("--params", default="params.yaml")
    preflight.add_argument("--root", default=".", help="the repository (dvc.yaml, data/)")
    preflight.set_defaults(run=_preflight)
    spend = commands.add_parser("spend", help="dollars paid per run, role and stage")
    spend.add_argument("--params", default="params.yaml")
    spend.add_argument("--run", help="a run id (default: this commit, or $JANUS_RUN_ID)")
    spend.add_argument("--all", action="store_true", help="every run")
    spend.set_defaults(run=_spend)
    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
