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
UNIT       := tests/unit tests/book --doctest-modules pgnotes --ignore=tests/book/test_translation.py

# The two editions: Sphinx on the configuration `jupyter-book config sphinx` writes (conf.py,
# not committed), because `jupyter-book build` cannot pass `-D language` (jupyter-book #1791).
SPHINXOPTS ?= -q --keep-going
EDITIONS   := -D pgnotes_editions=1

.PHONY: install book test unit nbval repro site-test mutants benchmarks verify-bench lab run clean po site-metrics \
        translation-test

$(STAMP): requirements.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -r requirements.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	@touch $(STAMP)

install: $(STAMP)  ## create .venv and install the pinned requirements and pgnotes

conf.py: _config.yml _toc.yml $(STAMP)
	$(BIN)/jupyter-book config sphinx . > /dev/null
	printf '%s\n' '' 'import os, sys' 'sys.path.insert(0, os.path.abspath("_ext"))  # local_extensions' >> conf.py

book: install conf.py  ## build both editions: _build/html/en, _build/html/zh, and _build/html/index.html
	$(BIN)/sphinx-build -b html $(EDITIONS) $(SPHINXOPTS) -d _build/doctrees/en . _build/html/en
	$(BIN)/sphinx-build -b html $(EDITIONS) -D language=zh_CN $(SPHINXOPTS) -d _build/doctrees/zh . _build/html/zh
	cp _ext/editions_index.html _build/html/index.html
	@# what no page loads: myst-nb's executed copies (the pages embed their outputs), the
	@# theme's source maps (developer tools only) and its translation catalogues (build input)
	rm -rf _build/html/jupyter_execute _build/html/*/_static/locales
	find _build/html -name '*.map' -delete

po: install conf.py  ## after the English prose changed: regenerate the .pot files and update locales/zh_CN/**.po
	@# a fixed POT-Creation-Date, so that a `make po` without a prose change changes no file;
	@# sphinx.pot (the strings of _templates/) is left out: locales/zh_CN/LC_MESSAGES/sphinx.po
	@# also translates theme strings that are in no template of ours, and is kept by hand
	rm -rf _build/gettext
	SOURCE_DATE_EPOCH=946684800 $(BIN)/sphinx-build -b gettext $(SPHINXOPTS) -d _build/doctrees/gettext . _build/gettext
	rm _build/gettext/sphinx.pot
	$(BIN)/sphinx-intl update -p _build/gettext -l zh_CN -d locales

test: install  ## unit tests and doctests, nbval over book/ three times (repro), a strict build of both editions (-W -n), the site tests, the translation tests
	$(BIN)/python -m pytest $(UNIT) -q
	$(MAKE) --no-print-directory repro
	rm -rf _build/html
	$(MAKE) --no-print-directory book SPHINXOPTS="-q -W -n --keep-going"
	$(BIN)/python -m pytest tests/site -q
	$(MAKE) --no-print-directory translation-test

translation-test: install conf.py  ## the Chinese catalogues follow the English (make po first), complete, markup kept, one glossary
	@# regenerate the catalogues first: English prose changed without its Chinese turns entries
	@# fuzzy or untranslated here, and the completeness test below fails on them
	$(MAKE) --no-print-directory po > /dev/null
	$(BIN)/python -m pytest tests/book/test_translation.py -q

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

site-metrics: install  ## the site's size and the load-to-typeset time of its heaviest page (after make book)
	$(BIN)/python dev/site_metrics.py

clean:
	rm -rf _build conf.py
