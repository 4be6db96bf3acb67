"""The evaluation's LLM steps as the registry builds them (what the forecast walks) under the tiny
profile: each makes `fan_out` requests per row, for the LLM role it names, and the same requests
the stage code sends (the judge's are its `absolute_request` / `pairwise_request`, the bench's its
rubric and reference builders), so a forecast counts exactly what a stage asks."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from janus.config.params import parse_params
from janus.data.gold_responses import gold_request
from janus.data.system_messages import load_examples
from janus.data.taxonomy import load_taxonomy
from janus.evaluate.bench.generation import _generation_sections, build_rubric_request
from janus.evaluate.judge.grading import AbsoluteTask, absolute_request, resolve_format
from janus.evaluate.judge.pairwise import Comparison, pairwise_request
from janus.evaluate.judge.responses import Response
from janus.infer.responses import bench_prompts
from janus.llm import ChatRequest
from janus.steps.registry import REGISTRY, entries

REPO = Path(__file__).resolve().parents[1]


class Upstream:
    """What the evaluation steps read besides their rows: the taxonomy and example pool."""

    def __init__(self, params):
        self.taxonomy = load_taxonomy(REPO / params.expand_seeds.taxonomy_path)
        self.examples = load_examples(
            REPO / params.system_messages.examples_path, self.taxonomy.keys
        )
        self.seed_sets = [
            {"seed_id": f"seed-{i}", "preference_set": example["preference_set"]}
            for i, example in enumerate(self.examples[:3])
        ]


@pytest.fixture(scope="module")
def params():
    raw = yaml.safe_load((REPO / "profiles/tiny.yaml").read_text())
    raw["infer"]["endpoints"] = {"gpt": dict(raw["llm"]["teacher"], model="gpt-fake")}
    return parse_params(raw)


def _bench_row(upstream, index: int = 0) -> dict:
    example = upstream.examples[index]
    dimensions = upstream.taxonomy.keys
    return {
        "id": f"flask-{index}",
        "instruction_id": f"flask-i{index}",
        "source": "flask",
        "benchmark": "flask",
        "set_index": 0,
        "instruction": example["instruction"],
        "prompt": example["instruction"],
        "system": example["system"],
        "preference_set": example["preference_set"],
        "reference_answer": "A reference answer.",
        "rubrics": [
            {
                "criteria": f"How well is {dimension} served?",
                "score_descriptions": {str(level): f"level {level}" for level in range(1, 6)},
            }
            for dimension in dimensions
        ],
    }


def _requests(step, row) -> list[ChatRequest]:
    made = step.format_input(row)
    return made if isinstance(made, list) else [made]


def test_every_evaluation_step_is_registered_with_its_role():
    names = {entry.name: entry.role for entry in entries("evaluate")}
    assert names == {
        "bench.preference_sets": "teacher",
        "bench.system_messages": "teacher",
        "bench.references_rubrics": "teacher",
        "judge": "judge",
        "judge.pairwise": "judge",
        "toxicity.llm": "judge",
        "infer_api": "endpoint",
        "helpfulness.endpoint": "endpoint",
    }


def test_the_bench_steps_ask_what_the_bench_asks(params):
    upstream = Upstream(params)
    row = _bench_row(upstream)
    preference_sets = REGISTRY["bench.preference_sets"].build(params, upstream)
    instruction = {key: row[key] for key in ("instruction_id", "source", "instruction")}
    asked = _requests(preference_sets, instruction)
    assert len(asked) == preference_sets.fan_out == params.bench.system_messages_per_instruction
    system_messages = REGISTRY["bench.system_messages"].build(params, upstream)
    assert len(_requests(system_messages, row)) == system_messages.fan_out == 1
    finishing = REGISTRY["bench.references_rubrics"].build(params, upstream)
    reference, rubrics = _requests(finishing, row)
    assert finishing.fan_out == 2
    assert rubrics == build_rubric_request(row, upstream.taxonomy.keys, params.bench)
    assert reference == gold_request(row, _generation_sections(params.bench, params)[2])


def test_the_judge_steps_ask_what_the_judge_asks(params):
    upstream = Upstream(params)
    item = _bench_row(upstream)
    fmt = resolve_format(params.judge, params.llm.judge)
    response = Response("sft", "system", item["id"], "An answer.")
    task = AbsoluteTask(response, item["id"], 1, 0, "own")
    judge = REGISTRY["judge"].build(params, upstream)
    assert judge.fan_out == 1 and judge.parse is not None  # the strict parser
    assert _requests(judge, (task, item, item)) == [
        absolute_request(task, item["prompt"], item, params.judge, fmt)
    ]
    comparison = Comparison("sft", "base", item["id"], 0, response, response)
    pairwise = REGISTRY["judge.pairwise"].build(params, upstream)
    (asked,) = _requests(pairwise, (comparison, False, item))
    expected = pairwise_request(
        item, "An answer.", "An answer.", params.judge, fmt, 0, f"sft_vs_base/{item['id']}/k0/yx"
    )
    assert asked == expected


def test_the_endpoint_and_scorer_steps_make_one_request_per_row(params):
    upstream = Upstream(params)
    item = _bench_row(upstream)
    answers = REGISTRY["infer_api"].build(params, upstream)
    prompts = bench_prompts([item], params.infer.conditions)
    asked = [request for prompt in prompts for request in _requests(answers, prompt)]
    assert [request.tag for request in asked] == [f"{p.id}/{p.condition}" for p in prompts]
    assert answers.max_failed_fraction == params.infer.max_failed_fraction
    rating = REGISTRY["toxicity.llm"].build(params, upstream)
    (request,) = _requests(rating, (3, "some text"))
    assert request.tag == "text 3" and request.schema is not None
