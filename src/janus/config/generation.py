"""How the teacher or judge samples one kind of answer: shared by the LLM data stages, the bench,
the judge and the toxicity LLM scorer."""

from __future__ import annotations

from pydantic import (
    Field,
)

from janus.config.common import Section


class GenerationParams(Section):
    temperature: float = Field(ge=0)
    top_p: float = Field(gt=0, le=1)
    max_tokens: int = Field(ge=1)
