"""The `train` section: the settings every training stage shares and each stage's TRL fields."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import (
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from janus.config.common import Section
from janus.config.sources import SourceConfig


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
    # `accelerate launch` config (configs/accelerate/*.yaml: DeepSpeed ZeRO-3 or DDP) for CUDA
    # runs; the process counts come from the keys below, never from the file (janus.train.launch).
    accelerate_config: str | None
    # Training processes per node: auto = the CUDA devices visible (1 on the CPU); a number on the
    # CPU starts that many gloo processes (CI), and is the GPUs per node Slurm allocates.
    processes_per_node: Literal["auto"] | int
    nodes: int = Field(ge=1)  # more than 1 needs launcher: slurm
    # local: this machine; slurm: the stage submits one job (`sbatch --wait`) over `nodes` nodes on
    # shared storage and waits; site flags (partition, account, time) in JANUS_SBATCH_ARGS.
    launcher: Literal["local", "slurm"]
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

    @field_validator("save_strategy", mode="before")
    @classmethod
    def _no_read_as_false(cls, value):
        # `dvc exp run -S` writes params.yaml back as YAML 1.2, with `no` unquoted; PyYAML reads
        # that as YAML 1.1's false
        return "no" if value is False else value

    @model_validator(mode="after")
    def _processes_add_up(self) -> TrainCommon:
        if isinstance(self.processes_per_node, int) and self.processes_per_node < 1:
            raise ValueError("processes_per_node: auto or a number >= 1")
        if self.nodes > 1 and self.launcher != "slurm":
            raise ValueError("nodes > 1 needs launcher: slurm (every node must start its processes)")
        if self.launcher == "slurm" and self.processes_per_node == "auto":
            raise ValueError("launcher: slurm needs processes_per_node as a number (the GPUs per node to allocate)")
        return self


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
    per_device_train_batch_size: int = Field(ge=1)  # the micro-batch of one process
    # Rows per optimizer step over all processes: gradient accumulation is derived from it (global
    # = micro-batch x processes x accumulation), so 1, 2 or 8 GPUs train the same recipe.
    global_batch_size: int = Field(ge=1)
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


# Stage keys janus reads itself (not TRL config fields).
JANUS_STAGE_FIELDS = frozenset(("global_batch_size",))
REWARD_STAGE_FIELDS = frozenset(
    ("helpfulness_sources", "helpfulness_mix", "helpfulness_size", "helpfulness_eval_fraction",
     "helpfulness_max_steps")
)


class TrainSection(Section):
    params_key: ClassVar[str] = "train"
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
