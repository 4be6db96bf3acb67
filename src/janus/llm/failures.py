"""When an LLM call has failed: `StageFailed` (past a stage's `max_failed_fraction`, or a broken
endpoint), the threshold check, and the short reason each failure is counted under."""

from __future__ import annotations


class StageFailed(RuntimeError):
    """More items failed than the stage's `max_failed_fraction` allows, or the endpoint looks
    broken (a run of failures). Raised before the stage's output is in place (a stage that
    streams its rows to `janus.io.write_jsonl` loses its temporary file); every answer already
    paid for is in the cache, so a rerun replays the items that succeeded and asks again for
    the failed ones (a fresh round of attempts for an item whose answers were all rejected)."""

    def __init__(
        self,
        stage: str,
        failed: int,
        items: int,
        by_reason: dict[str, int],
        max_failed_fraction: float | None,
        unasked: int = 0,
        broken: str | None = None,
        unit: str = "items",  # what failed, in the message: "items", "requests"
    ):
        self.failed, self.items, self.by_reason, self.unasked = failed, items, by_reason, unasked
        reasons = ", ".join(f"{reason}: {n}" for reason, n in sorted(by_reason.items()))
        if broken:
            head = f"{stage}: stopped early, the endpoint looks broken ({broken})"
        else:
            head = (
                f"{stage}: {failed} of {items} {unit} failed, more than "
                f"{stage}.max_failed_fraction={max_failed_fraction} allows"
            )
        super().__init__(
            f"{head}; failed by reason: {{{reasons}}}"
            + (f"; {unasked} items not asked yet" if unasked else "")
            + f". Nothing was written; every answer received is cached, so a rerun (dvc repro)"
            f" takes the {items - failed} items that succeeded from the cache without a request"
            f" and asks again for the {failed} failed"
            + (f" and {unasked} unasked" if unasked else "")
            + " items (a fresh round of attempts for each whose answers were all rejected)."
        )


def check_failed_fraction(
    stage: str,
    by_reason: dict[str, int],
    items: int,
    max_failed_fraction: float | None,
    unit: str = "items",
) -> None:
    """Raise `StageFailed` when more than `max_failed_fraction` of `items` failed. For stages that
    re-ask on their own (the judge); `LLMClient` applies it to every call it is given it for."""
    failed = sum(by_reason.values())
    if max_failed_fraction is not None and failed > max_failed_fraction * items:
        raise StageFailed(stage, failed, items, by_reason, max_failed_fraction, unit=unit)

def failure_reason(error: str) -> str:
    """A short, countable key for a backend's error text: http_404, timeout, malformed_response."""
    head = error.split(":", 1)[0]
    if "(HTTP " in head:
        return "http_" + head.split("(HTTP ", 1)[1].rstrip(")").strip()
    if "Timeout" in head:
        return "timeout"
    if "Connection" in head:
        return "connection_error"
    if "Malformed" in head:
        return "malformed_response"
    return head.strip().replace(" ", "_").lower() or "error"
