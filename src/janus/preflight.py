"""`python -m janus preflight`: what a run needs, checked in seconds, before anything is paid.

Each check is a row (area, what, status, detail); a FAIL row makes the command exit 1, a warn
row does not. Nothing is sent that costs money: the served check reads each endpoint's model
list (`GET /v1/models`), and only where an endpoint has no list does it send one request of one
token (self-hosted servers: vLLM, `transformers serve`).

- served: every model an LLM role (`llm.<role>`), endpoint row (`infer.endpoints.<name>`) or
  fleet member (each `base_url` of a list) will be asked is in its endpoint's list;
- key: each API-key variable a run needs is set (its value is never printed);
- gpu: CUDA has as many devices as the launch configuration asks for
  (`train.common.accelerate_config`, the engines' `tensor_parallel_size`);
- input: every file a stage of dvc.yaml reads exists, or a stage (or a .dvc file) makes it;
- hub: every hub dataset (`hub:owner/name`) and model (`hub_id`, or a `model` with a
  `revision`) resolves at its revision (offline, `HF_HUB_OFFLINE=1`: is in the local HF
  cache); an unpinned revision (a branch such as `main`, or none) is a warn row;
- disk: free space for the checkpoints training writes (parameters x bytes per parameter x
  checkpoints, from the base model's config);
- tiktoken: its BPE file is on disk for OpenAI models (else token counts are estimated).

Stages call `before_stage(params, *keys)` with the params keys that concern them (the judge:
`llm.judge`; training: `train.common.accelerate_config`); it runs only those checks, sends
only model-list requests, and raises `PreflightFailed` naming each failing row.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from pydantic import BaseModel

from janus.config.engine import EngineParams
from janus.config.llm import LLMConfig
from janus.logging_utils import get_logger

log = get_logger(__name__)

OK, FAIL, WARN, SKIP = "ok", "FAIL", "warn", "skip"
LIST_TIMEOUT_S = 10.0
HUB_TIMEOUT_S = 10.0
COMMIT = re.compile(r"^[0-9a-f]{40}$")
HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$")
# Trainer checkpoints (runs/<stage>/...) hold the optimizer's two fp32 moments beside the weights.
OPTIMIZER_BYTES_PER_PARAM = 8


class PreflightFailed(RuntimeError):
    """A check a stage needs failed: raised before the stage sends or loads anything."""


@dataclass
class Check:
    area: str  # served | key | gpu | input | hub | disk | tiktoken
    what: str  # the params key (or path) the row is about
    status: str  # ok | FAIL | warn | skip
    detail: str


# -- what the params name ------------------------------------------------------------------------


def llm_configs(params: BaseModel, prefix: str = "") -> Iterator[tuple[str, LLMConfig]]:
    """Every LLM endpoint configuration in the params, with its dotted key (`llm.teacher`,
    `infer.endpoints.gpt-4`): found by type, so a role or section added later is included."""
    for name in type(params).model_fields:
        value = getattr(params, name)
        key = f"{prefix}{name}"
        if isinstance(value, LLMConfig):
            yield key, value
        elif isinstance(value, BaseModel):
            yield from llm_configs(value, f"{key}.")
        elif isinstance(value, dict):
            for entry, item in value.items():
                if isinstance(item, LLMConfig):
                    yield f"{key}.{entry}", item
                elif isinstance(item, BaseModel):
                    yield from llm_configs(item, f"{key}.{entry}.")


def _resolve(params: BaseModel, key: str) -> Any:
    node: Any = params
    for part in key.split("."):
        node = node[part] if isinstance(node, dict) else getattr(node, part)
    return node


def _urls(config: LLMConfig) -> list[str]:
    from janus.llm.openai_backend import DEFAULT_BASE_URL

    return [(url or DEFAULT_BASE_URL).rstrip("/") for url in config.base_urls()]


def _needs_key(config: LLMConfig) -> bool:
    """api.openai.com needs a key; self-hosted servers take none (the client sends a dummy)."""
    return None in config.base_urls()


# -- served models and keys ----------------------------------------------------------------------


def _model_list(url: str, key: str | None) -> tuple[set[str] | None, str | None]:
    """(served model ids, None), (None, None) when the endpoint has no list, or (None, error)."""
    import openai

    client = openai.OpenAI(
        api_key=key or "unused", base_url=url, max_retries=0, timeout=LIST_TIMEOUT_S
    )
    try:
        return {model.id for model in client.models.list()}, None
    except (openai.AuthenticationError, openai.PermissionDeniedError) as error:
        return None, f"the key was refused ({type(error).__name__}, HTTP {error.status_code})"
    except openai.APIStatusError as error:
        if error.status_code in (404, 405, 501):
            return None, None
        return None, f"the model list answered HTTP {error.status_code}"
    except openai.APIConnectionError as error:
        return None, f"unreachable ({type(error).__name__})"
    finally:
        client.close()


def _one_token(url: str, key: str | None, model: str) -> str | None:
    """One request of one token, for an endpoint without a model list: None if the model
    answered (or refused only the request's parameters), else why not."""
    import openai

    client = openai.OpenAI(
        api_key=key or "unused", base_url=url, max_retries=0, timeout=LIST_TIMEOUT_S
    )
    try:
        client.chat.completions.create(
            model=model, messages=[{"role": "user", "content": "ping"}], max_tokens=1
        )
        return None
    except openai.NotFoundError:
        return f"{model!r} is not served (HTTP 404 to a one-token request)"
    except openai.BadRequestError:
        return None  # the model exists; it disliked a parameter of the probe
    except openai.APIStatusError as error:
        return f"a one-token request answered HTTP {error.status_code}"
    except openai.APIConnectionError as error:
        return f"unreachable ({type(error).__name__})"
    finally:
        client.close()


def key_checks(entries: Iterable[tuple[str, LLMConfig]]) -> list[Check]:
    rows = []
    for key, config in entries:
        if config.backend != "openai":
            continue
        variable = config.api_key_env
        if os.environ.get(variable):
            rows.append(Check("key", f"{key}.api_key_env", OK, f"${variable} is set"))
        elif _needs_key(config):
            rows.append(
                Check(
                    "key",
                    f"{key}.api_key_env",
                    FAIL,
                    f"${variable} is not set ({_urls(config)[0]})",
                )
            )
        else:
            rows.append(Check("key", f"{key}.api_key_env", OK, "self-hosted: no key needed"))
    return rows


def served_checks(entries: Iterable[tuple[str, LLMConfig]], probe: bool = True) -> list[Check]:
    """One row per (params key, endpoint): is the model in the endpoint's list? Each endpoint's
    list is read once. `probe`: where there is no list, send one one-token request."""
    rows = []
    lists: dict[tuple[str, str | None], tuple[set[str] | None, str | None]] = {}
    for key, config in entries:
        if config.backend != "openai":
            continue
        secret = os.environ.get(config.api_key_env)
        for url in _urls(config):
            what = f"{key}.model" + (f" @ {url}" if len(config.base_urls()) > 1 else "")
            if not secret and _needs_key(config):
                rows.append(Check("served", what, SKIP, f"not asked: ${config.api_key_env} unset"))
                continue
            if (url, secret) not in lists:
                lists[(url, secret)] = _model_list(url, secret)
            served, error = lists[(url, secret)]
            if error is not None:
                rows.append(Check("served", what, FAIL, f"{url}: {error}"))
            elif served is not None:
                if config.model in served:
                    rows.append(Check("served", what, OK, f"{config.model} is served by {url}"))
                else:
                    rows.append(
                        Check(
                            "served",
                            what,
                            FAIL,
                            f"{config.model!r} is not in the model list of {url} "
                            f"({len(served)} models); set {key}.model to one it serves",
                        )
                    )
            elif probe:
                problem = _one_token(url, secret, config.model)
                status, detail = (
                    (OK, f"{config.model} answered a one-token request")
                    if (problem is None)
                    else (FAIL, f"{url}: {problem}")
                )
                rows.append(Check("served", what, status, detail))
            else:
                rows.append(Check("served", what, SKIP, f"{url} has no model list"))
    return rows


# -- GPUs ----------------------------------------------------------------------------------------


def gpu_requirements(
    params: BaseModel, root: Path, keys: Iterable[str] | None = None
) -> list[tuple[str, int]]:
    """(params key, GPUs per node it asks for) of each launch setting (only `keys` if given)."""
    wanted = None if keys is None else set(keys)
    found: list[tuple[str, int]] = []
    accelerate_key = "train.common.accelerate_config"
    train = getattr(params, "train", None)  # a stage's params hold only its sections
    launch = train.common.accelerate_config if train is not None else None
    if launch and (wanted is None or accelerate_key in wanted):
        from accelerate.commands.config.config_args import load_config_from_file

        config = load_config_from_file(str(root / launch))
        distributed = str(getattr(config, "distributed_type", "NO")).split(".")[-1]
        per_node = train.common.processes_per_node  # the config file holds no counts (janus.train.launch)
        if not config.use_cpu and distributed != "NO" and train.common.launcher == "local":
            # auto: the GPUs visible, so at least one; Slurm allocates its nodes' GPUs itself
            found.append((accelerate_key, per_node if isinstance(per_node, int) else 1))
    for section in ("infer", "toxicity", "helpfulness"):
        engine = getattr(params, section, None)
        engine = getattr(engine, "engine", None)
        key = f"{section}.engine"
        if not isinstance(engine, EngineParams) or (wanted is not None and key not in wanted):
            continue
        if engine.backend == "vllm" or engine.tensor_parallel_size > 1:
            # an explicit data_parallel_size asks for that many replicas of tensor_parallel_size
            replicas = (engine.data_parallel_size or 1) if engine.backend == "vllm" else 1
            found.append((f"{key}.tensor_parallel_size", engine.tensor_parallel_size * replicas))
        elif engine.device.startswith("cuda"):
            found.append((f"{key}.device", 1))
    for key, config in llm_configs(params):
        local_cuda = config.backend == "local" and config.device.startswith("cuda")
        if local_cuda and (wanted is None or key in wanted):
            found.append((f"{key}.device", 1))
    return found


def gpu_checks(params: BaseModel, root: Path, keys: Iterable[str] | None = None) -> list[Check]:
    from janus.accelerators import cuda_device_count

    needs = gpu_requirements(params, root, keys)
    if not needs:
        return [] if keys is not None else [Check("gpu", "-", OK, "no setting asks for a GPU")]
    present = cuda_device_count()
    rows = []
    for key, count in needs:
        if present >= count:
            rows.append(Check("gpu", key, OK, f"asks for {count} GPU(s); {present} present"))
        else:
            have = f"{present} present" if present else "CUDA is not available"
            rows.append(Check("gpu", key, FAIL, f"asks for {count} GPU(s); {have}"))
    return rows


# -- inputs (dvc.yaml through DVC's own API) ----------------------------------------------------


def dvc_stages(root: Path, params_path: Path) -> list[tuple[str, list[str], list[str]]]:
    """(stage, deps, outs) of every stage, with `${...}` resolved from `params_path` as
    `dvc repro` would resolve them with that file as params.yaml."""
    from dvc.dependency.param import ParamsDependency
    from dvc.repo import Repo

    def read(repo: Repo) -> list[tuple[str, list[str], list[str]]]:
        return [
            (
                getattr(stage, "name", None) or stage.addressing,
                [str(dep.def_path) for dep in stage.deps if not isinstance(dep, ParamsDependency)],
                [str(out.def_path) for out in stage.outs],
            )
            for stage in repo.index.stages
        ]

    default = root / "params.yaml"
    if default.exists() and default.resolve() == params_path.resolve():
        with Repo(str(root)) as repo:
            return read(repo)
    with tempfile.TemporaryDirectory(prefix="janus-preflight-") as scratch:
        shutil.copy(root / "dvc.yaml", Path(scratch) / "dvc.yaml")
        shutil.copy(params_path, Path(scratch) / "params.yaml")
        for dvc_file in _dvc_files(root):  # imports and tracked data make outputs too
            target = Path(scratch) / dvc_file.relative_to(root)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(dvc_file, target)
        with contextlib.redirect_stdout(io.StringIO()), Repo.init(scratch, no_scm=True) as repo:
            return read(repo)


def _dvc_files(root: Path) -> Iterator[Path]:
    for folder, subfolders, files in os.walk(root):
        subfolders[:] = [name for name in subfolders if not name.startswith(".")]
        yield from (Path(folder) / name for name in files if name.endswith(".dvc"))


def _made(path: str, outs: set[str]) -> bool:
    parts = PurePosixPath(path).parts
    return any(parts[: len(PurePosixPath(out).parts)] == PurePosixPath(out).parts for out in outs)


def input_checks(root: Path, params_path: Path, stages=None) -> list[Check]:
    stages = stages if stages is not None else dvc_stages(root, params_path)
    outs = {out for _, _, made in stages for out in made}
    readers: dict[str, list[str]] = {}
    for name, deps, _ in stages:
        for dep in deps:
            readers.setdefault(dep, []).append(name)
    rows = []
    for path, names in sorted(readers.items()):
        if (root / path).exists() or _made(path, outs):
            continue
        rows.append(
            Check(
                "input",
                path,
                FAIL,
                f"read by {', '.join(names[:3])}{' ...' if len(names) > 3 else ''}; "
                "missing, and no stage makes it",
            )
        )
    if not rows:
        rows.append(
            Check("input", "dvc.yaml", OK, f"{len(readers)} inputs exist or a stage makes them")
        )
    return rows


# -- hub datasets and models ---------------------------------------------------------------------


@dataclass(frozen=True)
class HubRef:
    key: str  # the params key naming it
    repo_type: str  # dataset | model
    repo_id: str
    revision: str | None


def hub_refs(raw: Any, prefix: str = "") -> list[HubRef]:
    """Hub datasets (`hub:owner/name` values) and repos named by id (`hub_id`, `<x>_hub_id`: a
    model, or else a dataset; a hub-id `model` beside a `revision`) in the params as written, each
    with its revision: the sibling `revision`, `<x>_revision` beside `<x>_hub_id`, or
    `<key>_revision` beside a `hub:` value. A disabled entry (`enabled: false`) is not read."""
    found: list[HubRef] = []
    if isinstance(raw, dict):
        if raw.get("enabled") is False:
            return found
        for name, value in raw.items():
            key = f"{prefix}{name}"
            if isinstance(value, str) and value.startswith("hub:"):
                revision = raw.get(f"{name}_revision", raw.get("revision"))
                # an LLM role's `model: hub:<id>` (the open judge) is a model, else a dataset
                kind = "model" if name == "model" else "dataset"
                found.append(HubRef(key, kind, value[4:], revision))
            elif isinstance(value, str) and name.endswith("hub_id"):
                revision = raw.get(f"{name[: -len('hub_id')]}revision", raw.get("revision"))
                found.append(HubRef(key, "model or dataset", value, revision))
            elif _names_hub_model(raw, name, value):
                found.append(HubRef(key, "model", value, raw.get("revision")))
            else:
                found += hub_refs(value, f"{key}.")
    elif isinstance(raw, list):
        for index, value in enumerate(raw):
            found += hub_refs(value, f"{prefix}{index}.")
    return found


def _names_hub_model(entry: dict[str, Any], name: str, value: Any) -> bool:
    if not isinstance(value, str):
        return False
    # a model named by hub id beside its revision (a local directory of that name is not one)
    return (
        name == "model" and "revision" in entry and bool(HUB_ID.match(value))
        and not Path(value).exists()
    )  # fmt: skip


def hub_offline() -> bool:
    value = os.environ.get("HF_HUB_OFFLINE", "")
    return value.upper() in ("1", "ON", "YES", "TRUE")


def _resolve_hub(api, ref: HubRef, revision: str, offline: bool, unreachable: str | None):
    """(status, detail): the ref at its revision on the hub, or in the local cache offline."""
    import huggingface_hub
    from huggingface_hub.utils import (
        GatedRepoError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    kinds = ref.repo_type.split(" or ")  # an id alone may name a model or a dataset
    if offline:
        for kind in kinds:
            try:
                huggingface_hub.snapshot_download(
                    ref.repo_id, revision=revision, repo_type=kind, local_files_only=True
                )
            except (LocalEntryNotFoundError, OSError):
                continue
            return OK, f"in the local HF cache at {revision}"
        return FAIL, f"not in the local HF cache at {revision} (offline)"
    if unreachable:
        return FAIL, unreachable
    for kind in kinds:
        try:
            info = api.repo_info(
                ref.repo_id, revision=revision, repo_type=kind, timeout=HUB_TIMEOUT_S
            )
        except GatedRepoError:
            return FAIL, "gated: accept its terms on the hub and set HF_TOKEN"
        except RevisionNotFoundError:
            return FAIL, f"no revision {revision!r}"
        except RepositoryNotFoundError:
            continue
        except Exception as error:  # noqa: BLE001 - a network fault: said once, the rest skipped
            return FAIL, (
                f"the hub is unreachable ({type(error).__name__}); HF_HUB_OFFLINE=1 checks the "
                "local cache instead"
            )
        return OK, f"{revision} resolves to {info.sha[:12]}"
    return FAIL, f"no {ref.repo_type} {ref.repo_id!r} on the hub"


def hub_checks(raw: dict[str, Any], offline: bool | None = None) -> list[Check]:
    import huggingface_hub

    offline = hub_offline() if offline is None else offline
    api = huggingface_hub.HfApi()
    rows = []
    unreachable: str | None = None  # after one network fault, the rest are not tried
    for ref in hub_refs(raw):
        what = f"{ref.key} ({ref.repo_id})"
        revision = ref.revision or "main"
        pinned = bool(ref.revision and COMMIT.match(ref.revision))
        unpinned = (
            ""
            if pinned
            else f"; unpinned ({ref.revision or 'no revision'}): it follows the hub, and DVC"
            " cannot see it move: pin a commit hash"
        )
        status, detail = _resolve_hub(api, ref, revision, offline, unreachable)
        if status == FAIL and detail.startswith("the hub is unreachable"):
            unreachable = detail
        if status == OK and not pinned:
            status = WARN
        rows.append(Check("hub", what, status, detail + unpinned))
    return rows


# -- disk ----------------------------------------------------------------------------------------


def parameter_count(config) -> int:
    """Parameters of a transformers model config, counted on the meta device (no memory)."""
    from accelerate import init_empty_weights
    from transformers import AutoModelForCausalLM

    with init_empty_weights():
        model = AutoModelForCausalLM.from_config(config)
    return sum(parameter.numel() for parameter in model.parameters())


def _base_config(params: BaseModel, base_dir: Path | None, offline: bool):
    built = base_dir is not None and (base_dir / "config.json").exists()
    if not built and not (params.models.source == "hub" and params.models.hub_id):
        return None, None
    from transformers import AutoConfig

    if built:
        return AutoConfig.from_pretrained(base_dir), str(base_dir)
    if params.models.source == "hub" and params.models.hub_id:
        revision = getattr(params.models, "revision", None)
        config = AutoConfig.from_pretrained(
            params.models.hub_id, revision=revision, local_files_only=offline
        )
        return config, params.models.hub_id
    return None, None


def disk_checks(
    params: BaseModel, root: Path, base_dir: Path | None, gpus: bool, offline: bool = False
) -> list[Check]:
    from janus.config.train import TrainStage

    common = params.train.common
    stages = [
        name for name in type(params.train).model_fields
        if isinstance(getattr(params.train, name), TrainStage)
    ]  # fmt: skip
    try:
        config, source = _base_config(params, base_dir, offline)
    except Exception as error:  # noqa: BLE001 - e.g. offline and not cached: say so, go on
        reason = " ".join(str(error).split())[:160]
        return [Check("disk", "models", SKIP, f"base model config unreadable: {reason}")]
    if config is None:
        return [Check("disk", "models", SKIP, "base model config unknown until `models` runs")]
    count = parameter_count(config)
    bf16 = common.bf16 is True or (common.bf16 == "auto" and gpus)
    per_param = 2 if bf16 else 4
    weights = count * per_param
    trainer = 0
    if common.save_strategy != "no":
        kept = common.save_total_limit or 1
        one_stage = kept * count * (per_param + OPTIMIZER_BYTES_PER_PARAM)
        trainer = one_stage * (len(stages) if common.keep_checkpoints else 1)
    needed = weights * len(stages) + trainer
    free = shutil.disk_usage(root).free
    detail = (
        f"~{needed / 1e9:,.1f} GB for {len(stages)} checkpoints of {count / 1e9:.2f}B parameters"
        f" ({source}) at {per_param} bytes + trainer checkpoints; {free / 1e9:,.1f} GB free"
    )
    return [Check("disk", "train", OK if free >= needed else FAIL, detail)]


# -- tiktoken ------------------------------------------------------------------------------------


def tiktoken_checks(entries: Iterable[tuple[str, LLMConfig]]) -> list[Check]:
    from janus.llm.pricing import TIKTOKEN_HINT, tiktoken_encoding_on_disk

    rows = []
    for key, config in entries:
        openai_model = config.backend == "openai" and (
            config.provider == "openai" or None in config.base_urls()
        )
        if not openai_model:
            continue
        encoding = tiktoken_encoding_on_disk(config.model)
        if encoding is not None:
            rows.append(Check("tiktoken", f"{key}.model", OK, f"{encoding.name} on disk"))
        else:
            rows.append(
                Check("tiktoken", f"{key}.model", WARN, f"BPE file not cached: {TIKTOKEN_HINT}")
            )
    return rows


# -- the whole run, and one stage ----------------------------------------------------------------


def run_preflight(params_path: str | Path, root: str | Path = ".") -> list[Check]:
    import yaml

    from janus.config.params import load_params

    root, params_path = Path(root), Path(params_path)
    params = load_params(params_path)
    raw = yaml.safe_load(params_path.read_text())
    entries = list(llm_configs(params))
    rows = key_checks(entries) + served_checks(entries)
    gpu_rows = gpu_checks(params, root)
    rows += gpu_rows
    stages = dvc_stages(root, params_path)
    rows += input_checks(root, params_path, stages)
    hub_rows = hub_checks(raw)
    rows += hub_rows
    # the base model's config from the local cache only, when the hub is out of reach
    offline = hub_offline() or any("hub is unreachable" in row.detail for row in hub_rows)
    base_outs = [out for name, _, outs in stages if name == "models" for out in outs]
    base_dir = root / base_outs[0] if base_outs else None
    asks_gpus = any(row.area == "gpu" and row.what != "-" for row in gpu_rows)
    rows += disk_checks(params, root, base_dir, gpus=asks_gpus, offline=offline)
    rows += tiktoken_checks(entries)
    return rows


def failed(rows: Iterable[Check]) -> list[Check]:
    return [row for row in rows if row.status == FAIL]


def render(rows: list[Check]) -> str:
    """A plain table, one row per check, failing rows marked in the status column."""
    header = ("area", "what", "status", "detail")
    cells = [header, *((row.area, row.what, row.status, row.detail) for row in rows)]
    widths = [max(len(line[i]) for line in cells) for i in range(3)]
    lines = [
        "  ".join(
            [*(cell.ljust(width) for cell, width in zip(line[:3], widths, strict=True)), line[3]]
        )
        for line in cells
    ]
    lines.insert(1, "  ".join("-" * width for width in [*widths, len("detail")]))
    return "\n".join(lines)


def before_stage(params: BaseModel, *keys: str, root: str | Path = ".") -> None:
    """The checks that concern one stage, before it sends or loads anything: for each params key
    naming an LLM endpoint (`llm.judge`, `infer.endpoints.<name>`) its key and model list; for a
    launch setting (`train.common.accelerate_config`, `infer.engine`) the GPUs it asks for.
    Raises `PreflightFailed` with the failing rows."""
    entries = [(key, _resolve(params, key)) for key in keys]
    llm = [(key, value) for key, value in entries if isinstance(value, LLMConfig)]
    rows = key_checks(llm) + served_checks(llm, probe=False)
    launch = [key for key, value in entries if not isinstance(value, LLMConfig)]
    if launch:
        rows += gpu_checks(params, Path(root), launch)
    bad = failed(rows)
    if bad:
        raise PreflightFailed("preflight: " + "; ".join(f"{row.what}: {row.detail}" for row in bad))


def answering_keys(params: BaseModel, names: Iterable[str], engine_key: str) -> list[str]:
    """The keys that concern a stage whose models answer prompts (`infer`, `helpfulness`):
    each endpoint model's `infer.endpoints.<name>`, and the engine when a local model runs."""
    keys: list[str] = []
    for name in names:
        if params.infer.model_kind(name) == "endpoint":
            keys.append(f"infer.endpoints.{name}")
        elif engine_key not in keys:
            keys.append(engine_key)
    return keys
