"""The `report` section: the evaluation report's model rows and the judge agreement's CIs."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from janus.config.common import Section


class AgreementParams(Section):
    """Agreement between judges that graded the same responses (report stage, no LLM call)."""

    bootstrap_resamples: int = Field(ge=1)  # 95% CIs: resamples of bench items
    bootstrap_seed: int


class ReportSection(Section):
    params_key: ClassVar[str] = "report"
    # The tables' rows, in this order; empty: every model the judge scored. A listed model
    # without judged responses is shown as missing, not silently dropped.
    models: list[str]
    agreement: AgreementParams
