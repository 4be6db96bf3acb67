"""Check that every hub dataset and model the params name resolves at its revision (offline:
is in the local HF cache); an unpinned revision is a warn row."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from janus.preflight.common import FAIL, OK, WARN, Check

HUB_TIMEOUT_S = 10.0
COMMIT = re.compile(r"^[0-9a-f]{40}$")
HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$")


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
