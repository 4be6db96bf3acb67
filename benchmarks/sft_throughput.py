"""SFT throughput: padded batches vs packed / padding-free batches, side by side in one run.

Same synthetic data (token ids with a long-tailed length distribution, a prompt share masked
from the loss), same randomly initialised model, same TRL SFTTrainer; only the batching differs:

- padded: rows padded to the longest row of each batch (TRL's default collator);
- padding_free: the batch's rows flattened into one sequence (`padding_free=True`);
- packed: rows packed best-fit-decreasing into `max_length` sequences (`packing=True`, which TRL
  trains padding-free).

Printed per mode: real (non-pad) tokens per second over the timed steps, the ratio to padded,
the padding fraction of what the model computed on, and on a GPU the MFU: useful FLOPs
(6 N per token for the matmuls, plus 6 L H n^2 per document of n tokens for causal attention,
forward and backward) over the card's dense bf16 peak (989 TFLOP/s for H100/H200 SXM).

    python benchmarks/sft_throughput.py                      # tiny model, CPU-sized
    python benchmarks/sft_throughput.py --model 1b --attn flex_attention --batch-size 8 \\
        --max-length 2048 --steps 10                         # ~1.2B llama on a GPU
"""

from __future__ import annotations

import argparse
import json
import math
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

MODEL_SHAPES = {
    # a 2-layer toy for CPU smoke runs
    "tiny": {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
             "num_attention_heads": 4, "num_key_value_heads": 2},
    # ~0.63B parameters (128-wide heads): benchmarks/gpu_check.sh's model
    "600m": {"hidden_size": 1536, "intermediate_size": 6144, "num_hidden_layers": 16,
             "num_attention_heads": 12, "num_key_value_heads": 4},
    # ~1.2B parameters, Llama-3.2-1B-like shape (with SmolLM2's 49k vocabulary)
    "1b": {"hidden_size": 2048, "intermediate_size": 8192, "num_hidden_layers": 16,
           "num_attention_heads": 32, "num_key_value_heads": 8},
}
PEAK_BF16_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0, "L40S": 362.0}
VOCAB = 49152
PAD_ID = 0  # never used as a data token below, so padding is unambiguous


@dataclass
class Counter:
    """Wraps the collator: what each batch holds, padded and real."""

    collator: object
    computed: list[int] = field(default_factory=list)  # tokens the model computes on
    real: list[int] = field(default_factory=list)  # non-pad tokens
    doc_lengths: list[list[int]] = field(default_factory=list)

    def __call__(self, examples):
        batch = self.collator(examples)
        ids = batch["input_ids"]
        self.computed.append(ids.numel())
        if "position_ids" in batch and "attention_mask" not in batch:
            positions = batch["position_ids"][0].tolist()
            starts = [i for i, p in enumerate(positions) if p == 0] + [len(positions)]
            lengths = [b - a for a, b in zip(starts, starts[1:], strict=False)]
            real_ids = (ids != PAD_ID).sum().item()
            lengths = [n for n in lengths if n > 0]
            self.real.append(int(real_ids))
        else:
            lengths = batch["attention_mask"].sum(dim=1).tolist()
            self.real.append(int(sum(lengths)))
        self.doc_lengths.append([int(n) for n in lengths])
        return batch


def synthetic_rows(n: int, max_length: int, seed: int, median: int) -> list[dict]:
    """Token-id rows, lognormal lengths (median `median`) in [16, max_length], 20% prompt."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        length = int(min(max_length, max(16, rng.lognormvariate(math.log(median), 0.8))))
        prompt = max(1, length // 5)
        rows.append({
            "input_ids": [rng.randrange(1, VOCAB) for _ in range(length)],
            "completion_mask": [0] * prompt + [1] * (length - prompt),
        })
    return rows


def build_model(shape: str, attn: str, seed: int, cuda: bool):
    """fp32 master weights (the trainer autocasts to bf16), initialised on the GPU when there is one."""
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig

    config = LlamaConfig(vocab_size=VOCAB, max_position_embeddings=8192, pad_token_id=PAD_ID,
                         bos_token_id=1, eos_token_id=2, tie_word_embeddings=True, **MODEL_SHAPES[shape])
    torch.manual_seed(seed)
    with torch.device("cuda" if cuda else "cpu"):
        return AutoModelForCausalLM.from_config(config, attn_implementation=attn, dtype=torch.float32)


def tokenizer_stub():
    """The trainer needs a processing class for the pad and EOS ids; the rows are token ids."""
    from tokenizers import Tokenizer, models
    from transformers import PreTrainedTokenizerFast

    tok = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.WordLevel({"<pad>": 0, "<eos>": 2, "<unk>": 3}, unk_token="<unk>")))
    tok.pad_token, tok.eos_token, tok.unk_token = "<pad>", "<eos>", "<unk>"
    return tok


def run_mode(mode: str, args, rows, cuda: bool) -> dict:
    import torch
    from datasets import Dataset
    from transformers import TrainerCallback
    from trl import SFTConfig, SFTTrainer

    from janus.train.common import checkpointing_arg

    attn = args.attn if mode != "padded" else args.padded_attn
    model = build_model(args.model, attn, args.seed, cuda)
    n_params = sum(p.numel() for p in model.parameters())
    n_embed = model.get_input_embeddings().weight.numel()
    total_steps = args.warmup_steps + args.steps
    config = SFTConfig(
        output_dir=str(Path(args.output_dir) / mode),
        max_steps=total_steps,
        per_device_train_batch_size=args.batch_size,
        learning_rate=1e-5,
        bf16=cuda,
        use_cpu=not cuda,
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        **{checkpointing_arg(): args.activation_checkpointing},
        max_length=None if mode == "padding_free" else args.max_length,  # rows are <= max_length
        packing=mode == "packed",
        padding_free=mode == "padding_free",
        completion_only_loss=True,
        shuffle_dataset=False,
        dataloader_num_workers=0,
        disable_tqdm=True,
        seed=args.seed,
        use_liger_kernel=args.liger,
    )
    trainer = SFTTrainer(model=model, args=config, train_dataset=Dataset.from_list(rows),
                         processing_class=tokenizer_stub())
    counter = Counter(trainer.data_collator)
    trainer.data_collator = counter
    stamps: list[float] = []

    class Clock(TrainerCallback):
        def on_step_end(self, *a, **k):
            if cuda:
                torch.cuda.synchronize()
            stamps.append(time.perf_counter())

    trainer.add_callback(Clock())
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    trainer.train()
    # Batches of the timed steps: after the warm-up ones (one batch per step, no accumulation).
    timed = slice(args.warmup_steps, total_steps)
    seconds = stamps[total_steps - 1] - stamps[args.warmup_steps - 1]
    real = sum(counter.real[timed])
    computed = sum(counter.computed[timed])
    cfg = model.config
    attn_width = cfg.num_attention_heads * (cfg.hidden_size // cfg.num_attention_heads)
    matmul_params = n_params - n_embed + (n_embed if cfg.tie_word_embeddings else 0)
    useful_flops = sum(
        6 * matmul_params * n + 6 * cfg.num_hidden_layers * attn_width * n * n
        for lengths in counter.doc_lengths[timed] for n in lengths
    )
    result = {
        "mode": mode,
        "attention": attn,
        "liger": args.liger,
        "params_m": round(n_params / 1e6, 1),
        "steps_timed": args.steps,
        "seconds": round(seconds, 3),
        "real_tokens": real,
        "tokens_per_s": round(real / seconds, 1),
        "padding_fraction": round(1 - real / computed, 4) if computed else None,
        "docs_per_step": round(sum(len(x) for x in counter.doc_lengths[timed]) / args.steps, 1),
        "achieved_tflops": round(useful_flops / seconds / 1e12, 2),
    }
    if cuda:
        name = torch.cuda.get_device_name()
        peak = args.peak_tflops or next((v for k, v in PEAK_BF16_TFLOPS.items() if k in name), None)
        result["device"] = name
        result["mfu"] = round(useful_flops / seconds / 1e12 / peak, 4) if peak else None
        result["peak_memory_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
    del trainer, model
    if cuda:
        torch.cuda.empty_cache()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=sorted(MODEL_SHAPES), default="tiny")
    parser.add_argument("--modes", default="padded,padding_free,packed")
    parser.add_argument("--attn", default="sdpa", help="attention for padding-free/packed modes")
    parser.add_argument("--padded-attn", default="sdpa", help="attention for the padded mode")
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--median-length", type=int, default=300)
    parser.add_argument("--max-length", type=int, default=1024)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup-steps", type=int, default=2)
    parser.add_argument("--activation-checkpointing", action="store_true")
    parser.add_argument("--liger", action="store_true", help="Liger kernels (fused RMSNorm, SwiGLU, RoPE, loss)")
    parser.add_argument("--peak-tflops", type=float, default=None, help="dense bf16 peak of the card")
    parser.add_argument("--output-dir", default="/tmp/janus-sft-throughput")
    parser.add_argument("--json", default=None, help="also write the results here")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.warmup_steps < 1:
        parser.error("--warmup-steps must be at least 1 (the clock starts after a warm-up step)")

    import torch

    cuda = torch.cuda.is_available()
    rows = synthetic_rows(args.rows, args.max_length, args.seed, args.median_length)
    results = [run_mode(mode, args, rows, cuda) for mode in args.modes.split(",")]
    base = next((r for r in results if r["mode"] == "padded"), results[0])
    print(f"\nSFT throughput, model={args.model} batch={args.batch_size} max_length={args.max_length} liger={args.liger} "
          f"device={'cuda: ' + torch.cuda.get_device_name() if cuda else 'cpu'}")
    header = f"{'mode':<13}{'attention':<16}{'real tok/s':>12}{'vs padded':>10}{'padding':>9}{'docs/step':>10}{'TFLOP/s':>9}"
    header += f"{'MFU':>8}{'mem GiB':>9}" if cuda else ""
    print(header)
    for r in results:
        r["ratio_vs_padded"] = round(r["tokens_per_s"] / base["tokens_per_s"], 3)
        line = (f"{r['mode']:<13}{r['attention']:<16}{r['tokens_per_s']:>12.1f}{r['ratio_vs_padded']:>10.2f}"
                f"{r['padding_fraction']:>9.1%}{r['docs_per_step']:>10.1f}{r['achieved_tflops']:>9.2f}")
        if cuda:
            line += f"{(r['mfu'] or 0):>8.1%}{r['peak_memory_gib']:>9.1f}"
        print(line)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
