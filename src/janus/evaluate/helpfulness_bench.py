"""Helpfulness benchmarks of Table 3 (5.2, F.3): each model's answers in each tool's own format.

The official judges (AlpacaEval 2.0, FastChat's MT-Bench `gen_judgment.py`, Arena-Hard-Auto
v0.1's `gen_judgment.py`) then run on the files unchanged. One stage per benchmark
(`helpfulness@<benchmark>`) answers that benchmark's prompts with every model in
`helpfulness.models` (a checkpoint, a hub model or an endpoint model, as in `infer`):

- AlpacaEval 2.0 — questions: the eval set (JSON list of {instruction, dataset, ...});
  answers: `<out>/<model>.json`, a JSON list of {instruction, output, generator, dataset}
  (`alpaca_eval --model_outputs <file>`).
- MT-Bench — questions: FastChat `data/mt_bench/question.jsonl` ({question_id, category,
  turns: [str, str]}); answers: `<out>/model_answer/<model>.jsonl`, one row per question:
  {question_id, answer_id, model_id, choices: [{index: 0, turns: [answer 1, answer 2]}], tstamp}.
  The second turn is answered with the first question and answer in the conversation.
- Arena-Hard-Auto v0.1 — questions: `data/arena-hard-v0.1/question.jsonl` ({question_id,
  category, cluster, turns: [{content}]}); answers: `<out>/model_answer/<model>.jsonl`:
  {question_id, answer_id, model_id, choices: [{index: 0, turns: [{content}]}], tstamp}.

`answer_id` is derived from (model, question, answer) and `tstamp` is 0.0, so that an unchanged
rerun writes identical files (the tools read neither). Local models use the prompt format they
were trained with and no system message; endpoint models get the conversation as chat turns.
Question rows the row type rejects are skipped and counted by reason; a prompt file with fewer
valid prompts than `max_prompts` stops the stage unless `allow_smaller` (janus.scale).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from janus.config.helpfulness import HelpfulnessSection
from janus.config.infer import InferSection
from janus.config.llm import LLMConfig
from janus.evaluate.helpfulness_questions import (  # noqa: F401 (re-exported)
    QUESTION_TYPES,
    AlpacaEvalQuestion,
    ArenaHardQuestion,
    ArenaHardTurn,
    MTBenchQuestion,
    Question,
    read_questions,
    to_question,
)
from janus.infer.engines import Engine, encode_prompts
from janus.infer.generation import open_generator
from janus.infer.responses import local_model
from janus.io import atomic_open, write_json, write_jsonl
from janus.logging_utils import get_logger
from janus.scale import require_rows

log = get_logger(__name__)

# ---------------------------------------------------------------------------------------------
# row types: the tools' question and answer formats
# ---------------------------------------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AlpacaEvalOutput(_Strict):
    """One entry of AlpacaEval's `model_outputs` JSON list."""

    instruction: str
    output: str
    generator: str
    dataset: str | None = None


class MTBenchChoice(_Strict):
    index: int
    turns: list[str]


class MTBenchAnswer(_Strict):
    """One line of FastChat's `model_answer/<model>.jsonl`."""

    question_id: int
    answer_id: str
    model_id: str
    choices: list[MTBenchChoice] = Field(min_length=1)
    tstamp: float


class ArenaHardChoice(_Strict):
    index: int
    turns: list[ArenaHardTurn]


class ArenaHardAnswer(_Strict):
    """One line of Arena-Hard-Auto's `model_answer/<model>.jsonl` (v0.1 `gen_answer.py`)."""

    question_id: str
    answer_id: str
    model_id: str
    choices: list[ArenaHardChoice] = Field(min_length=1)
    tstamp: float


@dataclass
class Answer:
    turns: list[str] = field(default_factory=list)
    tokens: list[int | None] = field(default_factory=list)
    cut: int = 0  # turns that stopped at max_tokens


def format_conversation(
    tokenizer: Any, turns: list[tuple[str, str | None]], prompt_format: str
) -> str:
    """The text before the next answer, for (user, assistant) turns whose last answer is None.
    mistral: the paper's format turn after turn, each answer closed by EOS as in training."""
    if prompt_format == "mistral":
        eos = tokenizer.eos_token or ""
        parts = []
        for user, assistant in turns:
            parts.append(f"[INST]{user} [/INST]")
            if assistant is not None:
                parts.append(f"{assistant}{eos}")
        return "".join(parts)
    if prompt_format == "chat_template":
        if getattr(tokenizer, "chat_template", None) is None:
            raise ValueError("prompt_format 'chat_template' needs a tokenizer with a chat template")
        messages = []
        for user, assistant in turns:
            messages.append({"role": "user", "content": user})
            if assistant is not None:
                messages.append({"role": "assistant", "content": assistant})
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    raise ValueError(f"unknown prompt_format {prompt_format!r}")


def answer_with_engine(
    engine: Engine,
    prompt_format: str,
    questions: list[Question],
    params: HelpfulnessSection,
    desc: str,
) -> list[Answer]:
    """Turn by turn: every question's turn t in one batch, with its earlier answers as context."""
    answers = [Answer() for _ in questions]
    for turn in range(max(len(q.turns) for q in questions)):
        todo = [i for i, q in enumerate(questions) if len(q.turns) > turn]
        texts = [
            format_conversation(
                engine.tokenizer,
                [
                    *zip(questions[i].turns[:turn], answers[i].turns, strict=True),
                    (questions[i].turns[turn], None),
                ],
                prompt_format,
            )
            for i in todo
        ]
        completions = engine.generate(
            encode_prompts(engine.tokenizer, texts),
            params.sampling,
            num_samples=1,
            seed=params.seed + turn,
            desc=f"{desc} turn {turn + 1}",
        )
        for i, samples in zip(todo, completions, strict=True):
            answers[i].turns.append(samples[0].text.strip())
            answers[i].tokens.append(samples[0].num_tokens)
            answers[i].cut += samples[0].finish_reason == "length"
    return answers


def answer_with_endpoint(
    config: LLMConfig,
    questions: list[Question],
    params: HelpfulnessSection,
    stage: str,
    client: Any = None,
) -> list[Answer]:
    """Turn by turn through the LLM client (cached, retried); a failed turn raises."""
    from janus.llm import ChatRequest, LLMClient

    owned = client is None
    client = client or LLMClient(config, stage=stage)
    answers = [Answer() for _ in questions]
    try:
        for turn in range(max(len(q.turns) for q in questions)):
            todo = [i for i, q in enumerate(questions) if len(q.turns) > turn]
            requests = []
            for i in todo:
                messages: list[dict[str, str]] = []
                for user, assistant in zip(questions[i].turns, answers[i].turns, strict=False):
                    messages += [
                        {"role": "user", "content": user},
                        {"role": "assistant", "content": assistant},
                    ]
                messages.append({"role": "user", "content": questions[i].turns[turn]})
                requests.append(
                    ChatRequest(
                        messages=messages,
                        temperature=params.sampling.temperature,
                        top_p=params.sampling.top_p,
                        max_tokens=params.sampling.max_tokens,
                        sample_index=params.seed,
                        tag=f"{questions[i].id}/turn{turn + 1}",
                    )
                )
            results = client.generate(requests, desc=f"{stage} turn {turn + 1}")
            for i, result in zip(todo, results, strict=True):
                if not result.ok or result.text is None:
                    raise RuntimeError(
                        f"{stage}: question {questions[i].id} turn {turn + 1} failed after "
                        f"the client's retries: {result.error} (answers so far are cached)"
                    )
                answers[i].turns.append(result.text.strip())
                answers[i].tokens.append(result.completion_tokens or None)
    finally:
        if owned:
            client.close()
    return answers


def answer_questions(
    infer: InferSection,
    params: HelpfulnessSection,
    model: str,
    questions: list[Question],
    benchmark: str,
    engine: Engine | None = None,
    client: Any = None,
) -> list[Answer]:
    kind = infer.model_kind(model)
    if kind == "endpoint":
        return answer_with_endpoint(
            infer.endpoints[model], questions, params, f"helpfulness/{benchmark}/{model}", client
        )
    if kind == "best_of_n":
        raise ValueError(f"helpfulness: {model} is a best-of-N entry; name a single model")
    source = local_model(infer, model)
    engine = engine or open_generator(
        source.location, params.engine, source.revision, f"helpfulness/{benchmark}/{model}"
    )
    try:
        return answer_with_engine(
            engine, source.prompt_format, questions, params, f"{benchmark} {model}"
        )
    finally:
        engine.close()


# ---------------------------------------------------------------------------------------------
# answer files
# ---------------------------------------------------------------------------------------------


def answer_id(model: str, question_id: str, turns: list[str]) -> str:
    """A stable stand-in for the tools' random shortuuid: same inputs, same id."""
    digest = hashlib.sha256(json_key(model, question_id, turns).encode()).hexdigest()
    return digest[:22]


def json_key(*parts: Any) -> str:
    import json

    return json.dumps(parts, ensure_ascii=False)


def answer_rows(
    benchmark: str, model: str, questions: list[Question], answers: list[Answer]
) -> list[BaseModel]:
    rows: list[BaseModel] = []
    for question, answer in zip(questions, answers, strict=True):
        if benchmark == "alpaca_eval":
            source = question.row
            assert isinstance(source, AlpacaEvalQuestion)
            rows.append(
                AlpacaEvalOutput(
                    instruction=source.instruction,
                    output=answer.turns[0],
                    generator=model,
                    dataset=source.dataset,
                )
            )
        elif benchmark == "mt_bench":
            rows.append(
                MTBenchAnswer(
                    question_id=int(question.id),
                    answer_id=answer_id(model, question.id, answer.turns),
                    model_id=model,
                    choices=[MTBenchChoice(index=0, turns=answer.turns)],
                    tstamp=0.0,
                )
            )
        else:
            rows.append(
                ArenaHardAnswer(
                    question_id=question.id,
                    answer_id=answer_id(model, question.id, answer.turns),
                    model_id=model,
                    choices=[
                        ArenaHardChoice(
                            index=0, turns=[ArenaHardTurn(content=t) for t in answer.turns]
                        )
                    ],
                    tstamp=0.0,
                )
            )
    return rows


def answer_file(out_dir: str | Path, benchmark: str, model: str) -> Path:
    """Where each tool looks for a model's answers, relative to its data directory."""
    if benchmark == "alpaca_eval":
        return Path(out_dir) / f"{model}.json"
    return Path(out_dir) / "model_answer" / f"{model}.jsonl"


def write_answers(path: Path, benchmark: str, rows: list[BaseModel]) -> None:
    dumped = [row.model_dump(exclude_none=benchmark == "alpaca_eval") for row in rows]
    if benchmark == "alpaca_eval":
        import json

        with atomic_open(path) as handle:
            json.dump(dumped, handle, ensure_ascii=False, indent=2)
            handle.write("\n")
    else:
        write_jsonl(path, dumped)


def read_answers(path: Path, benchmark: str) -> list[BaseModel]:
    """An answer file read back through its row type (the format check the tests use)."""
    import json

    from janus.io import read_jsonl

    if benchmark == "alpaca_eval":
        return [AlpacaEvalOutput.model_validate(row) for row in json.loads(path.read_text())]
    row_type = MTBenchAnswer if benchmark == "mt_bench" else ArenaHardAnswer
    return [row_type.model_validate(row) for row in read_jsonl(path)]


# ---------------------------------------------------------------------------------------------
# the stage
# ---------------------------------------------------------------------------------------------


def answer_metrics(questions: list[Question], answers: list[Answer]) -> dict[str, Any]:
    tokens = [t for a in answers for t in a.tokens if t is not None]
    return {
        "questions": len(questions),
        "turns": sum(len(a.turns) for a in answers),
        "empty_turns": sum(not t.strip() for a in answers for t in a.turns),
        "cut_at_max_tokens": sum(a.cut for a in answers),
        "mean_answer_tokens": sum(tokens) / len(tokens) if tokens else None,
    }


def run_helpfulness(
    infer: InferSection,
    params: HelpfulnessSection,
    benchmark: str,
    out_dir: str | Path,
    metrics_path: str | Path,
    engines: dict[str, Engine] | None = None,
) -> dict[str, Any]:
    """Stage `helpfulness@<benchmark>`: every model's answers to the benchmark's prompts."""
    if benchmark not in params.benchmarks:
        raise KeyError(f"helpfulness: no benchmark {benchmark!r}; known: {list(params.benchmarks)}")
    config = params.benchmarks[benchmark]
    questions, skipped = read_questions(benchmark, config.prompts_path)
    # Before any model loads or any paid call: a sample file must not pass for the benchmark.
    kept = require_rows(
        config.prompts_path,
        len(questions),
        config.max_prompts,
        what=f"valid {benchmark} prompts",
        section=f"helpfulness.benchmarks.{benchmark}.max_prompts",
        allow_smaller=params.allow_smaller,
    )
    questions = questions[:kept]
    if not questions:
        raise ValueError(f"{config.prompts_path}: no valid {benchmark} questions ({skipped})")
    per_model: dict[str, Any] = {}
    for model in params.models:
        log.info("helpfulness %s: %s answers %d questions", benchmark, model, len(questions))
        engine = (engines or {}).get(model)
        answers = answer_questions(infer, params, model, questions, benchmark, engine=engine)
        rows = answer_rows(benchmark, model, questions, answers)
        write_answers(answer_file(out_dir, benchmark, model), benchmark, rows)
        per_model[model] = answer_metrics(questions, answers)
    metrics = {
        "benchmark": benchmark,
        "prompts_path": config.prompts_path,
        "questions": len(questions),
        "skipped_rows": skipped,
        "models": per_model,
    }
    path = Path(metrics_path)
    write_json(path, metrics)
    return metrics
