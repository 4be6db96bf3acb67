"""Stage `judge` (F.2): LLM-as-a-judge on the Multifaceted Bench.

Absolute grading, as the paper did: every response is graded once per rubric (4 per item) in the
Prometheus absolute-grading layout (task description, instruction, response, reference answer,
score rubric; "Feedback: ... [RESULT] N"). F.2 and the official script give the judge no system
message; `judge.include_system_message` adds it (the F.2 setting is off). An item's score is the
mean of its rubric scores; a model's score per Table 2 column is the mean over items; the whole
judging is repeated `judge.repeats` times (sample_index), and the mean over repeats is reported
with the sample std over repeats and a bootstrap 95% CI over bench items (`stats`).

Format: `structured` asks for `rows.AbsoluteJudgement` under its JSON schema; `text` asks for the
paper's text and parses it strictly (`judge_parser`). Either way there is ONE re-ask mechanism:
the parse function is handed to `LLMClient.generate`, which re-asks a rejected answer as a new
sample up to `llm.judge.max_invalid_retries` times; what is still unreadable is "unparsed",
counted by reason and kept out of every mean (an item's score is then the mean of its parsed
rubrics; an item with none is "unscored"). An empty model response is not sent to the judge.

Several judges (`judge.judges`, roles in `llm`): the first, the primary, grades everything below
and its numbers are the report's and the scorecard's; every other judge grades the same
responses on their own rubrics (absolute only), each row carrying its judge's role, so that an
LLM-free step can compare judges (the report's agreement, the scorecard's same-judge section).
A judge's position in the list is folded into its samples' index, so a second judge that is the
same model as the first draws its own samples instead of reading the first one's from the cache.

Also here: pairwise comparison in both orders (`winrate`; the judge sees the system message
there, as the paper's human raters did in F.1), judge health (repeat agreement,
position flips, score-length correlation, the Table 8 gap with its CI) and steerability: each
system-condition response is graded against the rubrics of another system message of the same
instruction; matched minus mismatched says how much the system message changed the answer.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

from janus.config.infer import InferSection
from janus.config.judge import JudgeSection
from janus.config.llm import LLMConfig, LLMSection
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
from janus.evaluate.rows import JudgementRow, ResponseRow, validate_rows
from janus.evaluate.stats import (
    bootstrap_mean_ci,
    bootstrap_rate_ci,
    flip_rate,
    paired_difference,
    pearson,
    repeat_agreement,
)
from janus.evaluate.winrate import OUTCOMES, combine_orders, order_outcomes, pair_key, tally
from janus.io import read_jsonl
from janus.logging_utils import get_logger
from janus.prompts import render_messages

log = get_logger(__name__)

CONDITIONS = ("system", "no_system")
OVERALL = "overall"
# sample_index = seed * SEED_STRIDE + repeat: a new judge.seed or repeat asks for new samples
# (re-asks after an unreadable answer are the client's: a new attempt number in the cache key).
SEED_STRIDE = 1_000_000

Format = Literal["structured", "text"]


def resolve_format(judge: JudgeSection, llm: LLMConfig) -> Format:
    """`auto`: structured, unless the judge endpoint has no structured-output mode at all
    (`structured_output: prompt`, i.e. the schema could only be asked for in words)."""
    if judge.format != "auto":
        return judge.format
    return "text" if llm.backend == "openai" and llm.structured_output == "prompt" else "structured"


# sample_index += judge position * JUDGE_STRIDE: the primary (position 0) keeps its samples.
JUDGE_STRIDE = 1_000


def sample_index(judge: JudgeSection, repeat: int, position: int = 0) -> int:
    if repeat >= JUDGE_STRIDE:
        raise ValueError("judge.repeats is too large")
    return judge.seed * SEED_STRIDE + position * JUDGE_STRIDE + repeat


def judge_label(config: LLMConfig) -> str:
    """How a judge is named in reports: its model, with the revision that pins it."""
    return f"{config.model}@{config.model_revision}" if config.model_revision else config.model


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
    """Every model's responses (`<dir>/<model>.jsonl`, `rows.ResponseRow`), and per model the
    rows skipped by reason. One (model, id, condition) answered twice keeps the first. A model
    without a file is an error: the judge would otherwise report a table without it."""
    responses, skipped = [], {}
    for model in models:
        path = responses_dir / f"{model}.jsonl"
        if not path.exists():
            raise FileNotFoundError(
                f"{path}: no responses for model {model!r} (run its infer stage)"
            )
        raw = list(read_jsonl(path))
        counts: Counter = Counter()
        seen = set()
        for number, row in enumerate(raw, start=1):
            valid, reasons, _ = validate_rows(ResponseRow, [row])
            reason = None
            if reasons:
                bad_condition = isinstance(row, dict) and row.get("condition") not in CONDITIONS
                reason = "bad_condition" if bad_condition else next(iter(reasons))
            elif valid[0].model != model:
                reason = "wrong_model"
            elif valid[0].id not in bench_ids:
                reason = "unknown_id"
            elif (valid[0].id, valid[0].condition) in seen:
                reason = "duplicate"
            if reason:
                counts[reason] += 1
                if counts[reason] <= 3:
                    log.warning("%s:%d: response row skipped (%s)", path, number, reason)
                continue
            item = valid[0]
            seen.add((item.id, item.condition))
            responses.append(Response(model, item.condition, item.id, item.response))
        skipped[model] = counts
    return responses, skipped


# ---------------------------------------------------------------------------------------------
# asking the judge: one client call per kind, the client re-asks what `parse` rejects
# ---------------------------------------------------------------------------------------------


@dataclass
class Verdict:
    judgement: Judgement | None
    error: str | None
    reason: str | None  # the rejection's metrics key
    attempts: int

    @property
    def ok(self) -> bool:
        return self.judgement is not None


def parse_function(kind: Literal["absolute", "pairwise"], fmt: Format) -> Callable[[Any], Any]:
    """What the LLM client calls on each answer: a Judgement, or JudgeParseError (a re-ask)."""
    if fmt == "structured":
        read = parse_absolute_object if kind == "absolute" else parse_pairwise_object
        return lambda result: read(result.parsed)
    read_text = parse_absolute_text if kind == "absolute" else parse_pairwise_text
    return lambda result: read_text(result.text)


def verdict_of(result: Any) -> Verdict:
    if result.ok:
        return Verdict(result.parsed, None, None, result.attempts)
    rejection = getattr(result, "rejection", None)
    if isinstance(rejection, JudgeParseError):
        reason = rejection.reason
    elif rejection is not None:
        reason = "invalid_output"  # not JSON / schema violation in structured mode
    else:
        reason = "llm_failed"
    return Verdict(None, result.error, reason, result.attempts)


def ask(
    client: Any, requests: list[Any], kind: Literal["absolute", "pairwise"], fmt: Format, desc: str
) -> list[Verdict]:
    results = client.generate(requests, desc=desc, parse=parse_function(kind, fmt))
    return [verdict_of(result) for result in results]


# ---------------------------------------------------------------------------------------------
# absolute grading
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AbsoluteTask:
    response: Response
    rubric_of: str  # the bench row whose rubric and reference answer are used
    rubric_index: int
    repeat: int
    kind: Literal["own", "mismatched"]


def absolute_request(
    task: AbsoluteTask,
    prompt: str,
    graded_against: dict[str, Any],
    judge: JudgeSection,
    fmt: Format,
    position: int = 0,
):
    from janus.llm import ChatRequest

    rubric = graded_against["rubrics"][task.rubric_index]
    return ChatRequest(
        messages=render_messages(
            "judge_absolute",
            system=graded_against["system"] if judge.include_system_message else None,
            instruction=prompt,
            response=task.response.text,
            reference_answer=graded_against["reference_answer"],
            criteria=rubric["criteria"],
            score_descriptions=rubric["score_descriptions"],
            output_format=fmt,
            feedback_max_chars=judge.feedback_max_chars,
        ),
        schema=absolute_schema(judge.feedback_max_chars) if fmt == "structured" else None,
        temperature=judge.generation.temperature,
        top_p=judge.generation.top_p,
        max_tokens=judge.generation.max_tokens,
        sample_index=sample_index(judge, task.repeat, position),
        tag=(
            f"{task.response.model}/{task.response.condition}/{task.response.id}/{task.kind}/"
            f"r{task.rubric_index}/k{task.repeat}"
        ),
    )


def steerability_partners(bench: dict[str, dict[str, Any]]) -> dict[str, str]:
    """Each bench row -> another row of the same instruction (the next one by id, cyclically);
    rows whose instruction has a single system message have no partner."""
    by_instruction: dict[str, list[str]] = defaultdict(list)
    for item_id, row in bench.items():
        by_instruction[row["instruction_id"]].append(item_id)
    partners = {}
    for ids in by_instruction.values():
        ids = sorted(ids)
        if len(ids) >= 2:
            for index, item_id in enumerate(ids):
                partners[item_id] = ids[(index + 1) % len(ids)]
    return partners


def absolute_tasks(
    responses: list[Response],
    bench: dict[str, dict[str, Any]],
    judge: JudgeSection,
    partners: dict[str, str],
) -> list[AbsoluteTask]:
    tasks = [
        AbsoluteTask(response, response.id, rubric_index, repeat, "own")
        for repeat in range(judge.repeats)
        for response in responses
        if not response.empty
        for rubric_index in range(len(bench[response.id]["rubrics"]))
    ]
    tasks += [
        AbsoluteTask(response, partners[response.id], rubric_index, repeat, "mismatched")
        for repeat in range(judge.steerability_repeats)
        for response in responses
        if not response.empty and response.condition == "system" and response.id in partners
        for rubric_index in range(len(bench[partners[response.id]]["rubrics"]))
    ]
    return tasks


def grade_absolute(
    client: Any,
    responses: list[Response],
    bench: dict[str, dict[str, Any]],
    judge: JudgeSection,
    fmt: Format,
    partners: dict[str, str] | None = None,
    role: str = "judge",
    position: int = 0,
) -> list[dict[str, Any]]:
    """Judgement rows (`rows.JudgementRow`) of judge `role`: one per response, rubric and
    repeat, own rubrics first, then (steerability) another system message's."""
    tasks = absolute_tasks(responses, bench, judge, partners or {})
    requests = [
        absolute_request(
            task, bench[task.response.id]["prompt"], bench[task.rubric_of], judge, fmt, position
        )
        for task in tasks
    ]
    verdicts = ask(client, requests, "absolute", fmt, f"{role} (absolute)")
    rows = []
    for task, verdict in zip(tasks, verdicts, strict=True):
        response = task.response
        row = JudgementRow(
            judge=role,
            model=response.model,
            condition=response.condition,
            id=response.id,
            source=bench[response.id]["source"],
            benchmark=bench[response.id]["benchmark"],
            kind=task.kind,
            rubric_of=task.rubric_of,
            rubric_index=task.rubric_index,
            repeat=task.repeat,
            score=verdict.judgement.verdict if verdict.ok else None,
            feedback=verdict.judgement.feedback if verdict.ok else None,
            status="ok" if verdict.ok else "unparsed",
            reason=verdict.reason,
            error=verdict.error,
            attempts=verdict.attempts,
        )
        rows.append(row.model_dump())
    return rows


def item_scores_of(
    rows: list[dict[str, Any]], kind: str = "own"
) -> dict[tuple[str, str, str, int], float]:
    """(model, condition, id, repeat) -> the mean of that item's parsed rubric scores."""
    rubric_scores: dict[tuple[str, str, str, int], list[int]] = defaultdict(list)
    for row in rows:
        if row["kind"] == kind and row["status"] == "ok":
            key = (row["model"], row["condition"], row["id"], row["repeat"])
            rubric_scores[key].append(row["score"])
    return {key: sum(scores) / len(scores) for key, scores in rubric_scores.items()}


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def per_item_means(
    item_scores: dict[tuple[str, str, str, int], float],
) -> dict[tuple[str, str], dict[str, float]]:
    """(model, condition) -> {id: the item's score averaged over its scored repeats}."""
    collected: dict[tuple[str, str], dict[str, list[float]]] = defaultdict(
        lambda: defaultdict(list)
    )
    for (model, condition, item_id, _), score in item_scores.items():
        collected[(model, condition)][item_id].append(score)
    return {
        key: {item_id: sum(v) / len(v) for item_id, v in items.items()}
        for key, items in collected.items()
    }


def summarize_scores(
    item_scores: dict[tuple[str, str, str, int], float],
    column_of: dict[str, str],
    repeats: int,
    resamples: int = 1000,
    seed: int = 0,
) -> dict[str, dict[str, dict[str, dict[str, Any]]]]:
    """{model: {condition: {column | overall: {items, mean, std, repeats, ci95}}}} from
    per-(model, condition, id, repeat) item scores. `mean` is the mean over repeats of each
    repeat's mean over items (the paper's "average of three evaluations"); `std` their sample
    std (None for one repeat); `ci95` the bootstrap interval of the mean over items of each
    item's repeat-averaged score (bench items resampled)."""
    grouped: dict[tuple[str, str, str], dict[int, list[float]]] = defaultdict(
        lambda: defaultdict(list)
    )
    per_item: dict[tuple[str, str, str], dict[str, list[float]]] = defaultdict(
        lambda: defaultdict(list)
    )
    for (model, condition, item_id, repeat), score in item_scores.items():
        for column in (column_of[item_id], OVERALL):
            grouped[(model, condition, column)][repeat].append(score)
            per_item[(model, condition, column)][item_id].append(score)
    summary: dict[str, dict[str, dict[str, dict[str, Any]]]] = {}
    for (model, condition, column), by_repeat in sorted(grouped.items()):
        means = [_mean(by_repeat[k]) for k in range(repeats) if by_repeat.get(k)]
        item_values = [
            sum(v) / len(v) for _, v in sorted(per_item[(model, condition, column)].items())
        ]
        summary.setdefault(model, {}).setdefault(condition, {})[column] = {
            "items": len(item_values),
            "mean": _mean(means),
            "std": statistics.stdev(means) if len(means) >= 2 else None,
            "repeats": len(means),
            "ci95": bootstrap_mean_ci(item_values, resamples, seed),
        }
    return summary


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
        sample_index=sample_index(judge, repeat),
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
    role: str = "judge",
) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
    """Comparison rows (one per pair, item and repeat, both orders inside) and, per pair,
    win/tie/loss with bootstrap 95% CIs of the rates (bench items resampled)."""
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
    requests = []
    for index, x_first in orders:
        c = comparisons[index]
        first, second = (c.x.text, c.y.text) if x_first else (c.y.text, c.x.text)
        tag = f"{pair_key(c.model, c.opponent)}/{c.item_id}/k{c.repeat}/{'xy' if x_first else 'yx'}"
        requests.append(
            pairwise_request(bench[c.item_id], first, second, judge, fmt, c.repeat, tag)
        )
    verdicts = dict(
        zip(orders, ask(client, requests, "pairwise", fmt, "judge (pairwise)"), strict=True)
    )
    rows = []
    outcomes: dict[str, list[str]] = defaultdict(list)
    per_item: dict[str, dict[str, Counter]] = defaultdict(lambda: defaultdict(Counter))
    for index, c in enumerate(comparisons):
        x_as_a, x_as_b = verdicts.get((index, True)), verdicts.get((index, False))
        asked = [v for v in (x_as_a, x_as_b) if v is not None]
        if c.empty:
            outcome = "empty"
        elif not (x_as_a.ok and x_as_b.ok):
            outcome = "unparsed"
        else:
            outcome = combine_orders(x_as_a.judgement.verdict, x_as_b.judgement.verdict)
        key = pair_key(c.model, c.opponent)
        outcomes[key].append(outcome)
        per_item[key][c.item_id][outcome] += 1
        rows.append(
            {
                "judge": role,
                "model": c.model,
                "opponent": c.opponent,
                "id": c.item_id,
                "source": bench[c.item_id]["source"],
                "benchmark": bench[c.item_id]["benchmark"],
                "condition": condition,
                "repeat": c.repeat,
                "verdict_model_as_a": x_as_a.judgement.verdict if x_as_a and x_as_a.ok else None,
                "verdict_model_as_b": x_as_b.judgement.verdict if x_as_b and x_as_b.ok else None,
                "outcome": outcome,
                "judgements": len(asked),
                "unparsed_reasons": [v.reason for v in asked if not v.ok],
            }
        )
    summary = {}
    for model, opponent in judge.pairwise:
        key = pair_key(model, opponent)
        entry = tally(outcomes.get(key, []))
        counts = [per_item[key][item_id] for item_id in sorted(per_item[key])]
        rates = {f"{o}_rate": (o,) for o in OUTCOMES} | {"win_or_tie_rate": ("win", "tie")}
        entry["ci95"] = {
            name: bootstrap_rate_ci(
                counts, wanted, OUTCOMES, judge.bootstrap_resamples, judge.bootstrap_seed
            )
            for name, wanted in rates.items()
        }
        summary[key] = entry
    return rows, summary


# ---------------------------------------------------------------------------------------------
# judge health and steerability
# ---------------------------------------------------------------------------------------------


def judge_health(
    absolute_rows: list[dict[str, Any]],
    pairwise_rows: list[dict[str, Any]],
    responses: list[Response],
    item_means: dict[tuple[str, str], dict[str, float]],
    judge: JudgeSection,
) -> dict[str, Any]:
    """How far the judge can be trusted: agreement between repeats, position flips in pairwise
    comparisons, correlation of score with response length, and the Table 8 gap with its CI."""
    repeats: dict[tuple[str, str, str, int], list[int]] = defaultdict(list)
    for row in absolute_rows:
        if row["kind"] == "own" and row["status"] == "ok":
            repeats[(row["model"], row["condition"], row["id"], row["rubric_index"])].append(
                row["score"]
            )
    order_pairs = [
        order_outcomes(row["verdict_model_as_a"], row["verdict_model_as_b"])
        for row in pairwise_rows
        if row["verdict_model_as_a"] is not None and row["verdict_model_as_b"] is not None
    ]
    length_of = {(r.model, r.condition, r.id): len(r.text) for r in responses}
    lengths: dict[str, Any] = {}
    pooled_x, pooled_y = [], []
    for (model, condition), items in sorted(item_means.items()):
        xs = [length_of[(model, condition, item_id)] for item_id in sorted(items)]
        ys = [items[item_id] for item_id in sorted(items)]
        pooled_x += xs
        pooled_y += ys
        lengths.setdefault(model, {})[condition] = {"items": len(xs), "pearson": pearson(xs, ys)}
    gaps = {}
    for model in sorted({model for model, _ in item_means}):
        with_system = item_means.get((model, "system"), {})
        without = item_means.get((model, "no_system"), {})
        if with_system and without:
            gaps[model] = paired_difference(
                with_system, without, judge.bootstrap_resamples, judge.bootstrap_seed
            )
    return {
        "repeat_agreement": repeat_agreement(list(repeats.values())),
        "position_flip": flip_rate(order_pairs),
        "length_correlation": {
            "pooled": {"items": len(pooled_x), "pearson": pearson(pooled_x, pooled_y)},
            "by_model": lengths,
        },
        # Table 8: with minus without a system message at test time, paired over items
        "system_message_gap": gaps,
    }


def steerability(
    absolute_rows: list[dict[str, Any]],
    item_means: dict[tuple[str, str], dict[str, float]],
    partners: dict[str, str],
    judge: JudgeSection,
) -> dict[str, Any]:
    """Per model: the system-condition score against its own rubrics (matched) minus against
    another system message's of the same instruction (mismatched), paired over items."""
    if judge.steerability_repeats == 0:
        return {}
    mismatched = per_item_means(item_scores_of(absolute_rows, "mismatched"))
    result = {}
    for (model, condition), items in sorted(mismatched.items()):
        matched = {
            item_id: score
            for item_id, score in item_means.get((model, condition), {}).items()
            if item_id in partners
        }
        entry = paired_difference(matched, items, judge.bootstrap_resamples, judge.bootstrap_seed)
        common = set(matched) & set(items)
        entry["matched_mean"] = _mean([matched[i] for i in sorted(common)])
        entry["mismatched_mean"] = _mean([items[i] for i in sorted(common)])
        result[model] = entry
    return result


# ---------------------------------------------------------------------------------------------
# the stage
# ---------------------------------------------------------------------------------------------


@dataclass
class JudgeOutputs:
    absolute: list[dict[str, Any]]
    item_scores: list[dict[str, Any]]
    pairwise: list[dict[str, Any]]
    metrics: dict[str, Any]


def parse_summary(
    absolute_rows: list[dict[str, Any]], pairwise_rows: list[dict[str, Any]]
) -> dict[str, Any]:
    reasons = Counter(r["reason"] for r in absolute_rows if r["status"] != "ok")
    for row in pairwise_rows:
        reasons.update(row["unparsed_reasons"])
    total = len(absolute_rows) + sum(row["judgements"] for row in pairwise_rows)
    unparsed = sum(reasons.values())
    return {
        "judgements": total,
        "unparsed": unparsed,
        "unparsed_rate": unparsed / total if total else None,
        "reasked": sum(r["attempts"] > 1 for r in absolute_rows),
        "reasons": dict(sorted(reasons.items())),
        "rate_by_reason": {k: v / total for k, v in sorted(reasons.items())} if total else {},
    }


class JudgeParams(Protocol):
    """The sections the judge stage reads: `load_sections(...)` of them, or the whole Params."""

    llm: LLMSection
    infer: InferSection
    judge: JudgeSection


def item_score_rows(
    role: str, item_scores: dict[tuple[str, str, str, int], float], bench: dict[str, dict]
) -> list[dict[str, Any]]:
    return [
        {
            "judge": role,
            "model": model,
            "condition": condition,
            "id": item_id,
            "source": bench[item_id]["source"],
            "benchmark": bench[item_id]["benchmark"],
            "repeat": repeat,
            "score": score,
        }
        for (model, condition, item_id, repeat), score in sorted(item_scores.items())
    ]


def second_opinion(
    params: JudgeParams,
    role: str,
    position: int,
    responses: list[Response],
    bench: dict[str, dict[str, Any]],
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """A judge other than the primary: its absolute judgements of every response on its own
    rubrics, and its metrics entry (scores, parse record, LLM usage)."""
    from janus.llm import LLMClient, check_failed_fraction

    judge, config = params.judge, getattr(params.llm, role)
    fmt = resolve_format(judge, config)
    log.info("%s (%s format, %s): second opinion", role, fmt, judge_label(config))
    with LLMClient(config, stage=f"judge.{role}") as client:
        rows = grade_absolute(client, responses, bench, judge, fmt, {}, role, position)
    parse = parse_summary(rows, [])
    check_failed_fraction(
        f"judge ({role})", parse["reasons"], parse["judgements"], judge.max_failed_fraction
    )
    column_of = {item_id: row["benchmark"] for item_id, row in bench.items()}
    scores = summarize_scores(
        item_scores_of(rows),
        column_of,
        judge.repeats,
        judge.bootstrap_resamples,
        judge.bootstrap_seed,
    )
    metrics = {"format": fmt, "scores": scores, "parse": parse, "llm": client.stats.as_metrics()}
    return rows, metrics


def run_judge(
    params: JudgeParams, bench_path: Path | str, responses_dir: Path | str
) -> JudgeOutputs:
    from janus.llm import LLMClient, check_failed_fraction

    judge = params.judge
    primary, *others = judge.judges
    primary_config = getattr(params.llm, primary)
    fmt = resolve_format(judge, primary_config)
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
    partners = steerability_partners(bench) if judge.steerability_repeats else {}
    log.info(
        "%s (%s format, %s): %d responses of %d models",
        primary, fmt, judge_label(primary_config), len(responses), len(models),
    )

    with LLMClient(primary_config, stage="judge") as client:
        absolute_rows = grade_absolute(
            client, responses, bench, judge, fmt, partners, primary, 0
        )
        pairwise_rows, pairwise = compare_pairs(client, responses, bench, judge, fmt, primary)
    parse = parse_summary(absolute_rows, pairwise_rows)
    check_failed_fraction("judge", parse["reasons"], parse["judgements"], judge.max_failed_fraction)
    second_rows, second_metrics = [], {}
    for position, role in enumerate(others, start=1):
        rows, second_metrics[role] = second_opinion(params, role, position, responses, bench)
        second_rows += rows

    column_of = {item_id: row["benchmark"] for item_id, row in bench.items()}
    item_scores = item_scores_of(absolute_rows)
    item_means = per_item_means(item_scores)
    scores = summarize_scores(
        item_scores, column_of, judge.repeats, judge.bootstrap_resamples, judge.bootstrap_seed
    )
    counts: dict[str, dict[str, dict[str, Any]]] = {}
    for model in models:
        for condition in CONDITIONS:
            mine = [r for r in responses if r.model == model and r.condition == condition]
            if not mine:
                continue
            judged = [
                r
                for r in absolute_rows
                if r["model"] == model and r["condition"] == condition and r["kind"] == "own"
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
    item_rows = item_score_rows(primary, item_scores, bench)
    for role in others:
        own = [row for row in second_rows if row["judge"] == role]
        item_rows += item_score_rows(role, item_scores_of(own), bench)
    metrics = {
        "format": fmt,
        "repeats": judge.repeats,
        "include_system_message": judge.include_system_message,
        # who graded: the primary's numbers are the ones below; `second_opinions` the others'
        "judges": [
            {
                "role": role,
                "primary": role == primary,
                "backend": getattr(params.llm, role).backend,
                "model": getattr(params.llm, role).model,
                "model_revision": getattr(params.llm, role).model_revision,
                "label": judge_label(getattr(params.llm, role)),
            }
            for role in judge.judges
        ],
        "scores": scores,
        "counts": counts,
        "pairwise": pairwise,
        "parse": parse,
        "health": judge_health(absolute_rows, pairwise_rows, responses, item_means, judge),
        "steerability": steerability(absolute_rows, item_means, partners, judge),
        "bench": {"rows": len(bench_rows), "dropped": dict(sorted(bench_dropped.items()))},
        "llm": client.stats.as_metrics(),
        "second_opinions": second_metrics,
    }
    return JudgeOutputs(absolute_rows + second_rows, item_rows, pairwise_rows, metrics)
