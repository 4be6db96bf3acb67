"""The `scorecard` section: the paper's numbers beside ours, and the same-judge comparison."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

from janus.config.common import Section


class SameJudgeParams(Section):
    """The same-judge comparison: each model we trained beside its published counterpart, both
    graded by the same judge in the same run on the same bench items (paired over items)."""

    # Our model -> its published counterpart (infer model names), e.g. {sft: janus-7b-hub}.
    pairs: dict[str, str]
    # Open-weight baselines shown as rows of their own (their score under each judge beside the
    # paper's), e.g. [mistral-7b-instruct].
    baselines: list[str]
    condition: Literal["system", "no_system"]
    # Reproduced when the 95% CI of mean(ours - published) lies inside [-margin, +margin] (on
    # the 1-5 scale); outside it entirely: differs; otherwise inconclusive.
    margin: float = Field(gt=0)


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
    same_judge: SameJudgeParams

    def check_references(self, sections: Mapping[str, Any]) -> None:
        infer = sections.get("infer")
        if infer is None:  # the scorecard stage alone: infer is not loaded
            return
        models = infer.model_names()
        same_judge = self.same_judge
        named = [*same_judge.pairs, *same_judge.pairs.values(), *same_judge.baselines]
        unknown = [name for name in named if name not in models]
        if unknown:
            raise ValueError(
                f"scorecard.same_judge: {unknown} not among the infer models {models}"
            )

    @model_validator(mode="after")
    def _rows_or_paper_only(self) -> ScorecardSection:
        both = sorted(set(self.rows) & set(self.paper_only))
        if both:
            raise ValueError(f"paper row(s) {both} both in rows and paper_only")
        return self
