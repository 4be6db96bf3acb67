"""The helpfulness benchmarks' question files (AlpacaEval 2.0, MT-Bench, Arena-Hard-Auto v0.1):
their row types and one reader. Apart from answering (janus.evaluate.helpfulness_bench), so the
stages that only make or check a prompt file do not run the LLM client."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from janus.data.sources.base import read_rows
from janus.logging_utils import get_logger

log = get_logger(__name__)


class _Row(BaseModel):
    model_config = ConfigDict(extra="ignore")  # the tools' files carry more columns


class AlpacaEvalQuestion(_Row):
    instruction: str = Field(min_length=1)
    dataset: str | None = None


class MTBenchQuestion(_Row):
    question_id: int
    category: str
    turns: list[str] = Field(min_length=1)


class ArenaHardTurn(_Row):
    content: str = Field(min_length=1)


class ArenaHardQuestion(_Row):
    question_id: str
    category: str
    cluster: str | None = None
    turns: list[ArenaHardTurn] = Field(min_length=1)


@dataclass(frozen=True)
class Question:
    """A benchmark question as we answer it: an id and its user turns."""

    id: str
    turns: list[str]
    row: BaseModel  # the tool's own question row


QUESTION_TYPES: dict[str, type[_Row]] = {
    "alpaca_eval": AlpacaEvalQuestion,
    "mt_bench": MTBenchQuestion,
    "arena_hard": ArenaHardQuestion,
}


def to_question(benchmark: str, row: BaseModel, number: int) -> Question:
    if isinstance(row, AlpacaEvalQuestion):
        return Question(str(number), [row.instruction], row)
    if isinstance(row, MTBenchQuestion):
        return Question(str(row.question_id), list(row.turns), row)
    if isinstance(row, ArenaHardQuestion):
        return Question(row.question_id, [turn.content for turn in row.turns], row)
    raise ValueError(f"unknown benchmark {benchmark!r}")


def read_questions(
    benchmark: str, path: str, split: str = "train", revision: str | None = None
) -> tuple[list[Question], dict[str, int]]:
    """Valid questions in file order (a hub dataset: `split` at `revision`), and skipped rows
    counted by reason."""
    row_type = QUESTION_TYPES[benchmark]
    questions, skipped = [], Counter()
    seen: set[str] = set()
    for raw in read_rows(path, split, revision=revision):
        if raw.data is None:
            skipped["unreadable_row"] += 1
            log.warning("%s: row %d skipped (%s)", path, raw.number, raw.error)
            continue
        try:
            row = row_type.model_validate(raw.data)
        except ValidationError as error:
            first = error.errors()[0]
            reason = f"{'.'.join(str(p) for p in first['loc'][:1]) or 'row'}_{first['type']}"
            skipped[reason] += 1
            log.warning("%s: row %d skipped (%s)", path, raw.number, reason)
            continue
        question = to_question(benchmark, row, raw.number)
        if any(not turn.strip() for turn in question.turns):
            skipped["empty_turn"] += 1
            continue
        if question.id in seen:
            skipped["duplicate_id"] += 1
            continue
        seen.add(question.id)
        questions.append(question)
    return questions, dict(sorted(skipped.items()))


# ---------------------------------------------------------------------------------------------
# answering: multi-turn conversations, local models and endpoints
# ---------------------------------------------------------------------------------------------
