"""The `environment` section: the installed environment the model-running stages depend on."""

from __future__ import annotations

from typing import ClassVar, Literal

from janus.config.common import Section


class EnvironmentSection(Section):
    """dvc.yaml names `${environment.lock_file}` as a dep of the stages that run models, so
    switching environments reruns them."""

    params_key: ClassVar[str] = "environment"
    # requirements.lock (CPU, `make setup`) or requirements-gpu.lock (CUDA, `make setup-gpu`).
    lock_file: Literal["requirements.lock", "requirements-gpu.lock"]
