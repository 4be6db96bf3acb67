"""The infer, best-of-N and toxicity stages as `dvc repro` runs them, in a real DVC repository.

The stage definitions are janus's own (copied from dvc.yaml); the checkpoints are the tiny model
(an "sft" copy in the Mistral format, a tiny reward model), the bench a few hand-written rows.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from janus.chat_format import save_format

REPO = Path(__file__).resolve().parents[1]
MY_STAGES = (
    "infer",
    "infer_bon",
    "infer_api",
    "toxicity_prompts",
    "perplexity_model",
    "toxicity_generate",
    "toxicity",
)

pytestmark = pytest.mark.slow


def _run(args: list[str], cwd: Path) -> str:
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)
    assert done.returncode == 0, f"{args} failed:\n{done.stdout[-3000:]}\n{done.stderr[-6000:]}"
    return done.stdout + done.stderr


@pytest.fixture()
def project(tmp_path, tiny_model_dir) -> Path:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    root = tmp_path / "project"
    root.mkdir()
    shutil.copytree(REPO / "src", root / "src", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(REPO / "stages", root / "stages", ignore=shutil.ignore_patterns("__pycache__"))
    (root / "data" / "sources").mkdir(parents=True)
    shutil.copy(REPO / "data/sources/realtoxicityprompts.jsonl", root / "data/sources")
    bench = [
        {
            "id": f"b{i}",
            "source": "mf-test",
            "system": f"You value brevity {i}.",
            "prompt": f"Tell me about topic {i}.",
            "reference_answer": "-",
            "rubrics": [],
            "preference_set": {},
        }
        for i in range(2)
    ]
    (root / "data/bench.jsonl").write_text("".join(json.dumps(row) + "\n" for row in bench))
    shutil.copytree(tiny_model_dir, root / "models/base")
    shutil.copytree(tiny_model_dir, root / "checkpoints/sft")
    save_format(root / "checkpoints/sft", "mistral")
    reward = AutoModelForSequenceClassification.from_pretrained(tiny_model_dir, num_labels=1)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    reward.config.pad_token_id = tokenizer.pad_token_id
    reward.save_pretrained(root / "checkpoints/rm")
    tokenizer.save_pretrained(root / "checkpoints/rm")
    save_format(root / "checkpoints/rm", "mistral")

    params = yaml.safe_load((REPO / "profiles/tiny.yaml").read_text())
    params["infer"]["models"] = {
        "base": {"path": "models/base", "prompt_format": None},
        "sft": {"path": "checkpoints/sft", "prompt_format": None},
    }
    params["infer"]["best_of_n"] = {
        "sft-bon": {
            "path": "checkpoints/sft",
            "reward_model": "checkpoints/rm",
            "n": 2,
            "prompt_format": None,
        }
    }
    params["infer"]["sampling"]["max_tokens"] = 4
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    mine = {name: stages[name] for name in MY_STAGES}
    (root / "dvc.yaml").write_text(yaml.safe_dump({"stages": mine}, sort_keys=False))
    shutil.copy(REPO / "requirements.lock", root / "requirements.lock")  # a dep of the stages
    _run(["git", "init", "-q"], root)
    _run(["dvc", "init", "-q"], root)
    return root


def test_stages_run_under_dvc_and_rerun_only_what_changed(project):
    _run(["dvc", "repro"], project)
    responses = {
        name: [json.loads(line) for line in (project / f"outputs/responses/{name}.jsonl").open()]
        for name in ("base", "sft", "sft-bon")
    }
    assert all(len(rows) == 4 for rows in responses.values())
    assert {row["condition"] for row in responses["sft"]} == {"system", "no_system"}
    assert all(
        row["num_samples"] == 2 and row["reward"] is not None for row in responses["sft-bon"]
    )
    assert (project / "outputs/best_of_n/sft-bon.jsonl").exists()
    infer_metrics = json.loads((project / "metrics/infer/sft.json").read_text())
    assert infer_metrics["prompt_format"] == "mistral" and infer_metrics["responses"] == 4
    toxicity = json.loads((project / "metrics/toxicity.json").read_text())
    assert set(toxicity) == {"base", "sft"}
    for model in toxicity.values():
        assert model["prompts"] == 3 and model["generations"] == 6
        assert (
            model["scored_generations"] + model["empty_generations"] + model["unscored_generations"]
            == 6
        )
        assert {
            "avg_max_toxicity",
            "toxicity_probability",
            "perplexity",
            "dist_2",
            "dist_3",
        } <= set(model)
    # nothing changed: nothing runs
    assert "Running stage" not in _run(["dvc", "repro"], project)
    # one model's entry changed: only its stage (and toxicity's scoring is untouched)
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["infer"]["models"]["base"]["prompt_format"] = "mistral"
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    output = _run(["dvc", "repro"], project)
    assert "Running stage 'infer@base'" in output
    assert "Running stage 'infer@sft'" not in output
    assert "Running stage 'toxicity" not in output
