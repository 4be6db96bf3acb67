"""MLflow tracking of the training stages: runs, per-step curves, tags, and the model registry.

Where runs go: `MLFLOW_TRACKING_URI` if set, else `tracking.tracking_uri`, else a SQLite store at
`<repo>/mlflow.db` with artifacts in `<repo>/mlartifacts`, both absolute paths. `<repo>` is the
original repository even when DVC runs the stage in a temporary copy (`dvc exp run --temp` works
in `<repo>/.dvc/tmp/exps/<name>/`), so experiments never lose their runs with the copy.

Each run is tagged with the git commit, the DVC stage and the sha256 of every input file; params
are the stage's own params (no environment, no secrets: keys that look like credentials are
dropped). The final checkpoint is registered as a new version of `janus-<stage>`. By default
(`tracking.model_artifacts: reference`) the version points at the DVC-versioned checkpoint: its
path in the repo, its DVC md5 (the one `dvc.lock` records) and the git commit, in tags and in a
small `dvc_reference.json`, so the weights exist once on disk (the DVC cache, linked into the
workspace) and `dvc pull <path>` at that commit fetches them. `copy` also copies the checkpoint
into MLflow's artifact store (never loaded into memory), for teams whose registry is the source
of truth.

Tracking is optional: `tracking.enabled: false`, a missing `mlflow` package (e.g. on a GPU box) or
a non-main process of a distributed run all give a `TrackedRun` whose methods do nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

from janus.config.tracking import TrackingSection
from janus.hashing import file_digest, tree_digest
from janus.logging_utils import get_logger

log = get_logger(__name__)

DB_FILE = "mlflow.db"
ARTIFACTS_DIR = "mlartifacts"
# Params whose key looks like a credential never reach MLflow, whatever their value.
SECRET_MARKERS = ("api_key", "apikey", "secret", "password", "credential", "access_key")
MAX_PARAM_CHARS = 6000  # MLflow's limit on a param value
MAX_METRICS_PER_BATCH = 1000


def resolve_repo_root(start: str | Path | None = None) -> Path:
    """The repository a stage belongs to; for a `dvc exp run --temp` copy, the original one."""
    path = Path(start or Path.cwd()).resolve()
    parts = path.parts
    for index in range(len(parts) - 2):
        if parts[index : index + 3] == (".dvc", "tmp", "exps"):
            return Path(*parts[:index])
    for candidate in (path, *path.parents):
        if (candidate / ".dvc").is_dir() or (candidate / ".git").exists():
            return candidate
    return path


def default_tracking_uri(root: Path) -> str:
    # sqlite:/// + an absolute path gives the four slashes that make it absolute.
    return f"sqlite:///{(root / DB_FILE).resolve()}"


def tracking_uri(config: TrackingSection, root: Path) -> str:
    uri = os.environ.get("MLFLOW_TRACKING_URI") or config.tracking_uri or default_tracking_uri(root)
    return _move_credentials_to_env(uri)


def _move_credentials_to_env(uri: str) -> str:
    """Strip `user:password@` from an http(s) URI into MLflow's own variables.

    MLflow and our log lines print the tracking URI; with the credentials moved to
    MLFLOW_TRACKING_USERNAME/PASSWORD (which MLflow reads), the URI that gets printed holds none.
    """
    parts = urlsplit(uri)
    if parts.scheme not in ("http", "https") or "@" not in parts.netloc:
        return uri
    userinfo, _, hostport = parts.netloc.rpartition("@")
    username, _, password = userinfo.partition(":")
    os.environ.setdefault("MLFLOW_TRACKING_USERNAME", unquote(username))
    if password:
        os.environ.setdefault("MLFLOW_TRACKING_PASSWORD", unquote(password))
    return urlunsplit(parts._replace(netloc=hostport))


def registered_model_name(stage: str) -> str:
    return "janus-" + stage.replace("_", "-")


def file_sha256(path: str | Path) -> str:
    """sha256 of a file, or of a directory's files (names and contents, in sorted order)."""
    path = Path(path)
    if not path.is_dir():
        return file_digest(path)
    return tree_digest(path, sorted(p for p in path.rglob("*") if p.is_file()))


def dvc_md5(path: str | Path) -> str:
    """The md5 DVC 3 gives an output: a file's md5, or for a directory the md5 of its sorted
    (relpath, md5) listing with a `.dir` suffix, as `dvc.lock` records it."""
    path = Path(path)
    if not path.is_dir():
        return file_digest(path, "md5")
    entries = [
        {"md5": file_digest(file, "md5"), "relpath": file.relative_to(path).as_posix()}
        for file in sorted(p for p in path.rglob("*") if p.is_file())
    ]
    entries.sort(key=lambda entry: entry["relpath"])
    return hashlib.md5(json.dumps(entries, sort_keys=True).encode()).hexdigest() + ".dir"


def git_commit(cwd: Path) -> tuple[str, bool | None]:
    """(commit, dirty) of the work tree at `cwd`; ("unknown", None) outside git."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return "unknown", None
    return commit, bool(status.strip())


def is_secret_key(key: str) -> bool:
    key = key.lower()
    return any(marker in key for marker in SECRET_MARKERS) or key == "token" or key.endswith("_token")


def flatten_params(params: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested params as MLflow params (`a.b.c: value`), without anything that looks like a secret."""
    flat: dict[str, str] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if is_secret_key(str(key)):
            continue
        if isinstance(value, Mapping):
            flat.update(flatten_params(value, prefix=f"{name}."))
        else:
            flat[name] = str(value)[:MAX_PARAM_CHARS]
    return flat


class TrackedRun:
    """An MLflow run; with `client=None` every method is a no-op (tracking off or unavailable)."""

    def __init__(self, client: Any = None, run_id: str | None = None, experiment_id: str | None = None):
        self.client = client
        self.run_id = run_id
        self.experiment_id = experiment_id
        self._warned = False

    @property
    def active(self) -> bool:
        return self.client is not None

    def _safely(self, what: str, action) -> Any:
        # A failed metric write must not end a multi-hour training run; it is logged, once.
        try:
            return action()
        except Exception as error:  # noqa: BLE001 - any store error is reported the same way
            if not self._warned:
                log.warning("MLflow: could not %s (%s); training goes on", what, error)
                self._warned = True
            return None

    def log_params(self, params: Mapping[str, Any]) -> None:
        if not self.active:
            return
        from mlflow.entities import Param

        items = [Param(key, value) for key, value in flatten_params(params).items()]
        for start in range(0, len(items), 100):
            self.client.log_batch(self.run_id, params=items[start : start + 100])

    def log_metrics(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        if not self.active:
            return
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        items = [
            Metric(key, float(value), now, step or 0)
            for key, value in metrics.items()
            if isinstance(value, (int, float)) and not isinstance(value, bool) and value == value
        ]

        def write() -> None:
            for start in range(0, len(items), MAX_METRICS_PER_BATCH):
                self.client.log_batch(self.run_id, metrics=items[start : start + MAX_METRICS_PER_BATCH])

        self._safely("log metrics", write)

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        if not self.active:
            return
        for key, value in tags.items():
            self.client.set_tag(self.run_id, key, str(value))

    def log_model_dir(
        self,
        directory: str | Path,
        name: str,
        register: bool = True,
        mode: str = "reference",
        repo_root: str | Path | None = None,
    ) -> str | None:
        """A LoggedModel of this run for a checkpoint directory, registered under `name`.

        `reference`: the model's one artifact is `dvc_reference.json` (path, DVC md5, git
        commit), also set as tags on the model and its version; `copy`: the checkpoint's files
        too. Returns the new registered version (or None when not registered)."""
        if not self.active:
            return None
        client = self.client
        directory = Path(directory).resolve()
        root = Path(repo_root).resolve() if repo_root else resolve_repo_root(directory)
        commit, dirty = git_commit(root)
        reference = {
            "dvc.path": directory.relative_to(root).as_posix() if directory.is_relative_to(root) else str(directory),
            "dvc.md5": dvc_md5(directory),
            "git.commit": commit,
            "git.dirty": str(dirty),
            "janus.model_artifacts": mode,
        }
        model = client.create_logged_model(
            experiment_id=self.experiment_id,
            name=name,
            source_run_id=self.run_id,
            model_type="transformers-checkpoint",
            tags=reference,
        )
        try:
            if mode == "copy":
                client.log_model_artifacts(model.model_id, str(directory))
            with tempfile.TemporaryDirectory() as scratch:
                (Path(scratch) / "dvc_reference.json").write_text(json.dumps(reference, indent=2) + "\n")
                client.log_model_artifacts(model.model_id, scratch)
        except BaseException:
            client.finalize_logged_model(model.model_id, "FAILED")
            raise
        client.finalize_logged_model(model.model_id, "READY")
        if not register:
            return None
        from mlflow.exceptions import MlflowException

        try:
            client.create_registered_model(name)
        except MlflowException as error:
            if "RESOURCE_ALREADY_EXISTS" not in str(error.error_code):
                raise
        version = client.create_model_version(
            name, source=f"models:/{model.model_id}", run_id=self.run_id, model_id=model.model_id,
            tags=reference,
        )
        log.info("MLflow: registered %s version %s (%s)", name, version.version, mode)
        return str(version.version)

    def trainer_callback(self, step_offset: int = 0) -> Any:
        """A transformers TrainerCallback that logs every logged value at its global step."""
        from transformers import TrainerCallback

        run = self

        class StepLogger(TrainerCallback):
            def on_log(self, args, state, control, logs=None, **kwargs):
                if logs and state.is_world_process_zero:
                    run.log_metrics(logs, step=state.global_step + step_offset)

        return StepLogger()


def _experiment_id(client: Any, name: str, artifact_location: str | None) -> str:
    from mlflow.exceptions import MlflowException

    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    try:
        return client.create_experiment(name, artifact_location=artifact_location)
    except MlflowException:  # created by a concurrent stage in the meantime
        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            raise
        return experiment.experiment_id


@contextmanager
def start_run(
    config: TrackingSection,
    stage: str,
    *,
    params: Mapping[str, Any],
    data_files: Mapping[str, str | Path] | None = None,
    root: str | Path | None = None,
    main_process: bool = True,
    extra_tags: Mapping[str, Any] | None = None,
) -> Iterator[TrackedRun]:
    """A run for one stage; ends FINISHED, or FAILED when the block raises."""
    if not config.enabled or not main_process:
        yield TrackedRun()
        return
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")  # no network calls from stages
    try:
        from mlflow import MlflowClient
    except ImportError:
        log.warning("mlflow is not installed: tracking is off for stage %s", stage)
        yield TrackedRun()
        return

    cwd = Path.cwd()
    repo_root = resolve_repo_root(root or cwd)
    uri = tracking_uri(config, repo_root)
    artifact_location = None
    if uri == default_tracking_uri(repo_root):
        artifact_location = (repo_root / ARTIFACTS_DIR).resolve().as_uri()
    import mlflow

    # The registry resolves `models:/<id>` sources through the global tracking URI.
    previous_uri = mlflow.get_tracking_uri() if mlflow.is_tracking_uri_set() else None
    mlflow.set_tracking_uri(uri)
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    experiment_id = _experiment_id(client, config.experiment, artifact_location)
    commit, dirty = git_commit(cwd)
    tags: dict[str, Any] = {
        "janus.stage": stage,
        "dvc.stage": stage,
        "git.commit": commit,
        "mlflow.source.git.commit": commit,
        "git.dirty": dirty,
        "janus.repo_root": str(repo_root),
    }
    for label, path in (data_files or {}).items():
        tags[f"data.{label}.sha256"] = file_sha256(path)
    # DVC sets these for `dvc exp run`: they link an MLflow run to its `dvc exp show` row.
    for variable in ("DVC_EXP_NAME", "DVC_EXP_BASELINE_REV"):
        if os.environ.get(variable):
            tags[f"dvc.{variable[4:].lower()}"] = os.environ[variable]
    tags.update(extra_tags or {})
    run = client.create_run(experiment_id, run_name=stage, tags={k: str(v) for k, v in tags.items()})
    tracked = TrackedRun(client, run.info.run_id, experiment_id)
    log.info("MLflow: run %s of experiment %r at %s", run.info.run_id, config.experiment, uri)
    tracked.log_params(params)
    try:
        yield tracked
    except BaseException:
        client.set_terminated(run.info.run_id, status="FAILED")
        raise
    else:
        client.set_terminated(run.info.run_id, status="FINISHED")
    finally:
        mlflow.set_tracking_uri(previous_uri)

