"""Answering the helpfulness questions (`janus.evaluate.helpfulness_bench`), turn by turn: a
local model through the generation engine, in the prompt format it was trained with and no system
message; an endpoint model through the LLM client, one `EndpointTurn` step per turn, with the
conversation as chat turns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from janus.config.helpfulness import HelpfulnessSection
from janus.config.infer import InferSection
from janus.config.llm import LLMConfig
from janus.evaluate.helpfulness_questions import Question
from janus.infer.engines import Engine, encode_prompts
from janus.infer.generation import open_generator
from janus.infer.responses import local_model
from janus.steps.base import Rejection, Step, Tally


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


class EndpointTurn(Step):
    """Turn `turn` of the questions that have one, through an endpoint: a row is (question, its
    answer so far); the request holds the earlier turns and answers as context; the output is
    the answer's text and tokens. No failure is allowed (`max_failed_fraction` 0): a later turn
    needs every earlier answer."""

    name = "helpfulness"
    role = "endpoint"  # params.infer.endpoints[<model>]
    max_failed_fraction = 0.0

    def __init__(self, params: HelpfulnessSection, turn: int, stage: str):
        self.params, self.turn = params, turn
        self.name = stage  # type: ignore[misc]
        self.desc = f"{stage} turn {turn + 1}"

    def format_input(self, row: tuple[Question, Answer]):
        from janus.llm import ChatRequest

        question, answer = row
        messages: list[dict[str, str]] = []
        for user, assistant in zip(question.turns, answer.turns, strict=False):
            messages += [
                {"role": "user", "content": user},
                {"role": "assistant", "content": assistant},
            ]
        messages.append({"role": "user", "content": question.turns[self.turn]})
        sampling = self.params.sampling
        return ChatRequest(
            messages=messages,
            temperature=sampling.temperature,
            top_p=sampling.top_p,
            max_tokens=sampling.max_tokens,
            sample_index=self.params.seed,
            tag=f"{question.id}/turn{self.turn + 1}",
        )

    def format_output(self, row: tuple[Question, Answer], result: Any) -> Any:
        if not result.ok or result.text is None:
            return Rejection("failed", result.error or "no text")
        return {"text": result.text.strip(), "tokens": result.completion_tokens or None}

    def metrics(self, tally: Tally) -> dict[str, Any]:
        return {}


def answer_with_endpoint(
    config: LLMConfig,
    questions: list[Question],
    params: HelpfulnessSection,
    stage: str,
    client: Any = None,
) -> list[Answer]:
    """Turn by turn through the LLM client (cached, retried), one `EndpointTurn` step per turn;
    a failed turn stops the stage (`StageFailed`; the answers so far are cached)."""
    from janus.llm import LLMClient
    from janus.steps.runner import collect_step

    owned = client is None
    client = client or LLMClient(config, stage=stage)
    answers = [Answer() for _ in questions]
    try:
        for turn in range(max(len(q.turns) for q in questions)):
            todo = [i for i, q in enumerate(questions) if len(q.turns) > turn]
            step = EndpointTurn(params, turn, stage)
            rows = [(questions[i], answers[i]) for i in todo]
            made, _ = collect_step(step, rows, None, total=len(rows), client=client)
            for i, output in zip(todo, made, strict=True):
                answers[i].turns.append(output["text"])
                answers[i].tokens.append(output["tokens"])
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
