"""Preference optimisation: DPO from the Janus* checkpoint, ORPO from the base model (E.1).

Both use TRL's trainers on prompt/chosen/rejected rows: `DPOTrainer` (its reference model is a
frozen copy of the starting checkpoint) and ORPO's reference-free `ORPOTrainer`, which TRL 1.x
keeps in `trl.experimental.orpo`. `beta` is DPO's beta, or ORPO's lambda (the paper's alpha);
the configs come from janus.train.configs (params passed through).
Held-out metrics: the trainers' reward accuracy and margin on the eval pairs.
"""

from __future__ import annotations

from typing import Any


def build_dpo_trainer(config: Any, load_model, tokenizer: Any, train_dataset: Any, eval_dataset: Any | None):
    from trl import DPOTrainer

    return DPOTrainer(
        model=load_model(),
        args=config,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        processing_class=tokenizer,
    )


def build_orpo_trainer(config: Any, load_model, tokenizer: Any, train_dataset: Any, eval_dataset: Any | None):
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*experimental.*")
        from trl.experimental.orpo import ORPOTrainer

    return ORPOTrainer(
        model=load_model(),
        args=config,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        processing_class=tokenizer,
    )


def preference_eval_metrics(metrics: dict[str, Any]) -> dict[str, Any]:
    """The held-out figures both trainers report, under stable names."""
    return {
        "eval_loss": metrics.get("eval_loss"),
        "eval_reward_accuracy": metrics.get("eval_rewards/accuracies"),
        "eval_reward_margin": metrics.get("eval_rewards/margins"),
        "eval_reward_chosen": metrics.get("eval_rewards/chosen"),
        "eval_reward_rejected": metrics.get("eval_rewards/rejected"),
    }
