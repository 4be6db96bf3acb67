"""Fine-grained bench `source` labels -> Table 2 columns, from a data file
(`bench.source_columns_path`)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from janus.config.bench import BENCH_SOURCE_NAMES

UNMAPPED = "unmapped"  # the column of a source the mapping file does not name


def _label_key(label: str) -> str:
    return re.sub(r"[^0-9a-z]", "", label.casefold())


@dataclass(frozen=True)
class SourceColumns:
    """Fine-grained `source` -> Table 2 column (a BENCH_SOURCE_NAMES key), from the data file."""

    columns: dict[str, str]  # normalised label -> column
    default: str | None

    @classmethod
    def load(cls, path: Path | str) -> SourceColumns:
        data = yaml.safe_load(Path(path).read_text())
        if not isinstance(data, dict) or not isinstance(data.get("columns"), dict):
            raise ValueError(f"{path}: expected `columns: {{benchmark: [labels]}}` and `default`")
        default = data.get("default")
        columns: dict[str, str] = {}
        for column, labels in data["columns"].items():
            if column not in BENCH_SOURCE_NAMES:
                raise ValueError(f"{path}: unknown column {column!r} ({list(BENCH_SOURCE_NAMES)})")
            for label in [column, *labels]:
                key = _label_key(str(label))
                if columns.get(key, column) != column:
                    raise ValueError(f"{path}: {label!r} is listed under two columns")
                columns[key] = column
        if default is not None and default not in BENCH_SOURCE_NAMES:
            raise ValueError(
                f"{path}: default {default!r} is not one of {list(BENCH_SOURCE_NAMES)}"
            )
        return cls(columns, default)

    def column(self, source: str) -> str:
        return self.columns.get(_label_key(source), self.default or UNMAPPED)
