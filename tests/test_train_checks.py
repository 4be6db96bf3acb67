"""Bad input to a training stage: a clear message before any training starts.

Every case here must fail before a trainer exists: no runs/ directory, no checkpoint written.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from test_train_stages import spec, training_commands

from janus.config.common import ConfigError
from janus.config.params import parse_params
from janus.config.tracking import TrackingSection
from janus.config.train import TrainSection
from janus.train.common import StageSpec
from janus.train.data import TrainingInputError
from janus.train.device import DeviceSettings, check_packing, resolve_device
from janus.train.run import run_training_stage

REPO = Path(__file__).resolve().parents[1]
PROFILES = ("params.yaml", "profiles/paper.yaml", "profiles/tiny.yaml")

NO_TRACKING = TrackingSection(enabled=False)


def pair_rows(n: int) -> list[dict]:
    return [{"system": f"S{i}", "prompt": f"P{i}", "chosen": f"good {i}", "rejected": f"bad {i}"} for i in range(n)]


def sft_rows(n: int) -> list[dict]:
    return [{"system": f"S{i}", "prompt": f"P{i}", "output": f"answer {i}"} for i in range(n)]


def write(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


@pytest.fixture
def repo(tmp_path, tiny_model_dir):
    shutil.copytree(tiny_model_dir, tmp_path / "models" / "base")
    for name in ("sft", "sft_third"):
        write(tmp_path / "data/pairs" / name / "train.jsonl", sft_rows(4))
        write(tmp_path / "data/pairs" / name / "eval.jsonl", sft_rows(2))
    for name in ("dpo", "orpo", "rm"):  # build_pairs writes one folder per preference trainer
        write(tmp_path / "data/pairs" / name / "train.jsonl", pair_rows(4))
        write(tmp_path / "data/pairs" / name / "eval.jsonl", pair_rows(2))
    return tmp_path


def tiny_params() -> dict:
    return yaml.safe_load((REPO / "profiles/tiny.yaml").read_text())


def section(**overrides) -> TrainSection:
    raw = tiny_params()["train"]
    raw["common"].update({"max_length": 64, "min_train_rows": 2})
    for key, value in overrides.items():
        raw.setdefault(key, {}).update(value)
    return TrainSection.model_validate(raw)


def train(name: str, section_: TrainSection, repo: Path, **kwargs):
    return run_training_stage(spec(name, repo), section_, NO_TRACKING, **kwargs)


def assert_nothing_trained(repo: Path, stage: str) -> None:
    assert not (repo / "runs").exists()
    assert not (repo / "checkpoints" / stage).exists()
    assert not (repo / "metrics").exists()


@pytest.mark.parametrize("rows", [[], pair_rows(1)], ids=["empty", "too_small"])
def test_empty_or_too_small_pair_set(repo, rows):
    write(repo / "data/pairs/orpo/train.jsonl", rows)
    with pytest.raises(TrainingInputError, match=rf"{len(rows)} valid orpo training row.*min_train_rows=2"):
        train("orpo", section(), repo)
    assert_nothing_trained(repo, "orpo")


def test_missing_pairs_file_names_the_stage_to_run(repo):
    (repo / "data/pairs/sft/train.jsonl").unlink()
    with pytest.raises(TrainingInputError, match=r"sft/train.jsonl: training data not found; run `dvc repro build_pairs`"):
        train("sft", section(), repo)
    assert_nothing_trained(repo, "sft")


def test_missing_start_checkpoint(repo):
    with pytest.raises(TrainingInputError, match=r"dpo starts from .*checkpoints/sft_third, which does not exist"):
        train("dpo", section(), repo)
    assert_nothing_trained(repo, "dpo")


def test_base_model_that_cannot_be_loaded(repo):
    (repo / "models/base/config.json").write_text("{not json")
    with pytest.raises(TrainingInputError, match=r"orpo's starting model .* cannot be loaded"):
        train("orpo", section(), repo)
    nowhere = StageSpec.from_args(repo, "sft", "sft", data="data/pairs/sft", init="models/nowhere",
                                  output="checkpoints/sft", metrics="m.json", plot="p.json")
    with pytest.raises(TrainingInputError, match=r"sft starts from .*models/nowhere, which does not exist"):
        run_training_stage(nowhere, section(), NO_TRACKING)
    assert_nothing_trained(repo, "sft")


def test_rows_that_cannot_fit_max_length(repo):
    long_prompt = " ".join(["word"] * 100)
    write(repo / "data/pairs/sft/train.jsonl", [{**row, "prompt": long_prompt} for row in sft_rows(4)])
    with pytest.raises(TrainingInputError, match=r"0 training row\(s\) fit max_length=64.*prompt_too_long"):
        train("sft", section(), repo)
    assert_nothing_trained(repo, "sft")


@pytest.mark.parametrize(
    ("train", "message"),
    [
        ({"dpo": {"packing": True}}, "dpo: packing/padding_free are supported by the SFT stages only"),
        ({"rm": {"padding_free": True}}, "rm: packing/padding_free are supported by the SFT stages only"),
        ({"sft": {"warmup_steps": 2.5}}, "warmup_steps: a whole number of steps, or a ratio below 1"),
        ({"dpo": {"beta": None}}, "train.dpo.beta"),
        ({"rm": {"helpfulness_mix": {"hh_rlhf": 0.5, "oasst1": 0.2}}}, "mixing ratios must sum to 1"),
        ({"rm": {"helpfulness_sources": {}}}, r"helpfulness_mix names source\(s\)"),
        ({"common": {"attn_implementation": "flash"}}, "train.common.attn_implementation"),
    ],
)
def test_contradicting_params_fail_at_load(train, message):
    raw = tiny_params()
    for key, value in train.items():
        raw["train"][key].update(value)
    with pytest.raises(ConfigError, match=message):
        parse_params(raw)


@pytest.mark.parametrize("key", ["weight_decay", "optim", "adam_beta1", "adam_beta2", "max_grad_norm", "seed"])
def test_output_shaping_train_keys_have_no_default(key):
    """A profile that leaves out a value that shapes the weights does not load: no hidden default."""
    raw = tiny_params()
    where = raw["train"]["common"] if key == "seed" else raw["train"]["sft"]
    del where[key]
    with pytest.raises(ConfigError, match=rf"train\.(sft|common)\.{key}: required key is missing"):
        parse_params(raw)


@pytest.mark.parametrize("profile", PROFILES)
def test_every_stage_section_maps_onto_its_trl_config(profile):
    """Each train.<stage> key is a field of the stage's TRL config class, and the built config
    carries the value (passed through, not copied field by field)."""
    from janus.config.params import load_params
    from janus.train.common import trainer_config, trainer_params
    from janus.train.configs import check_stage_keys

    params = load_params(REPO / profile).train
    kinds = {"sft": "sft", "sft_third": "sft", "sft_one_epoch": "sft", "dpo": "dpo", "orpo": "orpo", "rm": "rm"}
    cpu = DeviceSettings(cuda=False, bf16=False, attn_implementation="sdpa", use_liger_kernel=False, deepspeed_config=None)
    for name, kind in kinds.items():
        stage = getattr(params, name)
        check_stage_keys(kind, name, set(trainer_params(stage)))
        config = trainer_config(kind, name, stage, params.common, cpu, Path("/tmp/x"), 64)
        for key, value in trainer_params(stage).items():
            if key not in ("max_length", "warmup_steps", "loss_type"):
                assert getattr(config, key) == value, (profile, name, key)
        assert config.seed == params.common.seed and config.report_to == []


def test_unknown_or_janus_owned_trainer_keys_fail_before_training(repo):
    with pytest.raises(TrainingInputError, match=r"train.sft: \['learning_rat'\] not field\(s\) of trl"):
        train("sft", section(sft={"learning_rat": 1.0}), repo)
    with pytest.raises(TrainingInputError, match=r"train.dpo: \['bf16'\] are set by janus"):
        train("dpo", section(dpo={"bf16": True}), repo)
    assert_nothing_trained(repo, "sft")


def test_packing_needs_an_attention_that_keeps_sequences_apart(repo):
    from transformers import AutoConfig, T5Config

    config = AutoConfig.from_pretrained(repo / "models/base")
    sft = section(sft={"packing": True})
    gpu_auto = DeviceSettings(cuda=True, bf16=True, attn_implementation="sdpa", use_liger_kernel=False, deepspeed_config=None)
    with pytest.raises(TrainingInputError, match="packing on GPU needs flash-attention"):
        check_packing("sft", sft.sft, sft.common, gpu_auto, config)
    # Naming a masking kernel explicitly is a choice, not a contradiction.
    explicit = section(common={"attn_implementation": "flex_attention"}, sft={"packing": True})
    check_packing("sft", explicit.sft, explicit.common, gpu_auto, config)
    cpu = DeviceSettings(cuda=False, bf16=False, attn_implementation="sdpa", use_liger_kernel=False, deepspeed_config=None)
    check_packing("sft", sft.sft, sft.common, cpu, config)
    with pytest.raises(TrainingInputError, match="T5Config is not a decoder-only model"):
        check_packing("sft", sft.sft, sft.common, cpu, T5Config())
    free = section(sft={"padding_free": True})
    with pytest.raises(TrainingInputError, match="padding_free without packing"):
        check_packing("sft", free.sft, free.common, cpu, config)


def test_packing_contradiction_stops_the_stage_on_gpu(repo, monkeypatch):
    """The whole stage refuses before training when the machine contradicts the params."""
    import torch

    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    with pytest.raises(TrainingInputError, match="packing on GPU needs flash-attention"):
        train("sft", section(sft={"packing": True}), repo, cuda=True)
    assert_nothing_trained(repo, "sft")


def test_machine_specific_contradictions(repo):
    with pytest.raises(TrainingInputError, match="flash_attention_2 needs CUDA and the flash-attn"):
        resolve_device(section(common={"attn_implementation": "flash_attention_2"}).common, repo, cuda=False)
    with pytest.raises(TrainingInputError, match="deepspeed_config: .*zero3.json not found"):
        resolve_device(section(common={"deepspeed_config": "configs/zero3.json"}).common, repo, cuda=False)
    with pytest.raises(TrainingInputError, match="adamw_bnb_8bit runs on CUDA only .*use adamw_torch"):
        train("sft", section(sft={"optim": "adamw_bnb_8bit"}), repo)
    device = resolve_device(section().common, repo, cuda=False)
    assert (device.bf16, device.attn_implementation, device.use_liger_kernel) == (False, "sdpa", False)


def test_stage_script_prints_the_reason_and_fails(repo):
    """`python stages/train.py dpo` without its start checkpoint: one clear line, exit status 1."""
    import subprocess
    import sys

    repo_root = Path(__file__).resolve().parents[1]
    shutil.copy(repo_root / "params.yaml", repo / "params.yaml")
    result = subprocess.run(
        [sys.executable, str(repo_root / "stages/train.py"), *training_commands()["dpo"][2:]],
        cwd=repo, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith("dpo: dpo starts from")
    assert "checkpoints/sft_third, which does not exist" in result.stderr
    assert "Traceback" not in result.stderr
