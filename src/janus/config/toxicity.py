"""The `toxicity` section: RealToxicityPrompts generation and scoring (F.4)."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import (
    Field,
    field_validator,
    model_validator,
)

from janus.config.common import Section
from janus.config.engine import MODEL_NAME_PATTERN, EngineParams, HubModel, SamplingParams
from janus.config.generation import GenerationParams
from janus.config.sources import InputSource


class PerspectiveParams(Section):
    """The Perspective API (`comments:analyze`); the key comes only from the environment."""

    url: str
    # Defaults allowed (they cannot change a score): the *name* of the variable holding the
    # key, the request rate (the API's default quota is 1 QPS) and the first wait before a
    # retry (doubles per retry; Retry-After wins).
    key_env: str = "PERSPECTIVE_API_KEY"
    requests_per_second: float = Field(1.0, gt=0)
    backoff_s: float = Field(1.0, ge=0)
    languages: list[str]
    max_retries: int = Field(ge=0)  # for 429 and 5xx; still failing: an unscored generation
    timeout_s: float = Field(gt=0)


class ClassifierParams(Section):
    """A local HF sequence-classification toxicity model (e.g. a RoBERTa toxicity classifier)."""

    # A checkpoint dir or a hub id (e.g. s-nlp/roberta_toxicity_classifier); needed when a
    # scorer is classifier.
    model: str | None
    revision: str | None  # hub ids: a commit hash pins the classifier; None: local dir
    label: str  # the id2label entry that means toxic; ignored with a single output
    batch_size: int = Field(ge=1)
    max_length: int = Field(ge=8)


class ToxicityModel(Section):
    path: str
    prompt_format: Literal["mistral", "chat_template"] | None  # as in infer.models


class ToxicityPromptsSource(InputSource):
    """Stage `toxicity_prompts`: the prompts file, made from RealToxicityPrompts rows (F.4's
    10k test sample: `sample` rows drawn with `seed` from the prompts whose own toxicity is below
    `max_prompt_toxicity`, DExperts' non-toxic prompts; None: every row, in order)."""

    sample: int | None = Field(ge=1)
    max_prompt_toxicity: float | None = Field(ge=0, le=1)
    seed: int


class PerplexityModelParams(Section):
    """Stage `perplexity_model`: the fluency LM. hub_id at revision (paper: GPT-2 XL), or None:
    the run's base checkpoint (models/base)."""

    hub_id: str | None
    revision: str | None

    @model_validator(mode="after")
    def _hub_needs_revision(self) -> PerplexityModelParams:
        if (self.hub_id is None) != (self.revision is None):
            raise ValueError("hub_id and revision go together (both None: the base model)")
        return self


class ToxicitySection(Section):
    """RealToxicityPrompts (F.4): toxicity, fluency (perplexity) and diversity (dist-n)."""

    params_key: ClassVar[str] = "toxicity"

    prompts_path: str  # made by stage toxicity_prompts from prompts_source
    prompts_source: ToxicityPromptsSource
    max_prompts: int | None = Field(ge=1)  # paper: the 10k test sample
    challenging_only: bool
    generations_per_prompt: int = Field(ge=1)  # paper: 25
    # continuation: the prompt text itself is the model input (RealToxicityPrompts' protocol, as
    # in the GPT-2/DExperts/Quark rows of Table 4); chat: the prompt is the user turn, formatted
    # with the checkpoint's prompt format, no system message.
    prompt_style: Literal["continuation", "chat"]
    sampling: SamplingParams
    engine: EngineParams
    models: dict[str, ToxicityModel]
    hub_models: dict[str, HubModel]  # stage toxicity_generate_hub@
    threshold: float = Field(ge=0, le=1)  # a generation at or above it is toxic
    # Bootstrap resamples (over prompts) for the 95% CIs of avg max toxicity / toxicity prob.
    bootstrap_resamples: int = Field(ge=1)
    # The scorer behind Table 4's numbers; `extra_scorers` score the same generations too and are
    # reported beside it with their agreement (Pearson r, agreement at `threshold`).
    scorer: Literal["perspective", "classifier", "llm"]
    extra_scorers: list[Literal["perspective", "classifier", "llm"]]
    # False: fewer prompts in prompts_path than max_prompts stops the stages (janus.scale).
    allow_smaller: bool
    perspective: PerspectiveParams
    classifier: ClassifierParams
    # llm scorer (llm.judge): unit asks for {"toxicity": 0..1}; int10 for an integer 0..10 / 10.
    llm_scale: Literal["unit", "int10"]
    llm_generation: GenerationParams
    # llm scorer: texts the judge fails to score (after every retry) before the stage fails.
    max_failed_fraction: float = Field(ge=0, le=1)
    perplexity_model: PerplexityModelParams  # paper: GPT-2 XL
    perplexity_batch_size: int = Field(ge=1)
    # dist-n of a prompt's generations (whitespace tokens): unique n-grams divided by the number
    # of n-grams (ngrams) or by the number of tokens (words: DExperts' code, behind Table 4's
    # cited rows). Averaged over prompts.
    dist_normalization: Literal["ngrams", "words"]
    seed: int

    @field_validator("models", "hub_models")
    @classmethod
    def _model_names(cls, value: dict[str, Any]) -> dict[str, Any]:
        import re

        for name in value:
            if not re.match(MODEL_NAME_PATTERN, name):
                raise ValueError(f"{name}: a model name must match {MODEL_NAME_PATTERN}")
        return value

    @model_validator(mode="after")
    def _scorer_is_configured(self) -> ToxicitySection:
        scorers = self.scorer_names()
        if len(set(scorers)) != len(scorers):
            raise ValueError(f"extra_scorers repeats a scorer: {scorers}")
        if "classifier" in scorers and not self.classifier.model:
            raise ValueError("scorer 'classifier' needs classifier.model (a checkpoint or hub id)")
        both = sorted(set(self.models) & set(self.hub_models))
        if both:
            raise ValueError(f"model name(s) {both} in both models and hub_models")
        return self

    def scorer_names(self) -> list[str]:
        """The primary scorer first, then the extra ones."""
        return [self.scorer, *self.extra_scorers]

    def model_names(self) -> list[str]:
        return [*self.models, *self.hub_models]
