"""The registry of LLM steps: stage name -> how to build its step from params, and which rows it
reads. `janus.forecast` walks it (the requests a stage would send are its step's own, and its
fan-out comes from the step); a stage script builds its step directly (no registry import).

    from janus.steps.registry import REGISTRY, register

    @register("summaries", role="teacher", plan=summary_rows)
    def summaries_step(params, upstream):      # -> a janus.steps.base.Step
        return Summaries(params.summaries)

`upstream` (a `janus.steps.upstream.Upstream`) gives what a step reads besides its rows (taxonomy,
example pools, seed sets), from the upstream stages' outputs where they exist, else stand-ins.
`plan(params, upstream) -> RowPlan`: the input rows (all of them, or a stand-in sample) and how many
rows the stage will read; the forecast counts rows x `step.fan_out` requests.

Factories import their step's module inside the function, so importing the registry costs nothing
and no stage depends on it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from janus.config.params import Params
    from janus.steps.base import Step


@dataclass(frozen=True)
class RowPlan:
    """The rows a step would read: `rows` are all of them (`exact`) or a sample standing in for
    `count` rows; `basis` says where they come from."""

    rows: list[dict[str, Any]]
    count: int
    exact: bool
    basis: str


@dataclass(frozen=True)
class Entry:
    name: str  # the stage
    role: str  # params.llm.<role>
    build: Callable[[Params, Any], Step]
    plan: Callable[[Params, Any], RowPlan] | None = None  # None: not forecast by rows
    group: str = ""  # stages a params switch turns on and off together ("generate": the data steps)


REGISTRY: dict[str, Entry] = {}


def register(
    name: str,
    role: str = "teacher",
    plan: Callable[[Params, Any], RowPlan] | None = None,
    group: str = "",
) -> Callable[[Callable[[Params, Any], Step]], Callable[[Params, Any], Step]]:
    """Decorator: register a step factory `factory(params, upstream) -> Step` under `name`."""

    def add(factory: Callable[[Params, Any], Step]) -> Callable[[Params, Any], Step]:
        if name in REGISTRY:
            raise ValueError(f"step {name!r} is registered twice")
        REGISTRY[name] = Entry(name, role, factory, plan, group)
        return factory

    return add


def build_step(name: str, params: Params, upstream: Any) -> Step:
    return REGISTRY[name].build(params, upstream)


def entries(group: str | None = None) -> list[Entry]:
    """The registered steps (in pipeline order), optionally those of one group."""
    return [entry for entry in REGISTRY.values() if group is None or entry.group == group]


# -- the data-construction steps (3.2, A.2), in pipeline order ---------------------------------
# `upstream` is a janus.steps.upstream.Upstream: each plan names the rows its step reads.


@register("expand_seeds", plan=lambda params, upstream: upstream.keywords(), group="generate")
def _expand_seeds(params: Params, upstream: Any) -> Step:
    from janus.data.seeds import ExpandSeedsStep

    return ExpandSeedsStep(params.expand_seeds)


@register(
    "preference_sets", plan=lambda params, upstream: upstream.instructions, group="generate"
)
def _preference_sets(params: Params, upstream: Any) -> Step:
    from janus.data.preference_sets import PreferenceSetsStep

    return PreferenceSetsStep(upstream.seed_sets, upstream.taxonomy, params.preference_sets)


@register(
    "system_messages",
    plan=lambda params, upstream: upstream.preference_set_rows(),
    group="generate",
)
def _system_messages(params: Params, upstream: Any) -> Step:
    from janus.data.system_messages import SystemMessagesStep

    return SystemMessagesStep(upstream.examples, params.system_messages)


@register(
    "gold_responses",
    plan=lambda params, upstream: upstream.system_message_rows(),
    group="generate",
)
def _gold_responses(params: Params, upstream: Any) -> Step:
    from janus.data.gold_responses import GoldResponsesStep

    return GoldResponsesStep(params.gold_responses)


# -- the evaluation steps (C.1, F.2, 5.2, 5.3) ---------------------------------------------------
# Their plans are stand-ins (janus.steps.upstream) scaled to the count the params imply. Rows:
#   bench.preference_sets      instruction rows {instruction_id, source, instruction};
#                              fan-out bench.system_messages_per_instruction
#   bench.system_messages      those rows with their `preference_set`
#   bench.references_rubrics   bench rows in the making (+ id, system, prompt); fan-out 2
#   judge / judge.pairwise     janus.evaluate.judge.grading.GradingRow / pairwise.PairwiseRow
#   toxicity.llm               (index, text) of each distinct generation
#   infer_api, helpfulness.endpoint   per endpoint `key`: infer.responses.BenchPrompt;
#                              (Question, Answer so far) per turn


def _bench_sections(params: Params):
    from janus.evaluate.bench.generation import _generation_sections

    return _generation_sections(params.bench, params)


@register(
    "bench.preference_sets", plan=lambda params, upstream: upstream.bench_instructions(),
    group="evaluate",
)
def _bench_preference_sets(params: Params, upstream: Any) -> Step:
    from janus.data.common import Limits
    from janus.evaluate.bench.generation import BenchPreferenceSets

    config = params.bench
    limits = Limits(config.preference_name_max_chars, config.preference_description_max_chars)
    preference_config = _bench_sections(params)[0]
    return BenchPreferenceSets(upstream.seed_sets, upstream.taxonomy, preference_config, limits)


@register(
    "bench.system_messages", plan=lambda params, upstream: upstream.bench_rows(), group="evaluate"
)
def _bench_system_messages(params: Params, upstream: Any) -> Step:
    from janus.evaluate.bench.generation import BenchSystemMessages

    return BenchSystemMessages(upstream.examples, _bench_sections(params)[1])


@register(
    "bench.references_rubrics", plan=lambda params, upstream: upstream.bench_rows(),
    group="evaluate",
)
def _bench_references_rubrics(params: Params, upstream: Any) -> Step:
    from janus.evaluate.bench.generation import BenchReferencesAndRubrics

    gold = _bench_sections(params)[2]
    return BenchReferencesAndRubrics(upstream.taxonomy.keys, params.bench, gold)


def _judge_format(params: Params):
    from janus.evaluate.judge.grading import resolve_format

    return resolve_format(params.judge, getattr(params.llm, params.judge.judges[0]))


@register(
    "judge", role="judge", plan=lambda params, upstream: upstream.grading_rows(),
    group="evaluate",
)
def _judge(params: Params, upstream: Any) -> Step:
    from janus.evaluate.judge.grading import AbsoluteGrading

    return AbsoluteGrading(params.judge, _judge_format(params), params.judge.judges[0])


@register(
    "judge.pairwise", role="judge", plan=lambda params, upstream: upstream.pairwise_rows(),
    group="evaluate",
)
def _judge_pairwise(params: Params, upstream: Any) -> Step:
    from janus.evaluate.judge.pairwise import PairwiseGrading

    return PairwiseGrading(params.judge, _judge_format(params))


@register(
    "toxicity.llm", role="judge", plan=lambda params, upstream: upstream.toxicity_texts(),
    group="evaluate",
)
def _toxicity_llm(params: Params, upstream: Any) -> Step:
    from janus.evaluate.toxicity.scorers import ToxicityRating

    return ToxicityRating(params.toxicity)


@register(
    "infer_api", role="endpoint", plan=lambda params, upstream: upstream.endpoint_prompts(),
    group="evaluate",
)
def _infer_api(params: Params, upstream: Any, key: str | None = None) -> Step:
    """`key`: the endpoint (infer.endpoints), default the first."""
    from janus.infer.endpoint_responses import EndpointAnswers

    return EndpointAnswers(params.infer, key or next(iter(params.infer.endpoints)))


@register(
    "helpfulness.endpoint",
    role="endpoint",
    plan=lambda params, upstream: upstream.helpfulness_questions(),
    group="evaluate",
)
def _helpfulness_endpoint(params: Params, upstream: Any, turn: int = 0) -> Step:
    from janus.evaluate.helpfulness_answering import EndpointTurn

    return EndpointTurn(params.helpfulness, turn, "helpfulness")
