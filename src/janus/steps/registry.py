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
