"""Inference engine throughput: the same bench-shaped generations at several batch sizes.

    python benchmarks/infer_batch_size.py --model models/base --sizes 1 8 24 --prompts 24

Times `janus.infer.engines.TransformersEngine.generate` (what `infer@<model>` runs without vLLM)
on the same prompts (a system message + a question, in the checkpoint's chat template) at each
batch size, side by side in one process, and prints generated tokens per second and the ratio to
the first size. Uses `models/base` when it exists, else a tiny random model.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from janus.chat_format import format_prompt
from janus.config.params import load_params
from janus.infer.engines import TransformersEngine, encode_prompts

# every setting the benchmark does not vary, from the tests' profile
TINY = load_params(Path(__file__).resolve().parents[1] / "profiles" / "tiny.yaml")

QUESTIONS = [
    "Why is the sky blue?", "How do vaccines work?", "What is a prime number?",
    "Explain recursion.", "Why do we have seasons?", "What causes inflation?",
]  # fmt: skip
SYSTEM = "You are a patient teacher who explains with one everyday example and keeps it short."


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="models/base")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 8, 24])
    parser.add_argument("--prompts", type=int, default=24)
    parser.add_argument("--max-tokens", type=int, default=32)
    args = parser.parse_args()

    model = Path(args.model)
    if not model.exists():
        from janus.models import prepare_base_model

        model = Path(tempfile.mkdtemp()) / "tiny"
        prepare_base_model(TINY.models, model)
        print(f"{args.model} not found; using a tiny random model")
    sampling = TINY.infer.sampling.model_copy(update={"max_tokens": args.max_tokens})
    results = []
    for size in args.sizes:
        engine = TransformersEngine(model, TINY.infer.engine.model_copy(update={"batch_size": size, "device": "cpu"}))
        texts = [
            format_prompt(
                engine.tokenizer, QUESTIONS[i % len(QUESTIONS)], SYSTEM if i % 2 else None
            )
            for i in range(args.prompts)
        ]
        prompts = encode_prompts(engine.tokenizer, texts)
        started = time.perf_counter()
        engine.generate(prompts, sampling, num_samples=1, seed=0, desc=f"batch {size}")
        seconds = time.perf_counter() - started
        results.append((size, engine.stats.generated_tokens / seconds, seconds))
        engine.close()
    base = results[0][1]
    print(f"\n{'batch':>6} {'tokens/s':>10} {'seconds':>9} {'vs first':>9}")
    for size, rate, seconds in results:
        print(f"{size:>6} {rate:>10.1f} {seconds:>9.1f} {rate / base:>8.2f}x")


if __name__ == "__main__":
    main()
