"""The training stages end to end on the tiny random model, recorded in a real MLflow SQLite store.

One module fixture trains the chain sft_third -> dpo, orpo, sft_one_epoch -> rm (a few steps
each); the tests then check checkpoints, metrics, plots and the MLflow runs and registry.
"""

from __future__ import annotations

import json
import shlex
import shutil
from pathlib import Path

import pytest
import torch
import yaml
from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer

from janus.chat_format import format_prompt, load_format
from janus.config.tracking import TrackingSection
from janus.config.train import TrainSection
from janus.train.common import StageSpec
from janus.train.run import run_training_stage
from stages.train import stage_spec

REPO = Path(__file__).resolve().parents[1]
CHAIN = ("sft_third", "dpo", "orpo", "sft_one_epoch", "rm")
TOPICS = ["rivers", "stars", "bread", "trains", "music", "forests", "glass", "bees", "salt", "maps",
          "clocks", "tides", "paper", "wolves", "ice", "silk", "coral", "tea", "iron", "moss"]


def write(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def make_repo(root: Path, model_dir: Path) -> None:
    """Pairs whose chosen response always ends in a token pattern: trivially separable."""
    shutil.copytree(model_dir, root / "models" / "base")
    shutil.copytree(REPO / "data/sources/helpfulness", root / "data/sources/helpfulness")
    sft = [{"system": f"Answer about {t}.", "prompt": f"Tell me about {t}.", "output": f"{t} are nice."}
           for t in TOPICS]
    pairs = [{"system": f"Prefer facts on {t}.", "prompt": f"Describe {t}.",
              "chosen": f"A fact about {t}. yes yes yes", "rejected": f"Something on {t}. no no no"}
             for t in TOPICS]
    for name in ("sft", "sft_third"):
        write(root / "data/pairs" / name / "train.jsonl", sft[:14])
        write(root / "data/pairs" / name / "eval.jsonl", sft[14:])
    for name in ("dpo", "orpo", "rm"):  # build_pairs writes one folder per preference trainer
        write(root / "data/pairs" / name / "train.jsonl", pairs[:12])
        write(root / "data/pairs" / name / "eval.jsonl", pairs[12:])


def training_commands(dvc_yaml: Path = REPO / "dvc.yaml") -> dict[str, list[str]]:
    """The training stages' commands as dvc.yaml writes them (its `train` table and `rm`)."""
    stages = yaml.safe_load(dvc_yaml.read_text())["stages"]
    table = stages["train"]
    commands = {}
    for key, item in table["foreach"].items():
        cmd = table["do"]["cmd"].replace("${key}", key)
        for field, value in item.items():
            cmd = cmd.replace("${item." + field + "}", value)
        commands[key] = shlex.split(cmd)
    commands["rm"] = shlex.split(stages["rm"]["cmd"])
    return commands


def spec(name: str, root: Path) -> StageSpec:
    """A stage's paths from dvc.yaml (`python stages/train.py ARGS...`), under `root`."""
    return stage_spec(training_commands()[name][2:], root)


def train_section(**stages) -> TrainSection:
    """The tiny profile's train section (complete), with shorter sequences and a few overrides."""
    raw = yaml.safe_load((REPO / "profiles/tiny.yaml").read_text())["train"]
    short = {"max_steps": 3, "per_device_train_batch_size": 2, "global_batch_size": 2, "learning_rate": 1e-3}
    raw["common"].update({"max_length": 64, "save_strategy": "no", "eval_batch_size": 8})
    for name in ("sft", "sft_third", "sft_one_epoch", "dpo", "orpo"):
        raw[name].update(short)
    # Enough steps at a high rate for the scalar head to find the pattern at the last token.
    raw["rm"].update({**short, "max_steps": 20, "per_device_train_batch_size": 4, "global_batch_size": 4,
                      "learning_rate": 3e-3,
                      "helpfulness_max_steps": 2, "helpfulness_size": 12, "helpfulness_eval_fraction": 0.2})
    for name, values in stages.items():
        raw.setdefault(name, {}).update(values)
    return TrainSection.model_validate(raw)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_model_dir):
    root = tmp_path_factory.mktemp("repo")
    make_repo(root, tiny_model_dir)
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)
        patch.chdir(root)
        section = train_section()
        metrics = {name: run_training_stage(spec(name, root), section, TrackingSection()) for name in CHAIN}
    return root, metrics


def test_causal_checkpoints_load_and_generate(trained):
    root, _ = trained
    for name in ("sft_third", "dpo", "orpo"):
        checkpoint = root / "checkpoints" / name
        assert load_format(checkpoint) == "chat_template"
        assert json.loads((checkpoint / "janus_format.json").read_text())["stage"] == name
        tokenizer = AutoTokenizer.from_pretrained(checkpoint)
        model = AutoModelForCausalLM.from_pretrained(checkpoint)
        inputs = tokenizer(format_prompt(tokenizer, "Describe maps.", "Be brief."), return_tensors="pt")
        out = model.generate(**inputs, max_new_tokens=4, do_sample=False)
        assert out.shape[1] == inputs["input_ids"].shape[1] + 4
    assert not (root / "checkpoints" / "dpo.partial").exists()


def test_sft_and_preference_metrics(trained):
    root, metrics = trained
    for name in ("sft_third", "sft_one_epoch"):
        assert metrics[name]["global_step"] == 3 and metrics[name]["train_rows"] == 14
        assert metrics[name]["eval_loss"] > 0
    for name in ("dpo", "orpo"):
        m = metrics[name]
        assert 0.0 <= m["eval_reward_accuracy"] <= 1.0
        assert isinstance(m["eval_reward_margin"], float)
        assert m["eval_rows"] == 8
    # DPO starts at the reference: its loss is log(2) at the first step and falls on separable pairs.
    curve = json.loads((root / "plots/train/dpo.json").read_text())
    assert curve[0]["step"] == 1 and curve[0]["loss"] == pytest.approx(0.6931, abs=1e-3)
    assert metrics["dpo"]["eval_reward_margin"] > 0
    on_disk = json.loads((root / "metrics/train/dpo.json").read_text())
    assert on_disk["eval_reward_accuracy"] == metrics["dpo"]["eval_reward_accuracy"]


def test_reward_model_scores_and_ranks_held_out_pairs(trained):
    root, metrics = trained
    from janus.train.data import build_prompt
    from janus.train.reward import pairwise_accuracy

    m = metrics["rm"]
    assert m["multifaceted_pairwise_accuracy"] > 0.5 and m["multifaceted_reward_margin"] > 0
    assert m["helpfulness_pairwise_accuracy"] is not None and m["helpfulness_eval_pairs"] >= 3
    assert m["global_step"] == 22 and m["helpfulness_global_step"] == 2
    checkpoint = root / "checkpoints" / "rm"
    model = AutoModelForSequenceClassification.from_pretrained(checkpoint)
    assert model.config.num_labels == 1
    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    pairs = [json.loads(line) for line in (root / "data/pairs/rm/eval.jsonl").read_text().splitlines()]
    rows = [{"prompt": build_prompt(tokenizer, p["prompt"], p["system"], "chat_template"),
             "chosen": p["chosen"], "rejected": p["rejected"]} for p in pairs]
    # The saved model gives the figure the stage reported (scores computed the same way).
    again = pairwise_accuracy(model, tokenizer, rows)
    assert again["accuracy"] == pytest.approx(m["multifaceted_pairwise_accuracy"])


def test_loss_curves_are_dvc_plots(trained):
    root, _ = trained
    for name in CHAIN:
        rows = json.loads((root / "plots/train" / f"{name}.json").read_text())
        steps = [row["step"] for row in rows]
        assert steps == sorted(steps) and len(set(steps)) == len(steps)
        assert all(isinstance(row["loss"], float) for row in rows)
    rm = json.loads((root / "plots/train/rm.json").read_text())
    assert [r["phase"] for r in rm].count("helpfulness") == 2 and rm[-1]["step"] == 22


def test_mlflow_has_runs_metrics_and_registered_versions(trained):
    root, _ = trained
    from mlflow import MlflowClient

    uri = f"sqlite:///{root / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    experiment = client.get_experiment_by_name("janus")
    assert experiment.artifact_location == (root / "mlartifacts").as_uri()
    runs = {run.info.run_name: run for run in client.search_runs([experiment.experiment_id])}
    assert set(runs) == set(CHAIN)
    for name, run in runs.items():
        assert run.info.status == "FINISHED"
        assert run.data.tags["dvc.stage"] == name
        assert "git.commit" in run.data.tags
        assert any(key.startswith("data.") and key.endswith(".sha256") for key in run.data.tags)
        history = client.get_metric_history(run.info.run_id, "loss")
        assert [point.step for point in history][:3] == [1, 2, 3]
        versions = client.search_model_versions(f"name='janus-{name.replace('_', '-')}'")
        assert len(versions) == 1 and versions[0].run_id == run.info.run_id
    dpo = runs["dpo"]
    assert dpo.data.params["train.dpo.beta"] == "0.1"
    assert dpo.data.metrics["final/eval_reward_accuracy"] >= 0.0
    rm_history = client.get_metric_history(runs["rm"].info.run_id, "loss")
    assert max(point.step for point in rm_history) == 22  # stage 2 continues stage 1's steps
    # The version points at the DVC-versioned checkpoint (path, DVC md5, commit): no second copy.
    from janus.tracking import dvc_md5

    version = client.search_model_versions("name='janus-rm'")[0]
    assert version.source.startswith("models:/")
    assert version.tags["dvc.path"] == "checkpoints/rm"
    assert version.tags["dvc.md5"] == dvc_md5(root / "checkpoints/rm")
    assert version.tags["dvc.md5"].endswith(".dir") and "git.commit" in version.tags
    model_id = version.source.removeprefix("models:/")
    artifacts = {item.path for item in client.list_logged_model_artifacts(model_id)}
    assert artifacts == {"dvc_reference.json"}
    weights = [p for p in (root / "mlartifacts").rglob("*.safetensors")]
    assert weights == []


def test_copy_mode_puts_the_checkpoint_into_mlflow_too(tmp_path, tiny_model_dir):
    make_repo(tmp_path, tiny_model_dir)
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)
        patch.chdir(tmp_path)
        run_training_stage(spec("orpo", tmp_path), train_section(orpo={"max_steps": 1}),
                           TrackingSection(model_artifacts="copy"))
    from mlflow import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    version = client.search_model_versions("name='janus-orpo'")[0]
    artifacts = {item.path for item in client.list_logged_model_artifacts(version.source.removeprefix("models:/"))}
    assert {"model.safetensors", "janus_format.json", "tokenizer.json", "dvc_reference.json"} <= artifacts


def test_resumed_run_continues_from_its_checkpoint(tmp_path, tiny_model_dir):
    make_repo(tmp_path, tiny_model_dir)
    common = {"save_strategy": "steps", "save_steps": 1, "keep_checkpoints": True}
    off = TrackingSection(enabled=False)
    first = run_training_stage(spec("sft_third", tmp_path), train_section(common=common, sft_third={"max_steps": 2}), off)
    assert (first["global_step"], first["resumed_from_step"]) == (2, 0)
    # Re-run with more steps (same data, code and params): it picks up at step 2.
    second = run_training_stage(spec("sft_third", tmp_path), train_section(common=common, sft_third={"max_steps": 4}), off)
    assert (second["global_step"], second["resumed_from_step"]) == (4, 2)
    curve = json.loads((tmp_path / "plots/train/sft_third.json").read_text())
    assert [row["step"] for row in curve] == [1, 2, 3, 4]
    # Other data: another fingerprint, a fresh run.
    write(tmp_path / "data/pairs/sft_third/train.jsonl",
          [{"system": "s", "prompt": f"q{i}", "output": f"a{i}"} for i in range(6)])
    third = run_training_stage(spec("sft_third", tmp_path), train_section(common=common, sft_third={"max_steps": 4}), off)
    assert third["resumed_from_step"] == 0
    assert len(list((tmp_path / "runs/sft_third").iterdir())) == 2


def test_packed_batches_give_the_padded_loss(tiny_model_dir):
    """Padding-free batches (what packing trains on) keep documents apart: same loss as padding."""
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, attn_implementation="sdpa")
    examples = [{"input_ids": list(range(5, 17)), "labels": list(range(5, 17))},
                {"input_ids": list(range(40, 47)), "labels": list(range(40, 47))}]
    padded = DataCollatorForLanguageModeling(pad_token_id=2)(examples)
    flat = DataCollatorForLanguageModeling(pad_token_id=2, padding_free=True)(examples)
    assert "attention_mask" not in flat and flat["input_ids"].shape == (1, 19)
    # SFTTrainer calls the model with use_cache=False; with a cache, transformers does not look
    # for packed documents in position_ids and they would attend to each other.
    with torch.no_grad():
        padded_loss = model(input_ids=padded["input_ids"], attention_mask=padded["attention_mask"],
                            labels=padded["labels"], use_cache=False).loss
        flat_loss = model(input_ids=flat["input_ids"], position_ids=flat["position_ids"],
                          labels=flat["labels"], use_cache=False).loss
        leaky_loss = model(input_ids=flat["input_ids"], position_ids=flat["position_ids"],
                           labels=flat["labels"], use_cache=True).loss
    assert flat_loss.item() == pytest.approx(padded_loss.item(), rel=1e-5)
    assert leaky_loss.item() != pytest.approx(padded_loss.item(), rel=1e-5)  # the check can fail
