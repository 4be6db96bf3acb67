"""The `scorecard` section: the paper's numbers beside ours."""

from __future__ import annotations

from typing import ClassVar

from pydantic import model_validator

from janus.config.common import Section


class ScorecardSection(Section):
    """reports/reproduction.md: the paper's numbers (a data file citing table, row, column)
    beside ours."""

    params_key: ClassVar[str] = "scorecard"

    paper_numbers: str  # data/paper/paper_numbers.csv
    # Which of our models stands for a paper row, e.g. {"Janus 7B": sft}. A paper row without an
    # entry, or whose model the run did not produce, reads "not run".
    rows: dict[str, str]
    # Paper rows that no model of this run can stand for (e.g. a retired API snapshot), with
    # why: the paper's numbers are shown, labelled with it, never compared.
    paper_only: dict[str, str]

    @model_validator(mode="after")
    def _rows_or_paper_only(self) -> ScorecardSection:
        both = sorted(set(self.rows) & set(self.paper_only))
        if both:
            raise ValueError(f"paper row(s) {both} both in rows and paper_only")
        return self
