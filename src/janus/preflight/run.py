"""`python -m janus preflight`: every check of a run, and the table it prints."""

from __future__ import annotations

from pathlib import Path

from janus.preflight.common import Check, llm_configs
from janus.preflight.disk import disk_checks
from janus.preflight.endpoints import key_checks, served_checks, tiktoken_checks
from janus.preflight.gpus import gpu_checks
from janus.preflight.hub import hub_checks, hub_offline
from janus.preflight.inputs import dvc_stages, input_checks


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
