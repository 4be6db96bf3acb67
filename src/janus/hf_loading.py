"""The one way janus loads a Hugging Face checkpoint: device, dtype, tokenizer, model.

Training, inference, best-of-N, toxicity and the local LLM backend all load checkpoints; they
differ only in the head (a causal LM or a one-logit reward model), the padding side, and where
the weights go. Everything else (which device "auto" means, which dtype "auto" means, a pad token
for tokenizers that lack one, the pad id a reward model pools on, a seeded initialisation of
heads a checkpoint does not have) is decided here, once.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from janus.logging_utils import get_logger

log = get_logger(__name__)

Head = Literal["causal", "reward", "classifier"]
DtypeName = Literal["auto", "float32", "bfloat16", "float16"]


# A hub revision pins what is read only when it is a full commit sha; a branch or tag ("main",
# "v1.0") can move under the same dvc.lock. params files write "main" as the marked placeholder
# where the real sha could not be looked up.
COMMIT_SHA = re.compile(r"^[0-9a-f]{40}$")


def is_pinned(revision: str | None) -> bool:
    return revision is not None and bool(COMMIT_SHA.match(revision))


def warn_if_unpinned(repo_id: str, revision: str | None) -> None:
    if not is_pinned(revision):
        log.warning(
            "%s is read at revision %r, not a commit sha: the hub can move it under the same "
            "dvc.lock; write the commit sha in params to pin it", repo_id, revision,
        )


def hub_snapshot(repo_id: str, revision: str, repo_type: Literal["dataset", "model"]) -> Path:
    """The files of a hub repository at `revision`, in the local hub cache (downloaded once;
    with HF_HUB_OFFLINE=1 a commit sha already in the cache resolves without the network)."""
    from huggingface_hub import snapshot_download

    warn_if_unpinned(repo_id, revision)
    return Path(snapshot_download(repo_id, repo_type=repo_type, revision=revision))


def load_hub_dataset(repo_id: str, split: str, revision: str) -> Any:
    """A hub dataset's split at `revision`: the snapshot of that commit, read by `datasets`
    (the same builders `load_dataset(repo_id)` picks: parquet, json, csv, README configs)."""
    from datasets import load_dataset

    return load_dataset(str(hub_snapshot(repo_id, revision, "dataset")), split=split)


def copy_hub_model(repo_id: str, revision: str, output_dir: str | Path) -> Path:
    """A hub model's files at `revision` copied into `output_dir` (a DVC output: exactly the
    weights the run used)."""
    snapshot = hub_snapshot(repo_id, revision, "model")
    shutil.copytree(snapshot, output_dir, dirs_exist_ok=True)  # follows the cache's symlinks
    return Path(output_dir)


def resolve_device(device: str) -> str:
    """`auto`: CUDA when present, else the CPU; anything else as given (cpu, cuda, cuda:1)."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def resolve_dtype(dtype: str, on_cuda: bool) -> Any:
    """`auto`: bf16 on a CUDA device that supports it, fp32 elsewhere."""
    import torch

    if dtype == "auto":
        if on_cuda and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    return getattr(torch, dtype)


def load_tokenizer(
    path: str | Path,
    padding_side: Literal["left", "right"] | None = None,
    revision: str | None = None,
) -> Any:
    """The checkpoint's tokenizer, with EOS as its pad token when it has none."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(path), revision=revision)
    if padding_side:
        tokenizer.padding_side = padding_side
    if tokenizer.pad_token_id is None:
        if tokenizer.eos_token is None:
            raise ValueError(f"tokenizer of {str(path)!r} has neither a pad nor an EOS token")
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def pad_ids(tokenizer: Any, sequences: Sequence[Sequence[int]], side: Literal["left", "right"]):
    """Token-id lists padded to the longest by `tokenizer.pad` on `side`: (input_ids,
    attention_mask) as torch tensors (the one padding of the repo's own batches)."""
    from transformers.data.data_collator import pad_without_fast_tokenizer_warning

    batch = pad_without_fast_tokenizer_warning(
        tokenizer,
        {"input_ids": [list(ids) for ids in sequences]},
        padding=True,
        padding_side=side,
        return_attention_mask=True,
        return_tensors="pt",
    )
    return batch["input_ids"], batch["attention_mask"]


def load_model(
    path: str | Path,
    *,
    head: Head = "causal",
    device: str = "cpu",
    dtype: Any = "float32",
    attn_implementation: str | None = None,
    seed: int | None = None,
    pad_token_id: int | None = None,
    eval_mode: bool = False,
    revision: str | None = None,
) -> Any:
    """A causal LM, a scalar reward model (`AutoModelForSequenceClassification`, one label) or a
    classifier as it was trained (its own labels, e.g. a toxicity classifier).

    `seed` seeds torch before loading: a reward head that the checkpoint lacks (a causal LM
    turned into a reward model) is then the same random matrix on every run, so training from
    it gives the same bytes. `pad_token_id` is what a reward model pools on (the last non-pad
    token). `device=None`-like placement is left to the caller for distributed training.
    `revision` pins a hub model's commit (None: a local directory, or the hub's default branch).
    """
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

    if revision is not None:  # a hub id (a local directory has no revision)
        warn_if_unpinned(str(path), revision)
    device = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, device.startswith("cuda")) if isinstance(dtype, str) else dtype
    kwargs: dict[str, Any] = {"dtype": torch_dtype, "revision": revision}
    if attn_implementation:
        kwargs["attn_implementation"] = attn_implementation
    if seed is not None:
        from transformers import set_seed

        set_seed(seed)
    if head == "reward":
        from transformers import AutoConfig

        # A causal checkpoint gets a new one-logit head; a classifier keeps its own (and is
        # refused below unless it has one output).
        architectures = AutoConfig.from_pretrained(str(path), revision=revision).architectures or []
        if not any(name.endswith("ForSequenceClassification") for name in architectures):
            kwargs["num_labels"] = 1
        model = AutoModelForSequenceClassification.from_pretrained(str(path), **kwargs)
        if model.config.num_labels != 1:
            raise ValueError(
                f"{path}: a reward model has one output (a scalar reward), "
                f"this one has {model.config.num_labels}"
            )
        text_config = model.config.get_text_config()
        if pad_token_id is not None and text_config.pad_token_id is None:
            text_config.pad_token_id = pad_token_id
        if pad_token_id is not None:
            model.config.pad_token_id = pad_token_id
    elif head == "classifier":
        model = AutoModelForSequenceClassification.from_pretrained(str(path), **kwargs)
        if pad_token_id is not None and model.config.pad_token_id is None:
            model.config.pad_token_id = pad_token_id
    else:
        model = AutoModelForCausalLM.from_pretrained(str(path), **kwargs)
    if device != "cpu":
        model = model.to(device)
    if eval_mode:
        model.eval()
    return model


def context_length(model: Any) -> int | None:
    """The longest input the model's positions allow (None when the config does not say)."""
    return getattr(model.config.get_text_config(), "max_position_embeddings", None)
