#!/usr/bin/env bash
# The GPU check: one H100/H200 in under 12 minutes. From the repository root:
#
#   benchmarks/gpu_check.sh            # a CUDA machine (bf16, ZeRO-3, Liger, pytest -m gpu)
#   benchmarks/gpu_check.sh --dry-run  # the CPU: the same scripts on a tiny model, minutes
#
# 1. the environment: GPU, torch's CUDA build, the GPU packages (a missing one fails the check);
# 2. SFT, DPO and reward-model steps of a ~0.63B random-weight model built from a config, each the
#    real `python stages/train.py` command: bf16, ZeRO-3 under `accelerate launch`, the stage's
#    memory estimate (benchmarks/gpu_check.py);
# 3. SFT tokens/s, packed vs padded, and Liger off vs on, with the MFU of the SFT step against
#    the card's dense bf16 peak (benchmarks/sft_throughput.py);
# 4. the GPU tests (`pytest -m gpu`).
# Each step has its own time limit (270 + 2 x 120 + 200 s), so the whole check ends within 12 minutes.
# Results (JSON, logs) go to $OUT (default /tmp/janus-gpu-check/out).
#
# A machine without network: put the wheels the image lacks in .whl/ and the tiny profile's
# tokenizer in .gpu-check/ first, where pip works (benchmarks/gpu_wheels.sh: versions from
# requirements-gpu.lock), and bring both folders along; this script installs the wheels with no index.
set -euo pipefail
cd "$(dirname "$0")/.."
DRY_RUN=0
[[ "${1:-}" == "--dry-run" ]] && DRY_RUN=1
PYTHON=${PYTHON:-python3}
WORK=${JANUS_GPU_CHECK_WORK:-/tmp/janus-gpu-check}
OUT=${OUT:-$WORK/out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false

if [[ $DRY_RUN == 0 ]] && compgen -G ".whl/*" >/dev/null; then  # wheels for the device (CPython 3.12)
    echo "== installing $(ls .whl | wc -l) wheel(s)/sdist(s) from .whl/ (no index)"
    # --no-build-isolation: the deepspeed sdist builds against the installed torch (its ops JIT-compile)
    "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --no-build-isolation \
        --upgrade --target /tmp/janus-gpu-site .whl/*
    export PYTHONPATH=/tmp/janus-gpu-site${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONPATH=$PWD/src${PYTHONPATH:+:$PYTHONPATH}

echo "== 1. environment"
if [[ $DRY_RUN == 1 ]]; then
    "$PYTHON" -c "import torch; print('torch', torch.__version__, '(dry run on the CPU)')"
else
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
    "$PYTHON" - <<'EOF'
import importlib.util, sys
import torch
print("torch", torch.__version__, "cuda", torch.version.cuda, "device", torch.cuda.get_device_name())
assert torch.cuda.is_available(), "no CUDA device visible to torch"
missing = [m for m in ("trl", "deepspeed", "liger_kernel", "datasets", "pydantic") if not importlib.util.find_spec(m)]
if missing:
    sys.exit(f"missing GPU packages: {missing} (make setup-gpu, or wheels in .whl/)")
for name in ("flash_attn", "bitsandbytes"):
    print(name, "installed" if importlib.util.find_spec(name) else "not installed (optional here)")
EOF
fi

echo "== 2. SFT, DPO and reward-model stages (ZeRO-3 under accelerate launch)"
if [[ $DRY_RUN == 1 ]]; then
    timeout 900 "$PYTHON" benchmarks/gpu_check.py --dry-run --work "$WORK/stages" --json "$OUT/stages.json"
else
    timeout 270 "$PYTHON" benchmarks/gpu_check.py --work "$WORK/stages" --json "$OUT/stages.json"
fi

echo "== 3. SFT throughput: packed vs padded, Liger off vs on; MFU against the bf16 peak"
if [[ $DRY_RUN == 1 ]]; then
    THROUGHPUT=(--model tiny --rows 64 --max-length 128 --median-length 40 --batch-size 4 --steps 2 --attn sdpa)
    LIMIT=300
else
    # flex_attention keeps packed documents apart without flash-attn; 2048-token rows, 8 per batch
    THROUGHPUT=(--model 600m --rows 800 --max-length 2048 --median-length 300 --batch-size 8 --steps 8
                --attn flex_attention --activation-checkpointing)
    LIMIT=120
fi
timeout $LIMIT "$PYTHON" benchmarks/sft_throughput.py "${THROUGHPUT[@]}" --modes padded,packed \
    --output-dir "$WORK/throughput" --json "$OUT/throughput.json"
if [[ $DRY_RUN == 1 ]]; then
    echo "Liger: not run on the CPU (Triton kernels)"
else
    timeout $LIMIT "$PYTHON" benchmarks/sft_throughput.py "${THROUGHPUT[@]}" --modes packed --liger \
        --output-dir "$WORK/throughput" --json "$OUT/throughput_liger.json"
fi
"$PYTHON" - "$OUT" <<'EOF'
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
plain = {r["mode"]: r for r in json.loads((out / "throughput.json").read_text())}
packed, padded = plain["packed"], plain["padded"]
print(f"packed / padded real tokens/s: {packed['tokens_per_s'] / padded['tokens_per_s']:.2f}x")
if packed.get("mfu") is not None:
    print(f"MFU of the SFT step (packed, bf16 peak): {packed['mfu']:.1%} on {packed['device']}")
if (out / "throughput_liger.json").exists():
    liger = json.loads((out / "throughput_liger.json").read_text())[0]
    print(f"Liger on / off (packed):       {liger['tokens_per_s'] / packed['tokens_per_s']:.2f}x, MFU {liger['mfu']:.1%}")
EOF

echo "== 4. GPU tests"
if [[ $DRY_RUN == 1 ]]; then
    echo "pytest -m gpu: not run without CUDA (the conftest leaves GPU tests out)"
else
    # the training GPU tests by default; GPU_TESTS=tests/ for all (vLLM's need `make setup-gpu`)
    "$PYTHON" benchmarks/gpu_check.py --tiny-model "$WORK/tiny-model"
    JANUS_TINY_MODEL_DIR="$WORK/tiny-model" timeout 200 "$PYTHON" -m pytest -q -m gpu -p no:cacheprovider \
        -p no:xdist ${GPU_TESTS:-tests/test_train_gpu.py} 2>&1 | tee "$OUT/pytest_gpu.log"
fi
echo "== done: results in $OUT"
