"""Stage `expand_seeds` (A.2): the hand-made keywords of Table 6 become short preference
descriptions (one teacher call per keyword), and seed preference sets are assembled from them, one
random preference per dimension. The seed sets are the examples `preference_sets` shows the
teacher.

Unlike the later data stages it keeps its outputs in memory (`collect_step`): one request per
taxonomy keyword (a few hundred by construction), and the seed sets are drawn from all of them.
"""

from __future__ import annotations

import re
from typing import Any

from janus.config.expand_seeds import ExpandSeedsSection
from janus.config.llm import LLMConfig
from janus.data.common import item_rng
from janus.data.taxonomy import Taxonomy
from janus.prompts import render_messages
from janus.steps.base import Rejection, Step, Tally
from janus.steps.runner import collect_step

_LABEL = re.compile(r"^\s*(?:description|preference|answer)\s*:\s*", re.IGNORECASE)
# Fewer words than this is no description ("Prefers.", "Prefers: formal"): dropped and counted.
MIN_DESCRIPTION_WORDS = 3
_SENTENCE_END = re.compile(r"[.!?](?=\s|$)")


def clean_description(text: str | None, max_chars: int) -> tuple[str | None, bool]:
    """The first paragraph of a generated description, at most `max_chars` long.

    Returns (description or None when nothing usable is left, whether it was shortened). A long
    description is cut at its last sentence end within the limit, else at a word boundary; one of
    fewer than MIN_DESCRIPTION_WORDS words counts as nothing usable.
    """
    if not text:
        return None, False
    paragraphs = [part for part in re.split(r"\n\s*\n|\n", text.strip()) if part.strip()]
    if not paragraphs:
        return None, False
    description = _LABEL.sub("", paragraphs[0]).strip().strip("\"'“”").strip()
    description = " ".join(description.split())
    shortened = False
    if len(description) > max_chars:
        shortened = True
        head = description[:max_chars]
        ends = [match.end() for match in _SENTENCE_END.finditer(head)]
        if ends:
            description = head[: ends[-1]]
        else:
            head = head[:-1]  # room for the full stop
            cut = head.rsplit(" ", 1)[0] if " " in head else head
            description = cut.rstrip(",;:-") + "."
    if len(description.split()) < MIN_DESCRIPTION_WORDS:
        return None, False
    return description, shortened


def select_keywords(taxonomy: Taxonomy, config: ExpandSeedsSection) -> list[dict[str, str]]:
    """The (dimension, subdimension, keyword) triples to expand: all, or k per subdimension."""
    selected = []
    for dimension in taxonomy.dimensions:
        for subdimension in dimension.subdimensions:
            keywords = list(subdimension.keywords)
            k = config.keywords_per_subdimension
            if k is not None and k < len(keywords):
                rng = item_rng(config.seed, dimension.key, subdimension.name)
                keywords = sorted(rng.sample(keywords, k), key=keywords.index)
            selected += [
                {
                    "dimension": dimension.key,
                    "dimension_name": dimension.name,
                    "subdimension": subdimension.name,
                    "preference": keyword,
                }
                for keyword in keywords
            ]
    return selected


def assemble_seed_sets(
    preferences: list[dict[str, str]], dimensions: tuple[str, ...], count: int, seed: int
) -> list[dict[str, Any]]:
    """`count` seed sets, each one randomly chosen preference per dimension (in dimension order)."""
    pools: dict[str, list[dict[str, str]]] = {dimension: [] for dimension in dimensions}
    for preference in preferences:
        pools[preference["dimension"]].append(preference)
    empty = [dimension for dimension, pool in pools.items() if not pool]
    if empty:
        raise ValueError(f"no expanded preference for dimension(s) {empty}; cannot build seed sets")
    seed_sets = []
    for index in range(count):
        rng = item_rng(seed, "seed_set", index)
        chosen = [rng.choice(pools[dimension]) for dimension in dimensions]
        seed_sets.append(
            {
                "seed_id": f"seed-{index:04d}",
                "preference_set": [
                    {
                        field: item[field]
                        for field in ("dimension", "subdimension", "preference", "description")
                    }
                    for item in chosen
                ],
            }
        )
    return seed_sets


def expand_seed_request(item: dict[str, Any], config: ExpandSeedsSection) -> Any:
    """The request for one selected keyword."""
    from janus.llm import ChatRequest

    return ChatRequest(
        messages=render_messages(
            "expand_seed",
            dimension=item["dimension_name"],
            subdimension=item["subdimension"],
            keyword=item["preference"],
        ),
        temperature=config.generation.temperature,
        top_p=config.generation.top_p,
        max_tokens=config.generation.max_tokens,
        tag=f"{item['dimension']}/{item['subdimension']}/{item['preference']}",
    )


def expand_seed_requests(selected: list[dict[str, Any]], config: ExpandSeedsSection) -> list[Any]:
    """One request per selected keyword: what the stage sends."""
    return [expand_seed_request(item, config) for item in selected]


class ExpandSeedsStep(Step):
    """Selected keyword -> the keyword with its description (none usable: rejected as empty)."""

    name = "expand_seeds"
    desc = "seed descriptions"

    def __init__(self, config: ExpandSeedsSection):
        self.config = config
        self.max_failed_fraction = config.max_failed_fraction

    def format_input(self, row: dict[str, Any]) -> Any:
        return expand_seed_request(row, self.config)

    def _description(self, result: Any) -> tuple[str | None, bool]:
        text = result.text if result.ok else None
        return clean_description(text, self.config.description_max_chars)

    def observe(self, row: dict[str, Any], result: Any, tally: Tally) -> None:
        description, was_cut = self._description(result)
        tally.counts["shortened"] += description is not None and was_cut

    def format_output(self, row: dict[str, Any], result: Any) -> dict[str, Any] | Rejection:
        description, _ = self._description(result)
        if description is None:
            return Rejection("empty", result.error or "empty answer")
        return {**row, "description": description}

    def metrics(self, tally: Tally) -> dict[str, Any]:
        return {
            "keywords_expanded": tally.rows,
            "descriptions": tally.written,
            "empty_descriptions": tally.rejected["empty"],
            "shortened_descriptions": tally.counts["shortened"],
        }


def expand_seeds(
    taxonomy: Taxonomy, config: ExpandSeedsSection, teacher: LLMConfig
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Seed sets and the stage's metrics."""
    selected = select_keywords(taxonomy, config)
    expanded, metrics = collect_step(
        ExpandSeedsStep(config), selected, teacher, total=len(selected)
    )
    seed_sets = assemble_seed_sets(expanded, taxonomy.keys, config.num_seed_sets, config.seed)
    return seed_sets, {"taxonomy": taxonomy.counts(), **metrics, "seed_sets": len(seed_sets)}
