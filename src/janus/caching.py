"""What the two generation caches share: where they live, and what identifies a checkpoint.

`janus.llm.cache` (answers of LLM endpoints and the local LLM backend) and
`janus.infer.completion_cache` (answers of the local inference engines) both key on a model's
identity and live in one directory; this module imports nothing of either, so a stage that
generates with a local engine does not depend on the HTTP client's code.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from janus.hashing import tree_digest

CACHE_DIR_ENV = "JANUS_CACHE_DIR"


def resolve_cache_dir(configured: str) -> Path:
    """`JANUS_CACHE_DIR` when set (tests, CI), else the params value (absolute or ~)."""
    override = os.environ.get(CACHE_DIR_ENV)
    return Path(override or configured).expanduser().resolve()


# Files of a checkpoint that do not change its answers.
_FINGERPRINT_SKIP = {"janus_format.json", "README.md", ".gitattributes"}
_fingerprints: dict[tuple, str] = {}
_fingerprint_lock = threading.Lock()


def checkpoint_fingerprint(checkpoint_dir: str | Path) -> str:
    """sha256 over the names and bytes of a checkpoint's files (weights, config, tokenizer).

    `models/base` can hold different weights under the same path, so the path alone cannot be
    the model's identity. Hashed once per process (per file listing with sizes and mtimes).
    """
    root = Path(checkpoint_dir).resolve()
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: local model checkpoint directory not found")
    files = sorted(
        path
        for path in root.rglob("*")
        if path.is_file()
        and path.name not in _FINGERPRINT_SKIP
        and not any(part.startswith(".") for part in path.relative_to(root).parts)
    )
    listing = tuple(
        (str(path.relative_to(root)), path.stat().st_size, path.stat().st_mtime_ns)
        for path in files
    )
    with _fingerprint_lock:
        if (str(root), listing) in _fingerprints:
            return _fingerprints[(str(root), listing)]
    fingerprint = tree_digest(root, files)
    with _fingerprint_lock:
        _fingerprints[(str(root), listing)] = fingerprint
    return fingerprint

