"""The cells and tables of the Markdown reports.

A table is a pandas frame written by `DataFrame.to_markdown` (tabulate) in a compact pipe
format: `| a | b |`, then `|---|---|`, then one line per row, cells unpadded, so a report diffs
line by line when one number changes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd
from tabulate import DataRow, TableFormat

MISSING = "–"


def _rule(widths: Sequence[int], aligns: Sequence[str]) -> str:
    return "|" + "|".join("---" for _ in widths) + "|"


COMPACT_PIPE = TableFormat(
    lineabove=None,
    linebelowheader=_rule,
    linebetweenrows=None,
    linebelow=None,
    headerrow=DataRow("| ", " | ", " |"),
    datarow=DataRow("| ", " | ", " |"),
    padding=0,
    with_header_hide=None,
)


def frame_markdown(frame: pd.DataFrame) -> str:
    """A frame as a compact pipe table; every cell as `str` writes it (no number parsing)."""
    return frame.map(str).to_markdown(
        index=False, tablefmt=COMPACT_PIPE, stralign=None, numalign=None, disable_numparse=True
    )


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Rows of cells under a header, as a frame written by `frame_markdown`."""
    return frame_markdown(
        pd.DataFrame([list(row) for row in rows], columns=list(header), dtype=object)
    )


def fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return MISSING
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def percent(value: float | None) -> str:
    return MISSING if value is None else f"{100 * value:.1f}%"


def score_cell(entry: dict[str, Any] | None) -> str:
    """'4.12 ± 0.03' (mean ± std over repeats), '4.12' with one repeat, '–' without scores."""
    if not entry or entry.get("mean") is None:
        return MISSING
    if entry.get("std") is None:
        return fmt(entry["mean"])
    return f"{entry['mean']:.2f} ± {entry['std']:.2f}"


def ci_cell(ci: Sequence[float] | None, digits: int = 2, as_percent: bool = False) -> str:
    """'[lo, hi]' of a 95% CI, in percent when asked; '–' without one."""
    if not ci:
        return MISSING
    if as_percent:
        return f"[{100 * ci[0]:.1f}%, {100 * ci[1]:.1f}%]"
    return f"[{ci[0]:.{digits}f}, {ci[1]:.{digits}f}]"
