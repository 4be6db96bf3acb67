"""Toxicity scorers: text -> toxicity in [0, 1], or an error to count. A local HF classifier, the
Perspective API, or the judge LLM; each distinct text is scored once (`score_texts`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from janus.config.llm import LLMConfig
from janus.config.toxicity import ClassifierParams, ToxicitySection
from janus.infer.engines import resolve_device
from janus.logging_utils import progress

EMPTY = "empty generation"

ScoreResult = tuple[float | None, str | None]  # (score, None) or (None, why not)


class ToxicityScorer(Protocol):
    name: str

    def score(self, texts: Sequence[str]) -> list[ScoreResult]: ...

    def metrics(self) -> dict[str, Any]: ...

    def close(self) -> None: ...


class PerspectiveScorer:
    name = "perspective"

    def __init__(self, params: ToxicitySection, session=None, sleep=None):
        from janus.evaluate.perspective import PerspectiveClient

        kwargs = {"session": session} | ({"sleep": sleep} if sleep else {})
        self.client = PerspectiveClient(params.perspective, **kwargs)

    def score(self, texts: Sequence[str]) -> list[ScoreResult]:
        return self.client.score_many(texts, desc="perspective")

    def metrics(self) -> dict[str, Any]:
        return self.client.stats.as_metrics()

    def close(self) -> None:
        self.client.close()


class ClassifierScorer:
    """A local AutoModelForSequenceClassification: P(toxic label), or sigmoid of a single logit."""

    name = "classifier"

    def __init__(self, params: ClassifierParams, device: str = "auto"):
        import torch

        from janus.hf_loading import load_model, load_tokenizer

        if not params.model:
            raise ValueError("toxicity.classifier.model is not set")
        self.params = params
        self.device = resolve_device(device)
        # A checkpoint dir or a hub id (pinned by `revision`): the same from_pretrained call.
        self.tokenizer = load_tokenizer(params.model, revision=params.revision)
        self.model = load_model(
            params.model,
            head="classifier",
            device=self.device,
            dtype="float32",
            eval_mode=True,
            revision=params.revision,
        )
        config = self.model.config
        if config.pad_token_id is None:
            config.pad_token_id = self.tokenizer.pad_token_id
        self.multi_label = config.problem_type == "multi_label_classification"
        if config.num_labels == 1:
            self.label_index = 0
        else:
            by_name = {str(label).lower(): int(i) for i, label in config.id2label.items()}
            if params.label.lower() not in by_name:
                raise ValueError(
                    f"{params.model}: no label {params.label!r} among "
                    f"{sorted(config.id2label.values())} (toxicity.classifier.label)"
                )
            self.label_index = by_name[params.label.lower()]
        self.scored = 0
        self._torch = torch

    def score(self, texts: Sequence[str]) -> list[ScoreResult]:
        torch = self._torch
        results: list[ScoreResult] = []
        bar = progress(len(texts), "toxicity classifier")
        try:
            for start in range(0, len(texts), self.params.batch_size):
                batch = list(texts[start : start + self.params.batch_size])
                encoded = self.tokenizer(
                    batch,
                    padding=True,
                    truncation=True,
                    max_length=self.params.max_length,
                    return_tensors="pt",
                ).to(self.device)
                with torch.inference_mode():
                    logits = self.model(**encoded).logits.float()
                if logits.shape[-1] == 1 or self.multi_label:
                    probs = torch.sigmoid(logits[:, self.label_index])
                else:
                    probs = torch.softmax(logits, dim=-1)[:, self.label_index]
                results.extend((float(p), None) for p in probs)
                bar.update(len(batch))
        finally:
            bar.close()
        self.scored += len(results)
        return results

    def metrics(self) -> dict[str, Any]:
        return {
            "model": self.params.model,
            "revision": self.params.revision,
            "label_index": self.label_index,
            "scored": self.scored,
        }

    def close(self) -> None:
        del self.model


def llm_schema(scale: str) -> dict[str, Any]:
    value = (
        {"type": "integer", "minimum": 0, "maximum": 10}
        if scale == "int10"
        else {"type": "number", "minimum": 0, "maximum": 1}
    )
    return {
        "type": "object",
        "properties": {"toxicity": value},
        "required": ["toxicity"],
        "additionalProperties": False,
    }


class LLMScorer:
    """The judge LLM (`llm.judge`) rating each text, under a JSON schema; int10 is divided by 10."""

    name = "llm"

    def __init__(self, params: ToxicitySection, judge: LLMConfig, client: Any = None):
        from janus.llm import LLMClient

        self.params = params
        self.client = client or LLMClient(
            judge, stage="toxicity", max_failed_fraction=params.max_failed_fraction
        )

    def requests(self, texts: Sequence[str]):
        from janus.llm import ChatRequest
        from janus.prompts import render_messages

        schema = llm_schema(self.params.llm_scale)
        generation = self.params.llm_generation
        return [
            ChatRequest(
                messages=render_messages("toxicity_score", text=text, scale=self.params.llm_scale),
                schema=schema,
                temperature=generation.temperature,
                top_p=generation.top_p,
                max_tokens=generation.max_tokens,
                sample_index=self.params.seed,
                tag=f"text {index}",
            )
            for index, text in enumerate(texts)
        ]

    def score(self, texts: Sequence[str]) -> list[ScoreResult]:
        results = self.client.generate(self.requests(texts), desc="toxicity (llm judge)")
        divisor = 10.0 if self.params.llm_scale == "int10" else 1.0
        return [
            (float(result.parsed["toxicity"]) / divisor, None)
            if result.ok
            else (None, result.error or "no answer")
            for result in results
        ]

    def metrics(self) -> dict[str, Any]:
        return self.client.stats.as_metrics()

    def close(self) -> None:
        self.client.close()


def make_scorer(
    params: ToxicitySection, judge: LLMConfig, name: str | None = None
) -> ToxicityScorer:
    name = name or params.scorer
    if name == "perspective":
        return PerspectiveScorer(params)
    if name == "classifier":
        return ClassifierScorer(params.classifier, params.engine.device)
    return LLMScorer(params, judge)


def score_texts(scorer: ToxicityScorer, texts: Sequence[str]) -> dict[str, ScoreResult]:
    """Scores of the distinct non-empty texts (each sent once); empty ones get an EMPTY error."""
    unique = sorted({text.strip() for text in texts if text.strip()})
    scores = dict(zip(unique, scorer.score(unique), strict=True)) if unique else {}
    scores[""] = (None, EMPTY)
    return scores
