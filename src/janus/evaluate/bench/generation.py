"""The bench rows the teacher writes for the selected instructions: a preference set, a system
message (the training data's own functions and templates), a reference answer and one 1-5 rubric
per preference dimension (one structured call returns all of them)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any, Protocol

from janus.config.bench import BenchSection
from janus.config.gold_responses import GoldResponsesSection
from janus.config.llm import LLMSection
from janus.config.preference_sets import PreferenceSetsSection
from janus.config.system_messages import SystemMessagesSection
from janus.data.common import Limits
from janus.data.gold_responses import gold_request
from janus.data.preference_sets import PreferenceSetsStep
from janus.data.system_messages import SystemMessagesStep
from janus.data.taxonomy import Taxonomy
from janus.evaluate.rows import BenchRow, Rubric, llm_schema, rubric_set_model, validate_rows
from janus.logging_utils import get_logger
from janus.prompts import render_messages
from janus.steps.base import Rejection, Step, Tally
from janus.steps.runner import collect_step

log = get_logger(__name__)


# ---------------------------------------------------------------------------------------------
# rubrics
# ---------------------------------------------------------------------------------------------


def rubric_schema(dimensions: Sequence[str], max_chars: int) -> dict[str, Any]:
    """One structured answer holding every dimension's rubric (`rows.Rubric`), all five levels."""
    return llm_schema(rubric_set_model(tuple(dimensions)), max_chars)


def rubrics_from_object(
    value: Any, dimensions: Sequence[str]
) -> tuple[list[dict[str, Any]], list[str]]:
    """{dimension: rubric} -> rubrics in dimension order (whitespace collapsed), and the
    problems found (e.g. a level that is only whitespace, which a schema's minLength lets
    through), each prefixed by its metrics key."""
    if not isinstance(value, dict):
        return [], [f"not_an_object: rubrics answer is {type(value).__name__}"]
    rubrics, problems = [], []
    for dimension in dimensions:
        rubric = value.get(dimension)
        if isinstance(rubric, dict):
            rubric = {
                "criteria": _collapse(rubric.get("criteria")),
                "score_descriptions": {
                    key: _collapse(text)
                    for key, text in (rubric.get("score_descriptions") or {}).items()
                }
                if isinstance(rubric.get("score_descriptions"), dict)
                else rubric.get("score_descriptions"),
            }
        valid, reasons, messages = validate_rows(Rubric, [rubric])
        if reasons:
            problems += [f"{next(iter(reasons))}: rubric {dimension}: {messages[0]}"]
            continue
        rubrics.append(valid[0].model_dump(by_alias=True))
    return rubrics, problems


def _collapse(text: Any) -> Any:
    return " ".join(text.split()) if isinstance(text, str) else text


def build_rubric_request(row: dict[str, Any], dimensions: Sequence[str], config: BenchSection):
    from janus.llm import ChatRequest

    return ChatRequest(
        messages=render_messages(
            "bench_rubric",
            instruction=row["prompt"],
            system=row["system"],
            preference_set=row["preference_set"],
            dimensions=dimensions,
            max_chars=config.rubric_max_chars,
        ),
        schema=rubric_schema(dimensions, config.rubric_max_chars),
        temperature=config.rubric_generation.temperature,
        top_p=config.rubric_generation.top_p,
        max_tokens=config.rubric_generation.max_tokens,
        tag=f"{row['id']}/rubrics",
    )


class BenchParams(Protocol):
    """The sections the bench stage reads: `load_sections(...)` of them, or the whole Params."""

    llm: LLMSection
    preference_sets: PreferenceSetsSection
    system_messages: SystemMessagesSection
    gold_responses: GoldResponsesSection
    bench: BenchSection


def _generation_sections(
    config: BenchSection, params: BenchParams
) -> tuple[PreferenceSetsSection, SystemMessagesSection, GoldResponsesSection]:
    """The data stages' own sections, filled from the bench's params, so that bench system
    messages and reference answers are made by exactly the training data's code and prompts."""
    # Copies of the training sections (so settings the bench does not name, e.g. the sentence
    # limit or whether the teacher sees the instruction, are the training data's), bench values in.
    preference_sets = params.preference_sets.model_copy(
        update={
            "sets_per_instruction": config.system_messages_per_instruction,
            "max_instructions": None,
            "description_max_chars": config.preference_description_max_chars,
            "name_max_chars": config.preference_name_max_chars,
            "generation": config.preference_set_generation,
            "max_failed_fraction": config.max_failed_fraction,
            "seed": config.seed,
        }
    )
    system_messages = params.system_messages.model_copy(
        update={
            "num_examples": config.num_system_message_examples,
            "generation": config.system_message_generation,
            "max_failed_fraction": config.max_failed_fraction,
            "seed": config.seed,
        }
    )
    gold = params.gold_responses.model_copy(
        update={
            "generation": config.reference_generation,
            "max_failed_fraction": config.max_failed_fraction,
            "seed": config.seed,
        }
    )
    return preference_sets, system_messages, gold


class BenchPreferenceSets(PreferenceSetsStep):
    """An instruction row -> its preference sets, asked exactly as for the training data (the
    data step's requests), checked against the bench's own length limits (no sentence limit)."""

    name = "bench"
    desc = "bench preference sets"

    def __init__(
        self,
        seed_sets: list[dict[str, Any]],
        taxonomy: Taxonomy,
        config: PreferenceSetsSection,
        limits: Limits,
    ):
        super().__init__(seed_sets, taxonomy, config)
        self.limits = limits  # after the schema, which stays the data step's

    def format_output(self, row: dict[str, Any], results: list[Any]) -> list[Any]:
        return [
            Rejection("failed_preference_set", made.detail) if isinstance(made, Rejection) else made
            for made in super().format_output(row, results)
        ]

    def metrics(self, tally: Tally) -> dict[str, Any]:
        return {"dropped": tally.rejected}


class BenchSystemMessages(SystemMessagesStep):
    """A preference-set row -> a bench row in the making (`id`, `system`, `prompt`), its system
    message written by the training data's own step."""

    name = "bench"
    desc = "bench system messages"

    def format_output(self, row: dict[str, Any], result: Any) -> Any:
        made = super().format_output(row, result)
        if isinstance(made, Rejection):
            return Rejection("failed_system_message", made.detail)
        return {
            **made,
            "id": f"{row['instruction_id']}-{row['set_index']}",
            "prompt": row["instruction"],
        }

    def metrics(self, tally: Tally) -> dict[str, Any]:
        return {"dropped": tally.rejected}


class BenchReferencesAndRubrics(Step):
    """A bench row in the making -> [its reference answer, its rubrics] (two requests) -> the
    bench row (`rows.BenchRow`), or a Rejection naming what is missing or malformed."""

    name = "bench"
    desc = "bench references+rubrics"

    def __init__(
        self, dimensions: Sequence[str], config: BenchSection, gold_config: GoldResponsesSection
    ):
        self.dimensions, self.config, self.gold_config = dimensions, config, gold_config
        self.max_failed_fraction = config.max_failed_fraction

    @property
    def fan_out(self) -> int:
        return 2

    def format_input(self, row: dict[str, Any]) -> list[Any]:
        return [
            gold_request(row, self.gold_config),
            build_rubric_request(row, self.dimensions, self.config),
        ]

    def format_output(self, row: dict[str, Any], results: list[Any]) -> Any:
        reference, rubric = results
        answer = (reference.text or "").strip() if reference.ok else ""
        if not answer:
            return Rejection("failed_reference_answer", reference.error or "empty")
        if not rubric.ok:
            return Rejection("failed_rubrics", rubric.error or "no answer")
        rubrics, problems = rubrics_from_object(rubric.parsed, self.dimensions)
        candidate = {
            "id": row["id"],
            "instruction_id": row["instruction_id"],
            "source": row["source"],  # ours: the benchmark itself, its own Table 2 column
            "benchmark": row["source"],
            "system": row["system"],
            "prompt": row["prompt"],
            "reference_answer": answer,
            "rubrics": rubrics,
            "preference_set": row["preference_set"],
        }
        if not problems:
            valid, reasons, messages = validate_rows(BenchRow, [candidate])
            problems = [f"{next(iter(reasons))}: {messages[0]}"] if reasons else []
        if problems:
            return Rejection(problems[0].split(":", 1)[0], "; ".join(problems))
        return valid[0].dump()

    def metrics(self, tally: Tally) -> dict[str, Any]:
        return {"dropped": tally.rejected}


def generate_bench_rows(
    instructions: list[dict[str, Any]],
    taxonomy: Taxonomy,
    seed_sets: list[dict[str, Any]],
    examples: list[dict[str, Any]],
    params: BenchParams,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Bench rows for the selected instructions, and the generation counts and LLM usage: three
    steps on one client (each held to `bench.max_failed_fraction` by the runner)."""
    from janus.llm import LLMClient

    config = params.bench
    preference_config, system_config, gold_config = _generation_sections(config, params)
    limits = Limits(config.preference_name_max_chars, config.preference_description_max_chars)
    dropped: Counter = Counter()
    with LLMClient(
        params.llm.teacher, stage="bench", max_failed_fraction=config.max_failed_fraction
    ) as client:
        # 1. a preference set per (instruction, index), as for the training data
        step: Step = BenchPreferenceSets(seed_sets, taxonomy, preference_config, limits)
        rows, made = collect_step(step, instructions, None, total=len(instructions), client=client)
        dropped += made["dropped"]
        # 2. a system message per preference set
        step = BenchSystemMessages(examples, system_config)
        rows, made = collect_step(step, rows, None, total=len(rows), client=client)
        dropped += made["dropped"]
        # 3. a reference answer and the rubrics per system message
        step = BenchReferencesAndRubrics(taxonomy.keys, config, gold_config)
        bench, made = collect_step(step, rows, None, total=len(rows), client=client)
        dropped += made["dropped"]
    metrics = {
        "requested_rows": len(instructions) * config.system_messages_per_instruction,
        "dropped": dict(sorted(dropped.items())),
        "llm": client.stats.as_metrics(),
    }
    return bench, metrics
