"""Check that every file a stage of dvc.yaml reads exists, or a stage (or a .dvc file) makes it,
read through DVC's own API with `${...}` resolved from the profile."""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

from janus.preflight.common import FAIL, OK, Check


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
