"""GPU paths of the training stages: bf16, packed / padding-free SFT, every trainer on CUDA, and
DeepSpeed ZeRO-3. Left out without CUDA (conftest); on CUDA a missing deepspeed fails (`make setup-gpu`).

JANUS_TINY_MODEL_DIR may name a prebuilt tiny model (the GPU box lacks the GGUF package that
conftest's `tiny_model_dir` builds it from). The packed-stage test uses max_length 512: with torch
2.11, flex attention's backward does not compile for packed batches of max_length 64
(inductor NoValidChoicesError once shapes turn dynamic); 512 compiles and trains.
"""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import pytest
import torch

from janus.config.tracking import TrackingSection
from janus.train.device import resolve_device
from janus.train.run import run_training_stage

pytestmark = pytest.mark.gpu

MAX_LENGTH = int(os.environ.get("JANUS_GPU_TEST_MAX_LENGTH", "512"))
KERNELS = ["sdpa", "flex_attention"] + (["flash_attention_2"] if importlib.util.find_spec("flash_attn") else [])


@pytest.fixture(scope="module")
def model_dir(request) -> Path:
    prebuilt = os.environ.get("JANUS_TINY_MODEL_DIR")
    return Path(prebuilt) if prebuilt else request.getfixturevalue("tiny_model_dir")


@pytest.fixture
def repo(tmp_path, model_dir):
    from test_train_stages import make_repo

    make_repo(tmp_path, model_dir)
    return tmp_path


@pytest.fixture
def wide_head_repo(tmp_path, model_dir):
    """The tiny model with 64-wide heads: flex attention's Triton kernels have no configuration
    for the tiny model's 16-wide heads in the backward pass."""
    import shutil

    from test_train_stages import make_repo
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(model_dir)
    config.hidden_size, config.num_attention_heads, config.num_key_value_heads = 128, 2, 1
    config.head_dim = 64
    source = tmp_path / "wide"
    AutoModelForCausalLM.from_config(config).save_pretrained(source)
    for name in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja"):
        if (Path(model_dir) / name).exists():
            shutil.copy(Path(model_dir) / name, source / name)
    root = tmp_path / "repo"
    make_repo(root, source)
    return root


def section(**stages):
    from test_train_stages import train_section

    return train_section(**stages)


def test_device_settings_on_cuda(tmp_path):
    device = resolve_device(section().common, tmp_path)
    assert device.cuda and device.bf16 == torch.cuda.is_bf16_supported()
    expected = "flash_attention_2" if importlib.util.find_spec("flash_attn") else "sdpa"
    assert device.attn_implementation == expected


@pytest.mark.parametrize("attn", KERNELS)
def test_packed_documents_stay_apart_on_gpu(model_dir, attn):
    """Padding-free batches give the padded batch's loss with each attention kernel."""
    from transformers import AutoModelForCausalLM
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    model = AutoModelForCausalLM.from_pretrained(model_dir, attn_implementation=attn, dtype=torch.bfloat16).cuda()
    examples = [{"input_ids": list(range(5, 45)), "labels": list(range(5, 45))},
                {"input_ids": list(range(100, 117)), "labels": list(range(100, 117))}]
    padded = DataCollatorForLanguageModeling(pad_token_id=2)(examples)
    flat = DataCollatorForLanguageModeling(pad_token_id=2, padding_free=True)(examples)
    with torch.no_grad():
        padded_loss = model(**{k: v.cuda() for k, v in padded.items()}, use_cache=False).loss.float()
        flat_inputs = {k: (v.cuda() if torch.is_tensor(v) else v) for k, v in flat.items() if k != "seq_idx"}
        flat_loss = model(**flat_inputs, use_cache=False).loss.float()
    assert flat_loss.item() == pytest.approx(padded_loss.item(), rel=2e-2)  # bf16 rounding


@pytest.mark.parametrize("attn", KERNELS)
def test_packed_bf16_sft_stage_on_gpu(wide_head_repo, attn):
    repo = wide_head_repo
    from test_train_stages import spec

    metrics = run_training_stage(
        spec("sft", repo),
        section(common={"attn_implementation": attn, "max_length": MAX_LENGTH}, sft={"packing": True, "max_steps": 3}),
        TrackingSection(enabled=False),
    )
    assert metrics["global_step"] == 3 and metrics["train_loss"] == metrics["train_loss"]  # not NaN
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from janus.chat_format import format_prompt

    checkpoint = repo / "checkpoints" / "sft"
    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    model = AutoModelForCausalLM.from_pretrained(checkpoint, dtype=torch.bfloat16).cuda()
    inputs = tokenizer(format_prompt(tokenizer, "Describe maps.", "Be brief."), return_tensors="pt").to("cuda")
    out = model.generate(**inputs, max_new_tokens=4, do_sample=False)
    assert out.shape[1] == inputs["input_ids"].shape[1] + 4


def test_every_trainer_in_bf16_on_gpu(repo):
    """The chain on CUDA with bf16 autocast; tracking as configured (off where mlflow is missing)."""
    from test_train_stages import spec

    section_ = section()
    results = {
        name: run_training_stage(spec(name, repo), section_, TrackingSection())
        for name in ("sft_third", "dpo", "orpo", "sft_one_epoch", "rm")
    }
    assert results["dpo"]["eval_reward_accuracy"] is not None
    assert results["rm"]["multifaceted_pairwise_accuracy"] > 0.5
    stored = json.loads((repo / "metrics/train/rm.json").read_text())
    assert stored["global_step"] == results["rm"]["global_step"]


def test_deepspeed_zero3_single_process(repo, monkeypatch):
    """ZeRO-3 through the same stage code (one process; `accelerate launch` adds more)."""
    import shutil

    shutil.copytree(Path(__file__).resolve().parents[1] / "configs", repo / "configs")
    for key, value in {"RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "1",
                       "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29533"}.items():
        monkeypatch.setenv(key, value)
    from test_train_stages import spec

    metrics = run_training_stage(
        spec("sft_third", repo),
        section(common={"deepspeed_config": "configs/deepspeed/zero3.json"}),
        TrackingSection(enabled=False),
    )
    assert metrics["global_step"] == 3
    assert (repo / "checkpoints/sft_third/model.safetensors").exists()
