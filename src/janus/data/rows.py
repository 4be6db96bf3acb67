"""Row types of the Multifaceted Collection as it is published on the hub, used to read (and
check) every row of the published files before they feed `build_pairs` and training.

Layouts, from the dataset cards of kaist-ai/Multifaceted-Collection and its variants:

- main (SFT, 196k rows): main_source, original_source, preference_set (a list of {dimension,
  subdimension, preference, description}), system, prompt, output.
- ORPO (65k rows): main_source, original_source, system, prompt, and chosen / rejected as chat
  message lists ([{content, role}, ...]: the user turn, then the assistant's answer).
- DPO: the same columns with chosen / rejected as the answer text (the hub tags it `dpo` for its
  prompt / chosen / rejected columns; copies of it on the hub store both as strings).
- RM: its card's feature list could not be checked here, so either form is accepted for every
  variant, and a system turn inside a message list too (see `PublishedPairRow.response`).

Extra columns are ignored (the hub adds none today); a missing or empty field, a wrong type or a
preference set without exactly one preference per dimension is a bad row, counted by reason.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

NonEmpty = Field(min_length=1)


class _Row(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True, strict=True)


class Preference(_Row):
    dimension: str = NonEmpty
    subdimension: str = NonEmpty
    preference: str = NonEmpty
    description: str = NonEmpty


class PublishedCollectionRow(_Row):
    """One row of kaist-ai/Multifaceted-Collection: a response to one system message."""

    main_source: str = NonEmpty
    original_source: str = NonEmpty
    preference_set: list[Preference] = Field(min_length=1)
    system: str = NonEmpty
    prompt: str = NonEmpty
    output: str = NonEmpty


class ChatMessage(_Row):
    role: Literal["system", "user", "assistant"]
    content: str


class PublishedPairRow(_Row):
    """One row of the DPO / ORPO / RM variants: a chosen and a rejected answer to one prompt
    under the chosen answer's system message."""

    main_source: str = NonEmpty
    original_source: str = NonEmpty
    system: str = NonEmpty
    prompt: str = NonEmpty
    chosen: list[ChatMessage] = Field(min_length=1)
    rejected: list[ChatMessage] = Field(min_length=1)

    @field_validator("chosen", "rejected", mode="before")
    @classmethod
    def _text_is_an_answer(cls, value: object) -> object:
        # The DPO layout stores the answer itself: the same as a one-message conversation.
        return [{"role": "assistant", "content": value}] if isinstance(value, str) else value

    @field_validator("chosen", "rejected")
    @classmethod
    def _ends_with_an_answer(cls, messages: list[ChatMessage]) -> list[ChatMessage]:
        if messages[-1].role != "assistant" or not messages[-1].content.strip():
            raise ValueError("the last message must be a non-empty assistant answer")
        return messages

    @staticmethod
    def response(messages: list[ChatMessage]) -> str:
        return messages[-1].content.strip()


# The published preference variants, each named after the trainer it feeds (train@dpo,
# train@orpo, rm): `build_pairs` writes data/pairs/<variant>/.
PAIR_VARIANTS = ("dpo", "orpo", "rm")

VARIANT_ROW_TYPES: dict[str, type[_Row]] = {
    "collection": PublishedCollectionRow,
    **dict.fromkeys(PAIR_VARIANTS, PublishedPairRow),
}
