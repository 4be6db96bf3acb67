"""The paper profile's dry run (issue 15, item 7).

profiles/paper_dryrun.yaml is profiles/paper.yaml with exactly the overlay's keys replaced
(scripts/make_paper_dryrun.py, profiles/overlays/paper_dryrun.yaml), and committed fresh. The slow
test runs every stage of it under real `dvc repro` against the loopback OpenAI fake
(servers.paper_dryrun): every stage ran and wrote its metrics, a second `dvc repro` runs nothing,
and the fake saw every role and request type the paper profile sends.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from servers.paper_dryrun import dry_run, stages_run

REPO = Path(__file__).resolve().parents[1]


def _script():
    spec = importlib.util.spec_from_file_location(
        "make_paper_dryrun", REPO / "scripts" / "make_paper_dryrun.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _flat(node: Any, path: tuple = ()) -> dict[tuple, Any]:
    if isinstance(node, dict) and node:
        out: dict[tuple, Any] = {}
        for key, value in node.items():
            out.update(_flat(value, (*path, key)))
        return out
    return {path: node}


def _matches(pattern: tuple, path: tuple) -> bool:
    return len(pattern) == len(path) and all(p in ("*", k) for p, k in zip(pattern, path, strict=True))


def _renamed(paper: dict, overlay: dict) -> dict:
    """paper with the overlay's `$rename`s done (keys only; values are the overlay's to list)."""
    for key, value in overlay.items():
        if key == "$rename":
            paper = {value.get(k, k): v for k, v in paper.items()}
    for key, value in overlay.items():
        if isinstance(value, dict) and key in paper and isinstance(paper[key], dict):
            paper[key] = _renamed(paper[key], value)
    return paper


def test_overlay_changes_exactly_its_keys():
    script = _script()
    overlay_tree = yaml.safe_load(script.OVERLAY.read_text())
    paper = _flat(_renamed(yaml.safe_load(script.PAPER.read_text()), overlay_tree))
    overlay = {
        path: value for path, value in _flat(overlay_tree).items() if "$rename" not in path
    }
    generated = _flat(yaml.safe_load(script.render()))
    assert set(generated) == set(paper), "the overlay added or removed keys"
    changed = {path for path in paper if paper[path] != generated[path]}
    unlisted = [p for p in changed if not any(_matches(pattern, p) for pattern in overlay)]
    assert not unlisted, f"changed but not in the overlay: {unlisted}"
    port = str(script.DEFAULT_FAKE_PORT)
    for pattern, value in overlay.items():
        hits = [path for path in generated if _matches(pattern, path)]
        assert hits, f"overlay key {'.'.join(pattern)} matches nothing in paper.yaml"
        expected = json.loads(json.dumps(value).replace("{fake_port}", port))
        assert all(generated[path] == expected for path in hits), pattern


def test_committed_profile_is_fresh():
    script = _script()
    assert script.OUT.read_text() == script.render(), (
        "profiles/paper_dryrun.yaml is stale: run `python scripts/make_paper_dryrun.py`"
    )


def test_overlay_key_missing_from_paper_is_refused():
    script = _script()
    with pytest.raises(script.OverlayError, match=r"judge\.no_such_key"):
        script.apply_overlay({"judge": {"repeats": 3}}, {"judge": {"no_such_key": 1}})


def test_wildcard_reaches_every_mapping_and_only_those():
    script = _script()
    paper = {"llm": {"teacher": {"base_url": None}, "judge": {"base_url": None}, "cap": 5}}
    out = script.apply_overlay(paper, {"llm": {"*": {"base_url": "http://x:{fake_port}"}}}, 7)
    assert out == {"llm": {"teacher": {"base_url": "http://x:7"}, "judge": {"base_url": "http://x:7"}, "cap": 5}}
    assert paper["llm"]["teacher"]["base_url"] is None  # the input is left alone


def test_what_would_reach_the_network_is_named():
    script = _script()
    params = {
        "llm": {
            "teacher": {"backend": "openai", "base_url": None, "model": "gpt-4.1"},
            "open_judge": {"backend": "local", "base_url": None, "model": "someone/judge-7b"},
        },
        "infer": {"endpoints": {"gpt-3.5": {"backend": "openai", "base_url": "http://x/v1"}}},
        "filter": {"sources": {"nectar": {"path": "hub:berkeley-nest/Nectar"}}},
        "toxicity": {"hub_models": {"x": {"hub_id": "someone/unknown-7b", "revision": "main"}}},
    }
    problems = "\n".join(script.online_leftovers(params))
    assert "llm.teacher.base_url" in problems
    assert "filter.sources.nectar.path: hub:berkeley-nest/Nectar" in problems
    assert "toxicity.hub_models.x.hub_id: someone/unknown-7b" in problems
    assert "infer.endpoints.gpt-3.5: DVC reads a dot" in problems
    assert "llm.open_judge.model: someone/judge-7b" in problems  # loaded locally: needs a stand-in
    assert "gpt-4.1" not in problems  # an API model: the fake serves it


def test_rename_keeps_the_order_and_refuses_a_clash():
    script = _script()
    paper = {"endpoints": {"a": 1, "gpt-3.5": 2, "c": 3}}
    out = script.apply_overlay(paper, {"endpoints": {"$rename": {"gpt-3.5": "gpt-35"}}})
    assert list(out["endpoints"].items()) == [("a", 1), ("gpt-35", 2), ("c", 3)]
    with pytest.raises(script.OverlayError, match="cannot rename"):
        script.apply_overlay(paper, {"endpoints": {"$rename": {"gpt-3.5": "c"}}})


def _expected_batch_stages(params: dict) -> set[str]:
    """The stages that ask the batch-mode LLM roles, by what the params turn on."""
    stages = {"judge"}
    if params.get("generate", {}).get("enabled", True):  # off: trains on the published data
        stages |= {"expand_seeds", "preference_sets", "system_messages", "gold_responses"}
    if params["bench"]["published"] is None:
        stages.add("bench")
    toxicity = params["toxicity"]
    if "llm" in (toxicity["scorer"], *toxicity["extra_scorers"]):
        stages.add("toxicity")
    return stages


@pytest.mark.slow
def test_paper_profile_dry_run(tmp_path):
    result = dry_run(tmp_path / "repo", tmp_path / "state")
    work, params = result.work, result.params

    lock = yaml.safe_load((work / "dvc.lock").read_text())["stages"]
    assert set(lock) == set(result.stages), set(result.stages) ^ set(lock)
    assert sorted(stages_run(result.first)) == sorted(result.stages)
    for stage, entry in lock.items():
        metrics = [out["path"] for out in entry.get("outs", []) if out["path"].startswith("metrics/")]
        # judge: its grading record is outputs/judge/grading.json, made into metrics/judge.json
        # by judge_scores
        assert metrics or stage in ("models", "judge"), f"{stage} declares no metrics"
        for path in metrics:
            assert json.loads((work / path).read_text()), f"{stage}: {path} is empty"
    assert stages_run(result.second) == [], "a second `dvc repro` reran stages"

    requests = result.requests
    batch = {(r["stage"], r["kind"]) for r in requests if r["api"] == "batch"}
    assert {stage for stage, _ in batch} >= _expected_batch_stages(params), batch
    for role, config in params["llm"].items():  # every API role was asked
        if isinstance(config, dict) and config.get("backend") == "openai":
            assert any(r["model"] == config["model"] for r in requests), role
    if "preference_sets" in _expected_batch_stages(params):
        assert ("preference_sets", "json_schema") in batch  # the paper's structured route
    assert ("judge", "judge_absolute") in batch
    assert ("judge", "judge_pairwise") in batch
    chat = [r for r in requests if r["api"] == "chat"]
    endpoint_models = {config["model"] for config in params["infer"]["endpoints"].values()}
    assert endpoint_models <= {r["model"] for r in chat}
    assert {r["prefix"] for r in chat} == {"/replica-a", "/replica-b"}  # the whole fleet served
    print(
        f"\npaper dry run: {len(lock)} stages, first repro {result.seconds['first_repro']:.0f} s "
        f"({result.seconds['first_repro_cpu']:.0f} CPU s), second "
        f"{result.seconds['second_repro']:.0f} s, {len(requests)} requests to the fake"
    )


def _schemas() -> dict[str, dict]:
    from janus.data.common import Limits, preference_set_schema
    from janus.evaluate.bench.generation import rubric_schema
    from janus.evaluate.judge.parser import absolute_schema, pairwise_schema
    from janus.evaluate.toxicity.scorers import llm_schema

    dimensions = ["style", "background_knowledge", "informativeness", "harmlessness"]
    return {
        "preference_set": preference_set_schema(dimensions, Limits(60, 400, 2)),
        "rubric": rubric_schema(dimensions, 300),
        "toxicity_int10": llm_schema("int10"),
        "toxicity_unit": llm_schema("unit"),
        "judge_absolute": absolute_schema(1000),
        "judge_pairwise": pairwise_schema(1000),
    }


@pytest.mark.parametrize("route", ["json_schema", "json_object", "prompt"])
def test_fake_answers_every_schema_validly_on_every_route(route):
    from servers.valid_answers import answer

    from janus.llm.structured import parse_and_validate, schema_json
    from janus.prompts import render

    for name, schema in _schemas().items():
        body: dict[str, Any] = {"messages": [{"role": "user", "content": f"Do {name}."}]}
        if route == "json_schema":
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "output", "schema": schema, "strict": False},
            }
        else:  # the schema in the prompt, as janus.llm.openai_wire words it
            instructions = render("json_schema_instructions", "user", schema=schema_json(schema))
            body["messages"][0]["content"] += "\n\n" + instructions
            if route == "json_object":
                body["response_format"] = {"type": "json_object"}
        parse_and_validate(answer(body), schema)  # raises InvalidOutput when it is not


def test_fake_answers_the_judge_text_formats_parseably():
    from servers.valid_answers import answer

    from janus.evaluate.judge.parser import parse_absolute_text, parse_pairwise_text
    from janus.prompts import PROMPTS_DIR

    for prompt_name, parse in (("judge_absolute", parse_absolute_text), ("judge_pairwise", parse_pairwise_text)):
        template = (PROMPTS_DIR / f"{prompt_name}.user.j2").read_text()
        scores = {
            parse(answer({"messages": [{"role": "user", "content": f"{template}\n{i}"}]})).verdict
            for i in range(20)
        }
        assert len(scores) > 1, prompt_name  # answers vary with the prompt


def test_a_key_written_twice_in_the_overlay_is_refused():
    script = _script()
    with pytest.raises(script.OverlayError, match="written twice"):
        yaml.load("infer: {max_items: 1}\njudge: {}\ninfer: {sampling: {}}\n", Loader=script._UniqueKeys)
