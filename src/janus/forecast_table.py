"""The forecast (`janus.forecast`) as a table for people, or as JSON: `python -m janus forecast`."""

from __future__ import annotations

from typing import Any

from janus.config.params import Params
from janus.forecast import StageForecast
from janus.llm.cache import resolve_cache_dir
from janus.llm.pricing import TIKTOKEN_HINT, SpendLedger, current_run_id


def _usd(value: float) -> str:
    return f"${value:,.2f}"


def render_table(forecasts: list[StageForecast], params: Params) -> str:
    header = (
        "stage", "role", "model", "requests", "cached", "prompt tok", "output tok",
        "online", "batch", "basis",
    )  # fmt: skip
    rows = []
    for item in forecasts:
        output = (
            f"<={item.completion_tokens_max:,}"
            if item.completion_tokens_expected is None
            else f"~{item.completion_tokens_expected:,}"
        )
        rows.append(
            (
                item.stage,
                item.role,
                item.model,
                f"{item.requests:,}",
                f"{item.covered:,}" if item.exact else "-",
                f"{item.prompt_tokens:,}" + ("" if item.exact else "*"),
                output,
                _usd(item.costs["online_expected"]),
                _usd(item.costs["batch_expected"]),
                item.basis,
            )
        )
    totals = {
        name: sum(item.costs[name] for item in forecasts)
        for name in ("online_expected", "batch_expected", "online_max", "batch_max")
    }
    rows.append(
        (
            "total", "", "", f"{sum(i.requests for i in forecasts):,}",
            f"{sum(i.covered for i in forecasts):,}",
            f"{sum(i.prompt_tokens for i in forecasts):,}",
            f"{sum(i.completion_tokens for i in forecasts):,}",
            _usd(totals["online_expected"]), _usd(totals["batch_expected"]), "",
        )
    )  # fmt: skip
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True))
             for row in [header, *rows]]  # fmt: skip
    lines.insert(1, "  ".join("-" * width for width in widths))
    estimators = sorted({item.estimator for item in forecasts if item.requests})
    lines += [
        "",
        "Costs are for the requests not yet in the cache. Output tokens: <= the max_tokens bound"
        " (no answers of the stage cached yet), ~ the mean of this model's cached answers to the"
        " stage's own requests.",
        f"Worst case (every answer at max_tokens): online {_usd(totals['online_max'])},"
        f" batch {_usd(totals['batch_max'])}.",
        "* scaled from stand-in requests (an upstream stage has not run); counts assume every"
        " earlier answer is valid.",
        f"Prompt tokens estimated with: {', '.join(estimators)}"
        + (
            " (4 characters a token plus 3 per message: for exact counts, "
            + TIKTOKEN_HINT
            + ")"
            if any(name.startswith("chars/") for name in estimators)
            else ""
        ),
    ]
    lines += _budget_lines(params)
    return "\n".join(lines)


def _budget_lines(params: Params) -> list[str]:
    teacher, judge = params.llm.teacher, params.llm.judge
    caps = [
        f"teacher {_cap(teacher.max_usd)}",
        f"judge {_cap(judge.max_usd)}",
        f"run {_cap(params.llm.run_max_usd)}",
    ]
    lines = [f"Budget caps: {', '.join(caps)}; mode: teacher {teacher.mode}, judge {judge.mode}."]
    ledger_dir = resolve_cache_dir(teacher.cache_dir)
    if (ledger_dir / "spend.sqlite").exists():
        ledger = SpendLedger(ledger_dir)
        run = current_run_id()
        lines.append(
            f"Spent so far in run {run[:12]}: {_usd(ledger.total(run))}"
            f" (teacher {_usd(ledger.total(run, 'teacher'))}, judge"
            f" {_usd(ledger.total(run, 'judge'))})."
        )
        ledger.close()
    return lines


def _cap(value: float | None) -> str:
    return "none" if value is None else _usd(value)


def as_json(forecasts: list[StageForecast]) -> list[dict[str, Any]]:
    return [{**item.__dict__, "completion_tokens": item.completion_tokens} for item in forecasts]
