"""An LLM step, declared once: how an input row becomes its request(s), how the answer(s) become an
output row or a rejection, and what the step adds to the metrics. `janus.steps.runner` runs it.

Usage (a step is a small class; its parameters are set in `__init__`, typically from its params
section, by a factory in `janus.steps.registry`):

    class Summaries(Step):
        name = "summaries"            # the stage: the LLM client's label and the threshold's name
        role = "teacher"              # which params.llm.<role> it calls
        desc = "summaries"            # the progress bar's label

        def __init__(self, config):
            self.config = config
            self.max_failed_fraction = config.max_failed_fraction

        def format_input(self, row):  # one ChatRequest, or a list when a row fans out
            return ChatRequest(messages=[...], max_tokens=..., tag=row["id"])

        def format_output(self, row, result):  # a list of results when format_input gave a list
            if not result.ok:
                return Rejection("failed", result.error)
            return {**row, "summary": result.text.strip()}

        def count(self, output, tally):  # optional: what a written row adds to the tally
            tally.counts["chars"] += len(output["summary"])

        def metrics(self, tally):         # the stage's metrics ("llm" is added by the runner)
            return {"summaries": tally.written, "empty": tally.rejected["failed"]}

Optional hooks:
- `parse(result)`: read an answer (`result.text`, `result.parsed` under a schema) and return what
  `result.parsed` becomes, or raise ValueError to have the client re-ask it (as
  `LLMClient.generate(parse=...)`); leave it None (the default) for none.
- `reask(result, tally)`: called on every first-pass result; return a new request to ask once
  more in its place (e.g. a larger `max_tokens` for an answer cut off), or None. The runner asks a
  window's re-asks together before passing the window on, so rows keep their order.
- `observe(row, result, tally)`: count something about every answer, written or not (called
  just before `format_output`).
- `fan_out`: requests per input row (default 1); the forecast counts rows x fan_out, so a step
  whose `format_input` returns a list sets it to that list's length.

`format_output` may also return a list (one output row or Rejection per request of a fanned-out
row, e.g. the preference sets of one instruction). Every Rejection is counted by its reason in
`tally.rejected` and logged; nothing is dropped silently.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from janus.llm import ChatRequest, ChatResult


@dataclass(frozen=True)
class Rejection:
    """An answer that makes no output row: `reason` is the countable key (metrics), `detail` the
    log line's explanation."""

    reason: str
    detail: str = ""


@dataclass
class Tally:
    """What the runner counts while a step runs; `Step.metrics` turns it into the stage's metrics."""

    rows: int = 0  # input rows read
    requests: int = 0  # first-pass requests asked (rows x fan-out)
    written: int = 0  # output rows written
    reasked: int = 0  # answers asked again (Step.reask)
    rejected: Counter[str] = field(default_factory=Counter)  # reason -> outputs not written
    failed: Counter[str] = field(default_factory=Counter)  # final answers not ok, by reason
    counts: Counter[str] = field(default_factory=Counter)  # whatever the step counts
    # named counters keyed by an id (e.g. valid sets per instruction_id)
    groups: defaultdict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))

    def group(self, name: str) -> Counter:
        return self.groups[name]


class Step:
    """One LLM step. Subclasses set `name`, `role`, `desc`, `max_failed_fraction` and implement
    `format_input`, `format_output` and `metrics`; see the module docstring."""

    name: ClassVar[str] = ""
    role: ClassVar[str] = "teacher"
    desc: str = "generating"
    # past this share of failed requests the runner raises StageFailed and writes nothing;
    # None leaves it unchecked
    max_failed_fraction: float | None = None
    # set to a method by a step that reads its answers itself (see the module docstring)
    parse: Any = None

    @property
    def fan_out(self) -> int:
        """Requests per input row."""
        return 1

    def format_input(self, row: dict[str, Any]) -> ChatRequest | list[ChatRequest]:
        raise NotImplementedError

    def format_output(
        self, row: dict[str, Any], result: ChatResult | list[ChatResult]
    ) -> dict[str, Any] | Rejection | list[dict[str, Any] | Rejection]:
        raise NotImplementedError

    def observe(
        self, row: dict[str, Any], result: ChatResult | list[ChatResult], tally: Tally
    ) -> None:
        """What a row's final answer(s) add to the tally, whatever `format_output` makes of
        them (default: nothing); called just before `format_output`."""

    def count(self, output: dict[str, Any], tally: Tally) -> None:
        """What one written output row adds to the tally (default: nothing beyond the runner's)."""

    def reask(self, result: ChatResult, tally: Tally) -> ChatRequest | None:
        """A request to ask in place of a first-pass result, or None (default: never)."""
        return None

    def metrics(self, tally: Tally) -> dict[str, Any]:
        raise NotImplementedError

    def requests(self, rows: list[dict[str, Any]]) -> list[ChatRequest]:
        """Every request the rows make, in order: what the stage sends and the forecast counts."""
        requests: list[ChatRequest] = []
        for row in rows:
            made = self.format_input(row)
            requests.extend(made if isinstance(made, list) else [made])
        return requests
