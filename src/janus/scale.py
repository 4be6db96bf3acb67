"""No silent under-scaling: an input that holds fewer rows than its params ask for is an error.

A paper-scale run pointed at the small sample files would otherwise report a toy evaluation as
if it were the paper's. Every stage that takes N rows from a file calls `require_rows` before
any model or paid API is touched; `allow_smaller: true` in that params section is the explicit,
recorded opt-out (the default profile's samples are small on purpose), and then the shortfall is
logged as a warning instead.
"""

from __future__ import annotations

from janus.logging_utils import get_logger

log = get_logger(__name__)


class TooFewRows(ValueError):
    """An input file smaller than its params ask for (and `allow_smaller` is false)."""


def require_rows(
    source: str,
    available: int,
    requested: int | None,
    *,
    what: str,
    section: str,
    allow_smaller: bool,
) -> int:
    """How many rows to use: `requested` (None: all available). Fewer available rows than
    requested raise TooFewRows naming the file and both counts, unless `allow_smaller`."""
    if requested is None or available >= requested:
        return available if requested is None else requested
    message = (
        f"{source}: holds {available} {what}, but params ask for {requested} "
        f"({section}); put the full file there, or set {section.split('.')[0]}.allow_smaller: "
        "true to run on what is there"
    )
    if not allow_smaller:
        raise TooFewRows(message)
    log.warning("%s (allow_smaller: true, so running on %d)", message, available)
    return available
