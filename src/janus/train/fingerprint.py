"""Run fingerprints: what identifies a training run (data, code, start model, params; training
length aside), so that only a run with the same fingerprint resumes from runs/<stage>/<fingerprint>/."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from janus.config.train import TrainCommon, TrainStage
from janus.hashing import file_digest
from janus.train.device import DeviceSettings

CODE_FILES = ("chat_format.py", "hf_loading.py", "train/batch.py", "train/common.py", "train/configs.py", "train/data.py",
              "train/device.py", "train/fingerprint.py", "train/sft.py", "train/preference.py", "train/reward.py",
              "train/helpfulness.py", "train/run.py")
# Fields that say how long to train, not what: a run extended with more steps resumes.
LENGTH_FIELDS = {"max_steps", "num_train_epochs", "helpfulness_max_steps"}
COMMON_FINGERPRINT_FIELDS = ("prompt_format", "max_length", "seed", "full_determinism")


def _model_fingerprint(name_or_path: str) -> str:
    """Cheap content fingerprint of a checkpoint: config, and size + head + tail of each file."""
    path = Path(name_or_path)
    if not path.is_dir():
        return name_or_path
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        size = file.stat().st_size
        digest.update(f"{file.relative_to(path)}:{size}".encode())
        with file.open("rb") as handle:
            digest.update(handle.read(1 << 20))
            if size > 2 << 20:
                handle.seek(-(1 << 20), 2)
                digest.update(handle.read())
    return digest.hexdigest()


def run_fingerprint(
    stage_name: str,
    stage: TrainStage,
    common: TrainCommon,
    device: DeviceSettings,
    init_model: str,
    inputs: list[Path],
) -> str:
    """Identifies a training run: same data, code, start model and params (training length
    aside). Only a run with the same fingerprint resumes from runs/<stage>/<fingerprint>/."""
    import torch
    import transformers
    import trl

    package = Path(__file__).resolve().parents[1]
    payload = {
        "stage": stage_name,
        "params": {k: v for k, v in stage.model_dump(mode="json").items() if k not in LENGTH_FIELDS},
        "common": {k: getattr(common, k) for k in COMMON_FINGERPRINT_FIELDS},
        "bf16": device.bf16,
        "init": _model_fingerprint(init_model),
        "inputs": {f"{p.parent.name}/{p.name}": file_digest(p) for p in sorted(inputs)},
        "code": {name: file_digest(package / name) for name in CODE_FILES if (package / name).exists()},
        "versions": [torch.__version__, transformers.__version__, trl.__version__],
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]
