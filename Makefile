# One target for each thing a person does. Every target installs what it needs first.
SHELL      := /bin/bash
.SHELLFLAGS := -eo pipefail -c
PYTHON     ?= python3
VENV       ?= .venv
BIN        := $(VENV)/bin
STAMP      := $(VENV)/.installed
NBVAL      := --nbval --nbval-current-env --nbval-sanitize-with=book/sanitize.cfg
# Unit tests, the notebook hygiene test, and the docstring examples of pgnotes (no module
# imports an optional dependency at import time: Gymnasium is imported inside from_gymnasium).
UNIT       := tests/unit tests/book --doctest-modules pgnotes

.PHONY: install book test unit nbval repro site-test mutants benchmarks verify-bench lab run clean

$(STAMP): requirements.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -r requirements.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	@touch $(STAMP)

install: $(STAMP)  ## create .venv and install the pinned requirements and pgnotes

book: install  ## build the static site into _build/html
	$(BIN)/jupyter-book build . --keep-going

test: install  ## unit tests and doctests, nbval over book/ three times (repro), a strict build (-W -n), the browser test
	$(BIN)/python -m pytest $(UNIT) -q
	$(MAKE) --no-print-directory repro
	rm -rf _build/html
	$(BIN)/jupyter-book build . -W -n --keep-going
	$(BIN)/python -m pytest tests/site -q

repro: install  ## nbval three times in a row: 1, 2, 1 BLAS threads, each with a random PYTHONHASHSEED
	@for threads in 1 2 1; do \
	  seed=$$(( RANDOM % 4294967295 )); \
	  echo "nbval with $$threads BLAS thread(s), PYTHONHASHSEED=$$seed"; \
	  OPENBLAS_NUM_THREADS=$$threads OMP_NUM_THREADS=$$threads PYTHONHASHSEED=$$seed \
	    $(BIN)/python -m pytest $(NBVAL) book -q; \
	done

site-test: install  ## load every page of _build/html in headless Chromium
	$(BIN)/python -m pytest tests/site -q

mutants: install  ## apply each deliberate derivation bug and check that a test catches it
	$(BIN)/python tests/mutation/run.py

unit: install  ## unit tests and doctests only
	$(BIN)/python -m pytest $(UNIT) -q

nbval: install
	$(BIN)/python -m pytest $(NBVAL) book -q

benchmarks: install  ## print the performance ratios of the README
	$(BIN)/python dev/benchmarks.py

verify-bench: install  ## time `python -m pgnotes.verify` on a numpy and a PyTorch function
	$(BIN)/python dev/verify_cli.py

lab: install  ## open the notebooks in JupyterLab with the same venv
	$(BIN)/jupyter lab book/

run: install  ## re-execute one notebook in place: make run NB=book/01_derivation_a.ipynb
	cd $(dir $(NB)) && ../$(BIN)/jupyter execute --inplace $(notdir $(NB))
	$(BIN)/python dev/clean_notebook.py $(NB)

clean:
	rm -rf _build
