"""The `helpfulness` section: answers for AlpacaEval, MT-Bench and Arena-Hard (Table 3)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from pydantic import (
    Field,
    field_validator,
)

from janus.config.common import Section
from janus.config.engine import EngineParams, SamplingParams
from janus.config.sources import InputSource

HELPFULNESS_BENCHMARKS = ("alpaca_eval", "mt_bench", "arena_hard")


class HelpfulnessBenchmark(Section):
    """One Table 3 benchmark's prompt file, in that tool's own question format: AlpacaEval's
    eval set (JSON list of {instruction, dataset, ...}), FastChat MT-Bench `question.jsonl`
    ({question_id, category, turns: [str, str]}), Arena-Hard-Auto v0.1 `question.jsonl`
    ({question_id, category, cluster, turns: [{content}]}); a local file or `hub:owner/name`."""

    prompts_path: str  # made by stage helpfulness_prompts@<benchmark> from `source`
    source: InputSource  # hub datasets: e.g. split "eval" of tatsu-lab/alpaca_eval
    max_prompts: int | None = Field(ge=1)  # None: every prompt (paper: 805 / 80 / 500)


class AlpacaEvalRun(Section):
    """`alpaca_eval evaluate` on one model's answers, with our judge endpoint (llm.judge)."""

    model: str  # a name in helpfulness.models
    annotators_config: str  # e.g. weighted_alpaca_eval_gpt4_turbo (AlpacaEval 2.0's)
    reference_outputs: str | None  # None: the package's default baseline (GPT-4-Turbo)


class HelpfulnessSection(Section):
    """Answers for the helpfulness benchmarks of Table 3 (5.2, F.3), in each tool's answer format
    so that its official judge runs on them unchanged (stages `helpfulness@<benchmark>`)."""

    params_key: ClassVar[str] = "helpfulness"

    # Models answering, by name from infer.models / infer.hub_models / infer.endpoints.
    models: list[str]
    benchmarks: dict[str, HelpfulnessBenchmark]
    sampling: SamplingParams
    engine: EngineParams
    # False: a prompt file with fewer prompts than max_prompts stops the stage (janus.scale).
    allow_smaller: bool
    # Optional official judging with the `alpaca_eval` package (pip install alpaca_eval), one
    # stage per entry (`alpaca_eval_judge@<model>`); {} runs none (the default: it costs money).
    alpaca_eval_runs: dict[str, AlpacaEvalRun]
    seed: int

    @field_validator("benchmarks")
    @classmethod
    def _known_benchmarks(cls, value: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(value) - set(HELPFULNESS_BENCHMARKS))
        if unknown:
            raise ValueError(f"unknown benchmark(s) {unknown}; known: {list(HELPFULNESS_BENCHMARKS)}")
        return value

    def check_references(self, sections: Mapping[str, Any]) -> None:
        """The answering models are infer's (checked where infer is loaded too); each
        alpaca_eval run judges one of them."""
        infer = sections.get("infer")
        if infer is not None:
            answerable = [*infer.models, *infer.hub_models, *infer.endpoints]
            unknown = [name for name in self.models if name not in answerable]
            if unknown:
                raise ValueError(
                    f"helpfulness.models: {unknown} not in infer.models, infer.hub_models or "
                    "infer.endpoints"
                )
        for key, run in self.alpaca_eval_runs.items():
            if run.model not in self.models:
                raise ValueError(f"helpfulness.alpaca_eval_runs.{key}.model: {run.model!r} is not "
                                 "in helpfulness.models")
