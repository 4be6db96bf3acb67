"""Instruction tuning (Janus, Janus*, and the reward model's one-epoch start) with TRL's SFTTrainer.

Rows are prompt/completion pairs, so the loss is on the response only (`completion_only_loss`,
fixed in janus.train.configs.SFTConfig). On GPU, `packing: true` packs rows best-fit-decreasing
into `max_length` sequences and trains padding-free (see janus.train.device for the attention).
"""

from __future__ import annotations

from typing import Any


def build_sft_trainer(config: Any, load_model, tokenizer: Any, train_dataset: Any, eval_dataset: Any | None):
    """An SFTTrainer; the config is built before the model is loaded (ZeRO-3 partitions on load)."""
    from trl import SFTTrainer

    return SFTTrainer(
        model=load_model(),
        args=config,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        processing_class=tokenizer,
    )
