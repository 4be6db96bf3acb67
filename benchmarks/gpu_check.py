"""The training stages on this machine, as `dvc repro` runs them: SFT, DPO and reward-model steps.

A random-weight model built from a config (`--shape`, from sft_throughput.MODEL_SHAPES) with the
tiny profile's tokenizer (SmolLM2's; saved by --save-tokenizer where its GGUF package is installed),
synthetic rows, and the tiny profile's params with GPU
settings: bf16, ZeRO-3 under `accelerate launch` (train.common.accelerate_config), gradient
checkpointing, the processes from the GPUs visible. Each stage is the real
`python stages/train.py <stage> ...` command in a scratch repository; printed per stage: wall
seconds, optimizer steps, the last loss and the stage's own memory estimate.

    python benchmarks/gpu_check.py --work /tmp/janus-gpu-check            # a GPU: 600m, 1024 tokens
    python benchmarks/gpu_check.py --work /tmp/janus-gpu-check --dry-run  # the CPU: tiny, 2 gloo processes
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from sft_throughput import MODEL_SHAPES  # noqa: E402

STAGES = (  # name, trainer, data folder
    ("sft", "sft", "sft"),
    ("dpo", "dpo", "dpo"),
    ("rm", "rm", "rm"),
)
WORDS = ("river", "star", "bread", "train", "music", "forest", "glass", "bee", "salt", "map", "clock", "tide",
         "paper", "wolf", "ice", "silk", "coral", "tea", "iron", "moss", "answer", "prefer", "concise")


def load_tokenizer(saved: Path | None):
    """The tiny profile's tokenizer and chat template (SmolLM2's): from `saved` (written here by
    --save-tokenizer, for a machine without the 90 MB GGUF package), else from the GGUF package."""
    from transformers import AutoTokenizer

    from janus.config.params import load_params
    from janus.models import load_gguf_tokenizer

    if saved is not None and (saved / "tokenizer.json").exists():
        return AutoTokenizer.from_pretrained(saved)
    models = load_params(REPO / "profiles/tiny.yaml").models
    return load_gguf_tokenizer(models.gguf_package, models.gguf_file)


def build_model(shape: dict, tokenizer, out: Path) -> int:
    """A Llama-shaped model with random weights (fp32 masters, as the stages load them)."""
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig

    config = LlamaConfig(**{"max_position_embeddings": 8192, **shape}, vocab_size=len(tokenizer),
                         tie_word_embeddings=True, pad_token_id=tokenizer.pad_token_id,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
    torch.manual_seed(0)
    with torch.device("cuda" if torch.cuda.is_available() else "cpu"):
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return sum(p.numel() for p in model.parameters())


def tiny_profile_model(tokenizer, out: Path) -> None:
    """The tests' tiny model (the tiny profile's shape), for JANUS_TINY_MODEL_DIR in `pytest -m gpu`."""
    from janus.config.params import load_params

    tiny = load_params(REPO / "profiles/tiny.yaml").models.tiny
    build_model(tiny.model_dump(), tokenizer, out)


def sentence(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words))


def write_rows(root: Path, rows: int, words: int) -> None:
    rng = random.Random(0)
    sft = [{"system": sentence(rng, 6), "prompt": sentence(rng, words // 4), "output": sentence(rng, words)}
           for _ in range(rows)]
    pairs = [{"system": sentence(rng, 6), "prompt": sentence(rng, words // 4),
              "chosen": sentence(rng, words // 2) + " yes", "rejected": sentence(rng, words // 2) + " no"}
             for _ in range(rows)]
    for name, data in (("sft", sft), ("dpo", pairs), ("rm", pairs)):
        folder = root / "data/pairs" / name
        folder.mkdir(parents=True, exist_ok=True)
        split = rows - max(2, rows // 10)
        for file, part in (("train.jsonl", data[:split]), ("eval.jsonl", data[split:])):
            (folder / file).write_text("".join(json.dumps(row) + "\n" for row in part))


def check_params(dry_run: bool, max_length: int, steps: int) -> dict:
    """The tiny profile (every key), with the GPU settings the paper profile uses."""
    params = yaml.safe_load((REPO / "profiles/tiny.yaml").read_text())
    params["tracking"]["enabled"] = False
    params["train"]["common"].update({
        "prompt_format": "mistral", "max_length": max_length, "bf16": "auto", "attn_implementation": "auto",
        "gradient_checkpointing": True, "use_liger_kernel": "auto",
        "accelerate_config": "configs/accelerate/deepspeed_zero3.yaml",
        "deepspeed_config": "configs/deepspeed/zero3.json",
        # the CPU dry run: two gloo processes, so the `accelerate launch` re-exec runs too
        "processes_per_node": 2 if dry_run else "auto", "nodes": 1, "launcher": "local",
        "save_strategy": "no", "logging_steps": 1, "min_train_rows": 2, "eval_batch_size": 4,
    })
    batch = {"per_device_train_batch_size": 2, "global_batch_size": 4 if dry_run else 8, "max_steps": steps,
             "optim": "adamw_torch", "learning_rate": 1e-5, "max_length": None}
    for name in ("sft", "dpo", "rm"):
        params["train"][name].update(batch)
    params["train"]["sft"].update({"packing": False, "padding_free": False})
    params["train"]["rm"].update({"helpfulness_max_steps": 1, "helpfulness_size": 16})
    return params


def run_stages(
    work: Path, shape: str, tokenizer, dry_run: bool, max_length: int, steps: int, rows: int
) -> list[dict]:
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    started = time.monotonic()
    parameters = build_model(MODEL_SHAPES[shape], tokenizer, work / "models/base")
    print(f"model: {shape}, {parameters / 1e6:.0f}M parameters, built in {time.monotonic() - started:.0f}s",
          flush=True)
    write_rows(work, rows, words=max(8, max_length // 4))
    shutil.copytree(REPO / "configs", work / "configs")
    shutil.copytree(REPO / "data/sources/helpfulness", work / "data/sources/helpfulness")
    (work / "params.yaml").write_text(yaml.safe_dump(check_params(dry_run, max_length, steps)))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO / "src"), os.environ.get("PYTHONPATH")]))}
    results = []
    for name, trainer, data in STAGES:
        command = [sys.executable, str(REPO / "stages/train.py"), name, "--trainer", trainer,
                   "--data", f"data/pairs/{data}", "--init", "models/base", "--out", f"checkpoints/{name}",
                   "--metrics", f"metrics/train/{name}.json", "--plot", f"plots/train/{name}.json"]
        started = time.monotonic()
        done = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True)
        seconds = time.monotonic() - started
        log = done.stdout + done.stderr
        (work / f"{name}.log").write_text(log)
        if done.returncode:
            print(log[-6000:], file=sys.stderr)
            raise SystemExit(f"{name}: the stage failed (exit {done.returncode}); log in {work / (name + '.log')}")
        metrics = json.loads((work / "metrics/train" / f"{name}.json").read_text())
        estimate = re.search(r"estimated (\S+ GB) per GPU", log)
        ranks = sorted(set(re.findall(rf"{name}: rank (\d+) of (\d+) trained", log)))
        results.append({
            "stage": name, "seconds": round(seconds, 1), "global_step": metrics["global_step"],
            "final_step_loss": metrics.get("final_step_loss"), "ranks": len(ranks),
            "accelerate_launch": "under accelerate" in log, "memory_estimate": estimate and estimate.group(1),
        })
        print(json.dumps(results[-1]), flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=Path("/tmp/janus-gpu-check"))
    parser.add_argument("--dry-run", action="store_true", help="the CPU: tiny model, 128 tokens, 2 steps")
    parser.add_argument("--shape", default=None, help=f"one of {sorted(MODEL_SHAPES)}")
    parser.add_argument("--max-length", type=int, default=None)
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--tokenizer", type=Path, default=REPO / ".gpu-check/tokenizer",
                        help="a saved tokenizer folder (used when it exists)")
    parser.add_argument("--save-tokenizer", action="store_true", help="only save the tokenizer to --tokenizer")
    parser.add_argument("--tiny-model", type=Path, default=None, help="only write the tests' tiny model here")
    args = parser.parse_args()
    tokenizer = load_tokenizer(args.tokenizer)
    if args.save_tokenizer:
        tokenizer.save_pretrained(args.tokenizer)
        return
    if args.tiny_model:
        tiny_profile_model(tokenizer, args.tiny_model)
        return
    shape = args.shape or ("tiny" if args.dry_run else "600m")
    max_length = args.max_length or (128 if args.dry_run else 1024)
    steps = args.steps or (2 if args.dry_run else 5)
    results = run_stages(args.work, shape, tokenizer, args.dry_run, max_length, steps, rows=24 if args.dry_run else 256)
    print(f"\n{'stage':<6}{'seconds':>9}{'steps':>7}{'last loss':>11}{'ranks':>7}  memory estimate")
    for r in results:
        loss = "-" if r["final_step_loss"] is None else f"{r['final_step_loss']:.4f}"
        print(f"{r['stage']:<6}{r['seconds']:>9.1f}{r['global_step']:>7}{loss:>11}"
              f"{r['ranks']:>7}  {r['memory_estimate'] or '- (CPU)'}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
