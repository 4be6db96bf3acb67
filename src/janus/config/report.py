"""The `report` section: the evaluation report's model rows."""

from __future__ import annotations

from typing import ClassVar

from janus.config.common import Section


class ReportSection(Section):
    params_key: ClassVar[str] = "report"
    # The tables' rows, in this order; empty: every model the judge scored. A listed model
    # without judged responses is shown as missing, not silently dropped.
    models: list[str]
