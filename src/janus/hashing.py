"""The one file hasher: a file's digest, and a tree's (each file's relative name, a NUL, then
its bytes, in the order given), streamed so a checkpoint's weights never sit in memory."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path


def file_digest(path: str | Path, algorithm: str = "sha256") -> str:
    """Hex digest of a file's bytes (`md5` for DVC's own, else sha256)."""
    with Path(path).open("rb") as handle:
        return hashlib.file_digest(handle, algorithm).hexdigest()


def tree_digest(root: str | Path, files: Iterable[Path], algorithm: str = "sha256") -> str:
    """Hex digest of `files` under `root`: each one's path relative to `root`, a NUL, its bytes."""
    root = Path(root)
    digest = hashlib.new(algorithm)
    for path in files:
        digest.update(str(path.relative_to(root)).encode() + b"\0")
        with path.open("rb") as handle:
            while chunk := handle.read(1 << 22):
                digest.update(chunk)
    return digest.hexdigest()
