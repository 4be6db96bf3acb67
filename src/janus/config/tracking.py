"""The `tracking` section: MLflow logging of training runs (changes no DVC output)."""

from __future__ import annotations

from typing import ClassVar, Literal

from janus.config.common import Section


# Defaults allowed for the whole section: MLflow logging changes no DVC output (and no stage
# depends on these params).
class TrackingSection(Section):
    params_key: ClassVar[str] = "tracking"
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
