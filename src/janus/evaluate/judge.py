"""Stage `judge` (F.2): LLM-as-a-judge on the Multifaceted Bench.

Absolute grading: every response is graded once per rubric (instruction, system message,
response, reference answer and one rubric in; feedback and an integer 1-5 out). An item's score
is the mean of its rubric scores; a model's score per benchmark is the mean over items; the whole
judging is repeated `judge.repeats` times with different samples (sample_index), and the mean and
the spread (sample std) over repeats are reported.

Format: `structured` asks for {feedback, score} under a JSON schema (the local backend decodes
under it; the client re-asks invalid answers, `llm.judge.max_invalid_retries`); `text` asks for the
paper's "Feedback: ... [RESULT] N" and parses it strictly (`judge_parser`), re-asking an
unparseable answer as a new sample up to `judge.max_parse_retries` times.

What never becomes a number: a judgement still unparseable after its retries is "unparsed" (an
item's score is then the mean of its parsed rubrics; an item with none is "unscored"); an empty
model response is not sent to the judge at all, and is excluded from every mean and counted as
`empty_responses` next to the mean. Pairwise: both orders, the rule in `winrate`.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from janus.config import JudgeSection, LLMConfig, Params
from janus.evaluate.bench import read_bench
from janus.evaluate.judge_parser import (
    Judgement,
    JudgeParseError,
    absolute_schema,
    pairwise_schema,
    parse_absolute_object,
    parse_absolute_text,
    parse_pairwise_object,
    parse_pairwise_text,
)
from janus.evaluate.winrate import combine_orders, pair_key, tally
from janus.io import read_jsonl
from janus.logging_utils import get_logger
from janus.prompts import render_messages

log = get_logger(__name__)

RESPONSES_DIR = Path("outputs/responses")
JUDGE_DIR = Path("outputs/judge")
CONDITIONS = ("system", "no_system")
OVERALL = "overall"
# sample_index = seed * SEED_STRIDE + repeat * attempts_per_repeat + attempt: a new judge.seed
# or repeat asks for new samples, and no two (repeat, attempt) share one.
SEED_STRIDE = 1_000_000

Format = Literal["structured", "text"]


def resolve_format(judge: JudgeSection, llm: LLMConfig) -> Format:
    """`auto`: structured, unless the judge endpoint has no structured-output mode at all
    (`structured_output: prompt`, i.e. the schema could only be asked for in words)."""
    if judge.format != "auto":
        return judge.format
    return "text" if llm.backend == "openai" and llm.structured_output == "prompt" else "structured"


def sample_index(judge: JudgeSection, repeat: int, attempt: int) -> int:
    attempts = judge.max_parse_retries + 1
    index = repeat * attempts + attempt
    if index >= SEED_STRIDE:
        raise ValueError("judge.repeats x (max_parse_retries + 1) is too large")
    return judge.seed * SEED_STRIDE + index


# ---------------------------------------------------------------------------------------------
# inputs
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Response:
    model: str
    condition: str
    id: str
    text: str

    @property
    def empty(self) -> bool:
        return not self.text.strip()


def load_responses(
    responses_dir: Path, models: Sequence[str], bench_ids: set[str]
) -> tuple[list[Response], dict[str, Counter]]:
    """Every model's responses (`<dir>/<model>.jsonl`), and per model the rows skipped by reason.

    A row must name its model, a known bench id and a condition, and hold a string response;
    one (model, id, condition) answered twice keeps the first. A model without a file is an
    error: the judge would otherwise report a table without it.
    """
    responses, skipped = [], {}
    for model in models:
        path = responses_dir / f"{model}.jsonl"
        if not path.exists():
            raise FileNotFoundError(
                f"{path}: no responses for model {model!r} (run its infer stage)"
            )
        counts: Counter = Counter()
        seen = set()
        for number, row in enumerate(read_jsonl(path), start=1):
            reason = None
            if row.get("model") != model:
                reason = "wrong_model"
            elif row.get("condition") not in CONDITIONS:
                reason = "bad_condition"
            elif row.get("id") not in bench_ids:
                reason = "unknown_id"
            elif not isinstance(row.get("response"), str):
                reason = "missing_response"
            elif (row["id"], row["condition"]) in seen:
                reason = "duplicate"
            if reason:
                counts[reason] += 1
                if counts[reason] <= 3:
                    log.warning("%s:%d: response row skipped (%s)", path, number, reason)
                continue
            seen.add((row["id"], row["condition"]))
            responses.append(Response(model, row["condition"], row["id"], row["response"]))
        skipped[model] = counts
    return responses, skipped


# ---------------------------------------------------------------------------------------------
# asking the judge, with strict parsing and re-asking
# ---------------------------------------------------------------------------------------------


@dataclass
class Verdict:
    judgement: Judgement | None = None
    error: str | None = None
    reason: str | None = None  # the parse failure's metrics key
    attempts: int = 0

    @property
    def ok(self) -> bool:
        return self.judgement is not None


def ask(
    client: Any,
    count: int,
    make_request: Callable[[int, int], Any],
    parse: Callable[[Any], Judgement],
    retries: int,
    desc: str,
) -> list[Verdict]:
    """Ask for `count` judgements; `make_request(i, attempt)` builds one, `parse(result)` reads it
    or raises JudgeParseError. Unparseable answers are re-asked (a new sample) `retries` times."""
    verdicts = [Verdict() for _ in range(count)]
    pending = list(range(count))
    for attempt in range(retries + 1):
        if not pending:
            break
        label = desc if attempt == 0 else f"{desc} (re-ask {attempt})"
        results = client.generate([make_request(i, attempt) for i in pending], desc=label)
        still = []
        for index, result in zip(pending, results, strict=True):
            verdict = verdicts[index]
            verdict.attempts = attempt + 1
            try:
                if not result.ok:
                    raise JudgeParseError("llm_failed", result.error or "no answer")
                verdict.judgement = parse(result)
                verdict.error = verdict.reason = None
            except JudgeParseError as error:
                verdict.error, verdict.reason = str(error), error.reason
                still.append(index)
        pending = still
    return verdicts


def _parser(kind: Literal["absolute", "pairwise"], fmt: Format) -> Callable[[Any], Judgement]:
    if fmt == "structured":
        read = parse_absolute_object if kind == "absolute" else parse_pairwise_object
        return lambda result: read(result.parsed)
    read_text = parse_absolute_text if kind == "absolute" else parse_pairwise_text
    return lambda result: read_text(result.text)


# ---------------------------------------------------------------------------------------------
# absolute grading
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AbsoluteTask:
    response: Response
    rubric_index: int
    repeat: int


def absolute_request(
    task: AbsoluteTask, bench_row: dict[str, Any], judge: JudgeSection, fmt: Format, attempt: int
):
    from janus.llm import ChatRequest

    return ChatRequest(
        messages=render_messages(
            "judge_absolute",
            system=bench_row["system"],
            instruction=bench_row["prompt"],
            response=task.response.text,
            reference_answer=bench_row["reference_answer"],
            rubric=bench_row["rubrics"][task.rubric_index],
            output_format=fmt,
            feedback_max_chars=judge.feedback_max_chars,
        ),
        schema=absolute_schema(judge.feedback_max_chars) if fmt == "structured" else None,
        temperature=judge.generation.temperature,
        top_p=judge.generation.top_p,
        max_tokens=judge.generation.max_tokens,
        sample_index=sample_index(judge, task.repeat, attempt),
        tag=f"{task.response.model}/{task.response.condition}/{task.response.id}/r{task.rubric_index}/k{task.repeat}",
    )


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def summarize_scores(
    item_scores: dict[tuple[str, str, str, int], float],
    source_of: dict[str, str],
    repeats: int,
) -> dict[str, dict[str, dict[str, dict[str, Any]]]]:
    """{model: {condition: {source | overall: {mean, std, items}}}} from per-(model, condition,
    id, repeat) item scores. `mean` is the mean over repeats of each repeat's mean over items
    (the paper's "average of three evaluations"); `std` their sample std (None for one repeat)."""
    grouped: dict[tuple[str, str, str], dict[int, list[float]]] = defaultdict(
        lambda: defaultdict(list)
    )
    items: dict[tuple[str, str, str], set[str]] = defaultdict(set)
    for (model, condition, item_id, repeat), score in item_scores.items():
        for source in (source_of[item_id], OVERALL):
            grouped[(model, condition, source)][repeat].append(score)
            items[(model, condition, source)].add(item_id)
    summary: dict[str, dict[str, dict[str, dict[str, Any]]]] = {}
    for (model, condition, source), by_repeat in sorted(grouped.items()):
        means = [_mean(by_repeat[k]) for k in range(repeats) if by_repeat.get(k)]
        summary.setdefault(model, {}).setdefault(condition, {})[source] = {
            "mean": _mean(means),
            "std": statistics.stdev(means) if len(means) >= 2 else None,
            "items": len(items[(model, condition, source)]),
            "repeats": len(means),
        }
    return summary


def grade_absolute(
    client: Any,
    responses: list[Response],
    bench: dict[str, dict[str, Any]],
    judge: JudgeSection,
    fmt: Format,
) -> tuple[list[dict[str, Any]], dict[tuple[str, str, str, int], float]]:
    """Judgement rows (one per response, rubric and repeat) and item scores per repeat."""
    tasks = [
        AbsoluteTask(response, rubric_index, repeat)
        for repeat in range(judge.repeats)
        for response in responses
        if not response.empty
        for rubric_index in range(len(bench[response.id]["rubrics"]))
    ]
    verdicts = ask(
        client,
        len(tasks),
        lambda i, attempt: absolute_request(
            tasks[i], bench[tasks[i].response.id], judge, fmt, attempt
        ),
        _parser("absolute", fmt),
        judge.max_parse_retries if fmt == "text" else 0,
        "judge (absolute)",
    )
    rows = []
    rubric_scores: dict[tuple[str, str, str, int], list[int]] = defaultdict(list)
    for task, verdict in zip(tasks, verdicts, strict=True):
        response = task.response
        rows.append(
            {
                "model": response.model,
                "condition": response.condition,
                "id": response.id,
                "source": bench[response.id]["source"],
                "repeat": task.repeat,
                "rubric_index": task.rubric_index,
                "score": verdict.judgement.verdict if verdict.ok else None,
                "feedback": verdict.judgement.feedback if verdict.ok else None,
                "status": "ok" if verdict.ok else "unparsed",
                "error": verdict.error,
                "reason": verdict.reason,
                "attempts": verdict.attempts,
            }
        )
        if verdict.ok:
            key = (response.model, response.condition, response.id, task.repeat)
            rubric_scores[key].append(verdict.judgement.verdict)
    item_scores = {key: sum(scores) / len(scores) for key, scores in rubric_scores.items()}
    return rows, item_scores


# ---------------------------------------------------------------------------------------------
# pairwise comparison
# ---------------------------------------------------------------------------------------------


def pairwise_request(
    bench_row: dict[str, Any],
    first: str,
    second: str,
    judge: JudgeSection,
    fmt: Format,
    repeat: int,
    attempt: int,
    tag: str,
):
    from janus.llm import ChatRequest

    return ChatRequest(
        messages=render_messages(
            "judge_pairwise",
            system=bench_row["system"],
            instruction=bench_row["prompt"],
            response_a=first,
            response_b=second,
            reference_answer=bench_row["reference_answer"],
            rubrics=bench_row["rubrics"],
            output_format=fmt,
            feedback_max_chars=judge.feedback_max_chars,
        ),
        schema=pairwise_schema(judge.feedback_max_chars) if fmt == "structured" else None,
        temperature=judge.generation.temperature,
        top_p=judge.generation.top_p,
        max_tokens=judge.generation.max_tokens,
        sample_index=sample_index(judge, repeat, attempt),
        tag=tag,
    )


@dataclass(frozen=True)
class Comparison:
    model: str
    opponent: str
    item_id: str
    repeat: int
    x: Response  # the model's response
    y: Response  # the opponent's

    @property
    def empty(self) -> bool:
        return self.x.empty or self.y.empty


def compare_pairs(
    client: Any,
    responses: list[Response],
    bench: dict[str, dict[str, Any]],
    judge: JudgeSection,
    fmt: Format,
) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
    """Comparison rows (one per pair, item and repeat, both orders inside) and win/tie/loss."""
    by_key = {(r.model, r.condition, r.id): r for r in responses}
    condition = judge.pairwise_condition
    comparisons = []
    for model, opponent in judge.pairwise:
        for item_id in bench:
            x = by_key.get((model, condition, item_id))
            y = by_key.get((opponent, condition, item_id))
            if x is None or y is None:
                continue  # not answered by both (infer.max_items, a skipped row): no comparison
            for repeat in range(judge.repeats):
                comparisons.append(Comparison(model, opponent, item_id, repeat, x, y))
    # Both orders of every comparison with two non-empty responses: (comparison index, x first).
    orders = [
        (index, x_first)
        for index, comparison in enumerate(comparisons)
        if not comparison.empty
        for x_first in (True, False)
    ]

    def make(i: int, attempt: int):
        index, x_first = orders[i]
        c = comparisons[index]
        first, second = (c.x.text, c.y.text) if x_first else (c.y.text, c.x.text)
        tag = f"{pair_key(c.model, c.opponent)}/{c.item_id}/k{c.repeat}/{'xy' if x_first else 'yx'}"
        return pairwise_request(bench[c.item_id], first, second, judge, fmt, c.repeat, attempt, tag)

    verdicts = ask(
        client,
        len(orders),
        make,
        _parser("pairwise", fmt),
        judge.max_parse_retries if fmt == "text" else 0,
        "judge (pairwise)",
    )
    verdict_of = dict(zip(orders, verdicts, strict=True))
    rows, outcomes = [], defaultdict(list)
    for index, c in enumerate(comparisons):
        x_as_a, x_as_b = verdict_of.get((index, True)), verdict_of.get((index, False))
        asked = [v for v in (x_as_a, x_as_b) if v is not None]
        if c.empty:
            outcome = "empty"
        elif not (x_as_a.ok and x_as_b.ok):
            outcome = "unparsed"
        else:
            outcome = combine_orders(x_as_a.judgement.verdict, x_as_b.judgement.verdict)
        outcomes[pair_key(c.model, c.opponent)].append(outcome)
        rows.append(
            {
                "model": c.model,
                "opponent": c.opponent,
                "id": c.item_id,
                "source": bench[c.item_id]["source"],
                "condition": condition,
                "repeat": c.repeat,
                "verdict_model_as_a": x_as_a.judgement.verdict if x_as_a and x_as_a.ok else None,
                "verdict_model_as_b": x_as_b.judgement.verdict if x_as_b and x_as_b.ok else None,
                "outcome": outcome,
                "judgements": len(asked),
                "unparsed_reasons": [v.reason for v in asked if not v.ok],
            }
        )
    summary = {pair_key(m, o): tally(outcomes.get(pair_key(m, o), [])) for m, o in judge.pairwise}
    return rows, summary


# ---------------------------------------------------------------------------------------------
# the stage
# ---------------------------------------------------------------------------------------------


@dataclass
class JudgeOutputs:
    absolute: list[dict[str, Any]]
    item_scores: list[dict[str, Any]]
    pairwise: list[dict[str, Any]]
    metrics: dict[str, Any]


def run_judge(
    params: Params, bench_path: Path | str, responses_dir: Path | str = RESPONSES_DIR
) -> JudgeOutputs:
    from janus.llm import LLMClient, check_failed_fraction

    judge = params.judge
    fmt = resolve_format(judge, params.llm.judge)
    bench_rows, bench_dropped = read_bench(bench_path)
    if not bench_rows:
        raise ValueError(f"{bench_path}: no usable bench row ({dict(bench_dropped)})")
    bench = {row["id"]: row for row in bench_rows}
    models = params.infer.model_names()
    for model, opponent in judge.pairwise:
        for name in (model, opponent):
            if name not in models:
                raise ValueError(
                    f"judge.pairwise names {name!r}, which infer does not produce ({models})"
                )
    responses, skipped = load_responses(Path(responses_dir), models, set(bench))
    log.info("judge (%s format): %d responses of %d models", fmt, len(responses), len(models))

    with LLMClient(params.llm.judge, stage="judge") as client:
        absolute_rows, item_scores = grade_absolute(client, responses, bench, judge, fmt)
        pairwise_rows, pairwise = compare_pairs(client, responses, bench, judge, fmt)

    source_of = {item_id: row["source"] for item_id, row in bench.items()}
    scores = summarize_scores(item_scores, source_of, judge.repeats)
    counts: dict[str, dict[str, dict[str, Any]]] = {}
    for model in models:
        for condition in CONDITIONS:
            mine = [r for r in responses if r.model == model and r.condition == condition]
            if not mine:
                continue
            judged = [
                r for r in absolute_rows if r["model"] == model and r["condition"] == condition
            ]
            scored = {(k[2], k[3]) for k in item_scores if k[0] == model and k[1] == condition}
            counts.setdefault(model, {})[condition] = {
                "responses": len(mine),
                "empty_responses": sum(r.empty for r in mine),
                "judgements": len(judged),
                "unparsed_judgements": sum(r["status"] != "ok" for r in judged),
                # non-empty responses x repeats without a single parsed rubric score
                "unscored_items": sum(not r.empty for r in mine) * judge.repeats - len(scored),
            }
        counts.setdefault(model, {})["skipped_rows"] = sum(skipped[model].values())
    reasons = Counter(r["reason"] for r in absolute_rows if r["status"] != "ok")
    for row in pairwise_rows:
        reasons.update(row["unparsed_reasons"])
    total = len(absolute_rows) + sum(row["judgements"] for row in pairwise_rows)
    unparsed = sum(reasons.values())
    check_failed_fraction("judge", dict(reasons), total, judge.max_failed_fraction)
    item_rows = [
        {
            "model": model,
            "condition": condition,
            "id": item_id,
            "source": source_of[item_id],
            "repeat": repeat,
            "score": score,
        }
        for (model, condition, item_id, repeat), score in sorted(item_scores.items())
    ]
    metrics = {
        "format": fmt,
        "repeats": judge.repeats,
        "scores": scores,
        "counts": counts,
        "pairwise": pairwise,
        "parse": {
            "judgements": total,
            "unparsed": unparsed,
            "unparsed_rate": unparsed / total if total else None,
            "reasked": sum(r["attempts"] > 1 for r in absolute_rows),
            "reasons": dict(sorted(reasons.items())),
        },
        "bench": {"rows": len(bench_rows), "dropped": dict(sorted(bench_dropped.items()))},
        "llm": client.stats.as_metrics(),
    }
    return JudgeOutputs(absolute_rows, item_rows, pairwise_rows, metrics)
