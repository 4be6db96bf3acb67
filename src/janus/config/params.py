"""The whole params schema, for the callers that read every section: the tests, `python -m janus
forecast`, the CLI. A stage never imports it (it would depend on every section's schema): it
calls `janus.config.common.load_sections` with the sections it reads.

Profiles are whole params files: `params.yaml` is the local default (bundled SmolLM2, CPU, minutes);
`profiles/paper.yaml` is paper scale (GPT-4-Turbo teacher and judge, Mistral-7B on GPUs);
`profiles/tiny.yaml` is what the tests run. Switching is copying one over `params.yaml`, so
`dvc params diff` shows every value that changed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError

from janus.config.bench import BenchSection
from janus.config.build_pairs import BuildPairsSection
from janus.config.common import (
    DEFAULT_PARAMS_PATH,
    ConfigError,
    Section,
    check_references,
    format_errors,
    read_params_file,
)
from janus.config.environment import EnvironmentSection
from janus.config.expand_seeds import ExpandSeedsSection
from janus.config.filter import FilterSection
from janus.config.generate import GenerateSection
from janus.config.gold_responses import GoldResponsesSection
from janus.config.helpfulness import HelpfulnessSection
from janus.config.infer import InferSection
from janus.config.judge import JudgeSection
from janus.config.judge_scores import JudgeScoresSection
from janus.config.llm import LLMSection
from janus.config.models import ModelsSection
from janus.config.preference_sets import PreferenceSetsSection
from janus.config.published_collection import PublishedCollectionSection
from janus.config.report import ReportSection
from janus.config.scorecard import ScorecardSection
from janus.config.system_messages import SystemMessagesSection
from janus.config.toxicity import ToxicitySection
from janus.config.tracking import TrackingSection
from janus.config.train import TrainSection


class Params(Section):
    seed: int
    generate: GenerateSection
    environment: EnvironmentSection
    llm: LLMSection
    models: ModelsSection
    filter: FilterSection
    expand_seeds: ExpandSeedsSection
    preference_sets: PreferenceSetsSection
    system_messages: SystemMessagesSection
    gold_responses: GoldResponsesSection
    published_collection: PublishedCollectionSection
    build_pairs: BuildPairsSection
    train: TrainSection
    bench: BenchSection
    infer: InferSection
    judge: JudgeSection
    judge_scores: JudgeScoresSection
    toxicity: ToxicitySection
    report: ReportSection
    helpfulness: HelpfulnessSection
    scorecard: ScorecardSection
    tracking: TrackingSection


def parse_params(raw: Any, path: Path | str = DEFAULT_PARAMS_PATH) -> Params:
    """Validate an already-loaded mapping; raises ConfigError naming every bad key."""
    path = Path(path)
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(raw).__name__}")
    try:
        params = Params.model_validate(raw)
    except ValidationError as error:
        raise ConfigError(format_errors(path, list(error.errors()))) from None
    check_references(path, dict(params))
    return params


def load_params(path: Path | str = DEFAULT_PARAMS_PATH) -> Params:
    path = Path(path)
    return parse_params(read_params_file(path), path)
