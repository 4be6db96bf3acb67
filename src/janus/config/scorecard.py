"""The `scorecard` section: the paper's numbers beside ours."""

from __future__ import annotations

from typing import ClassVar

from janus.config.common import Section


class ScorecardSection(Section):
    """reports/reproduction.md: the paper's numbers (a data file citing table, row, column)
    beside ours."""

    params_key: ClassVar[str] = "scorecard"

    paper_numbers: str  # data/paper/paper_numbers.csv
    # Which of our models stands for a paper row, e.g. {"Janus 7B": sft}. A paper row without an
    # entry, or whose model the run did not produce, reads "not run".
    rows: dict[str, str]
