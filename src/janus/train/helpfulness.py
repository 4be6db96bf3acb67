"""General-helpfulness preference pairs for the reward model's second stage (E.2).

The paper mixes 72% HH-RLHF, 14% OASST1 preprocessed for reward modelling and 14% WebGPT
comparisons. One adapter per source schema turns a source row into (instruction, chosen,
rejected); the mix draws `round(share * helpfulness_size)` training pairs from each source after
holding out `helpfulness_eval_fraction` of it for the held-out accuracy.

Schemas (as published on the hub):
- hh_rlhf (Anthropic/hh-rlhf): `chosen`, `rejected`: whole transcripts
  ("\\n\\nHuman: ...\\n\\nAssistant: ..."), identical up to the last Assistant turn.
- oasst1 (tasksource/oasst1_pairwise_rlhf_reward): `prompt` (the history before the reply,
  one "prompter: ..." / "assistant: ..." line per message), `chosen`, `rejected`, `lang`.
- webgpt_comparisons (openai/webgpt_comparisons): `question` ({"full_text": ...}),
  `answer_0`, `answer_1`, `score_0`, `score_1`; ties (equal scores) carry no preference.

A multi-turn history becomes one instruction that quotes the earlier turns, since the pipeline's
prompt format (`format_prompt`) has one system message and one instruction.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from janus.config.train import RewardModelStage
from janus.data.sources.base import BadRow, SourceError, read_rows, require_text
from janus.logging_utils import get_logger
from janus.train.data import TrainingInputError

log = get_logger(__name__)

_HH_TURN = re.compile(r"\n\n(Human|Assistant):")
_OASST_ROLE = re.compile(r"^(prompter|assistant): ", re.MULTILINE)
_WEBGPT_CITATION = re.compile(r"\s?\[\d+(?:\s*,\s*\d+)*\]")


@dataclass(frozen=True)
class Pair:
    prompt: str  # the instruction; the system message is empty for helpfulness data
    chosen: str
    rejected: str


def _dialogue(turns: list[tuple[str, str]]) -> str:
    """One instruction from a history: the last user turn, with earlier turns quoted before it."""
    if len(turns) == 1:
        return turns[0][1]
    history = "\n\n".join(f"{speaker}: {text}" for speaker, text in turns[:-1])
    return f"{history}\n\nUser: {turns[-1][1]}"


def _hh_turns(transcript: str) -> list[tuple[str, str]]:
    text = transcript if transcript.startswith("\n\n") else "\n\n" + transcript.lstrip("\n")
    parts = _HH_TURN.split(text)
    return [(parts[i], parts[i + 1].strip()) for i in range(1, len(parts) - 1, 2)]


class HHRLHFAdapter:
    key = "hh_rlhf"
    columns = ("chosen", "rejected")

    def extract(self, row: dict[str, Any]) -> Pair:
        chosen = _hh_turns(require_text(row.get("chosen"), "chosen"))
        rejected = _hh_turns(require_text(row.get("rejected"), "rejected"))
        if not chosen or chosen[-1][0] != "Assistant" or not rejected or rejected[-1][0] != "Assistant":
            raise BadRow("no_final_reply", "a transcript does not end with an Assistant turn")
        if chosen[:-1] != rejected[:-1]:
            raise BadRow("history_mismatch", "chosen and rejected differ before the last reply")
        history = [("User" if speaker == "Human" else "Assistant", text) for speaker, text in chosen[:-1]]
        if not history or history[-1][0] != "User" or not history[-1][1]:
            raise BadRow("missing_text", "no Human turn before the final reply")
        return Pair(_dialogue(history), chosen[-1][1], rejected[-1][1])


class OASST1PairwiseAdapter:
    key = "oasst1"
    columns = ("prompt", "chosen", "rejected", "lang")

    def extract(self, row: dict[str, Any]) -> Pair:
        prompt = require_text(row.get("prompt"), "prompt")
        pieces = _OASST_ROLE.split(prompt)
        if len(pieces) >= 3 and not pieces[0].strip():
            # ["", role, text, role, text, ...]: the unrolled history of the conversation
            turns = [
                ("User" if pieces[i] == "prompter" else "Assistant", pieces[i + 1].strip())
                for i in range(1, len(pieces) - 1, 2)
            ]
            if turns[-1][0] != "User":
                raise BadRow("no_final_user_turn", "the history does not end with a prompter turn")
            prompt = _dialogue(turns)
        return Pair(prompt, require_text(row.get("chosen"), "chosen"), require_text(row.get("rejected"), "rejected"))


class WebGPTComparisonsAdapter:
    key = "webgpt_comparisons"
    columns = ("question", "answer_0", "answer_1", "score_0", "score_1")

    def extract(self, row: dict[str, Any]) -> Pair:
        question = row.get("question")
        if isinstance(question, dict):
            question = question.get("full_text")
        question = require_text(question, "question.full_text")
        answers = [require_text(row.get(f"answer_{i}"), f"answer_{i}") for i in (0, 1)]
        scores = [row.get(f"score_{i}") for i in (0, 1)]
        if not all(isinstance(score, (int, float)) for score in scores):
            raise BadRow("wrong_type", "score_0/score_1 must be numbers")
        if scores[0] == scores[1]:
            raise BadRow("tie", "equal scores carry no preference")
        better = 0 if scores[0] > scores[1] else 1
        # The answers cite browsing quotes ([1], [2, 3]) that the prompt does not contain.
        chosen, rejected = (_WEBGPT_CITATION.sub("", answers[i]).strip() for i in (better, 1 - better))
        return Pair(question, chosen, rejected)


ADAPTERS = {adapter.key: adapter for adapter in (HHRLHFAdapter(), OASST1PairwiseAdapter(), WebGPTComparisonsAdapter())}


@dataclass
class HelpfulnessData:
    train: list[Pair]
    eval: list[Pair]
    stats: dict[str, int] = field(default_factory=dict)


def mix_counts(mix: dict[str, float], total: int) -> dict[str, int]:
    """Per-source counts in the mix's ratios that add up to `total` (largest remainder)."""
    exact = {name: share * total for name, share in mix.items() if share > 0}
    counts = {name: int(value) for name, value in exact.items()}
    remainder = total - sum(counts.values())
    for name in sorted(exact, key=lambda n: exact[n] - counts[n], reverse=True)[:remainder]:
        counts[name] += 1
    return counts


def read_source(
    name: str, path: str, split: str, root: Path, revision: str | None = None
) -> tuple[list[Pair], Counter]:
    adapter = ADAPTERS[name]
    pairs, skipped = [], Counter()
    try:
        for raw in read_rows(path, split, root=root, revision=revision):
            if raw.data is None:
                skipped["malformed"] += 1
                continue
            try:
                pair = adapter.extract(raw.data)
            except BadRow as bad:
                skipped[bad.reason] += 1
                continue
            if pair.chosen.strip() == pair.rejected.strip():
                skipped["chosen_equals_rejected"] += 1
                continue
            pairs.append(pair)
    except SourceError as error:
        raise TrainingInputError(f"train.rm.helpfulness_sources.{name}: {error}") from None
    if skipped:
        log.warning("%s (%s): skipped %d row(s): %s", name, path, sum(skipped.values()), dict(skipped))
    return pairs, skipped


def load_helpfulness(config: RewardModelStage, root: Path, seed: int) -> HelpfulnessData:
    """The stage-2 training mix and the held-out pairs of every mixed source."""
    counts = mix_counts(config.helpfulness_mix, config.helpfulness_size)
    data = HelpfulnessData([], [])
    for name, wanted in counts.items():
        source = config.helpfulness_sources[name]
        pairs, skipped = read_source(name, source.path, source.split, root, source.revision)
        random.Random(f"{seed}-{name}").shuffle(pairs)
        n_eval = round(config.helpfulness_eval_fraction * len(pairs))
        if config.helpfulness_eval_fraction > 0 and len(pairs) >= 2:
            n_eval = max(1, n_eval)
        held_out, pool = pairs[:n_eval], pairs[n_eval:]
        taken = pool[:wanted]
        if len(taken) < wanted:
            log.warning(
                "%s: the mix wants %d training pairs, the source has %d after holding out %d",
                name, wanted, len(pool), n_eval,
            )
        data.train.extend(taken)
        data.eval.extend(held_out)
        data.stats.update(
            {
                f"helpfulness_{name}_train": len(taken),
                f"helpfulness_{name}_eval": len(held_out),
                f"helpfulness_{name}_skipped": sum(skipped.values()),
                f"helpfulness_{name}_shortfall": wanted - len(taken),
            }
        )
    random.Random(f"{seed}-helpfulness-mix").shuffle(data.train)
    if not data.train:
        raise TrainingInputError(
            "train.rm: the helpfulness mix is empty; check train.rm.helpfulness_sources "
            f"({ {name: s.path for name, s in config.helpfulness_sources.items()} })"
        )
    return data
