"""The responses a judge grades: every model's `outputs/responses/<model>.jsonl`, validated."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from janus.evaluate.rows import ResponseRow, validate_rows
from janus.io import read_jsonl
from janus.logging_utils import get_logger

log = get_logger(__name__)

CONDITIONS = ("system", "no_system")


@dataclass(frozen=True)
class Response:
    model: str
    condition: str
    id: str
    text: str

    @property
    def empty(self) -> bool:
        return not self.text.strip()


def load_responses(
    responses_dir: Path, models: Sequence[str], bench_ids: set[str]
) -> tuple[list[Response], dict[str, Counter]]:
    """Every model's responses (`<dir>/<model>.jsonl`, `rows.ResponseRow`), and per model the
    rows skipped by reason. One (model, id, condition) answered twice keeps the first. A model
    without a file is an error: the judge would otherwise report a table without it."""
    responses, skipped = [], {}
    for model in models:
        path = responses_dir / f"{model}.jsonl"
        if not path.exists():
            raise FileNotFoundError(
                f"{path}: no responses for model {model!r} (run its infer stage)"
            )
        raw = list(read_jsonl(path))
        counts: Counter = Counter()
        seen = set()
        for number, row in enumerate(raw, start=1):
            valid, reasons, _ = validate_rows(ResponseRow, [row])
            reason = None
            if reasons:
                bad_condition = isinstance(row, dict) and row.get("condition") not in CONDITIONS
                reason = "bad_condition" if bad_condition else next(iter(reasons))
            elif valid[0].model != model:
                reason = "wrong_model"
            elif valid[0].id not in bench_ids:
                reason = "unknown_id"
            elif (valid[0].id, valid[0].condition) in seen:
                reason = "duplicate"
            if reason:
                counts[reason] += 1
                if counts[reason] <= 3:
                    log.warning("%s:%d: response row skipped (%s)", path, number, reason)
                continue
            item = valid[0]
            seen.add((item.id, item.condition))
            responses.append(Response(model, item.condition, item.id, item.response))
        skipped[model] = counts
    return responses, skipped
