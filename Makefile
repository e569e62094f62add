# Everything a new machine needs: `make demo` and `make test` create .venv when it is missing.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test

# First Python >= 3.12 found: python3.14 .. python3.12 on PATH, then pyenv's installs.
PYTHON ?= $(shell for c in python3.14 python3.13 python3.12 python3 \
            $$(ls -d $${PYENV_ROOT:-$$HOME/.pyenv}/versions/3.1[2-9]*/bin/python3 2>/dev/null); do \
            if $$c -c 'import sys; sys.exit(sys.version_info < (3, 12))' >/dev/null 2>&1; then \
            command -v $$c || echo $$c; break; fi; done)

.PHONY: venv demo test test-slow notebooks notebooks-update lint clean

# Two installs into one venv: `make demo` needs only the package (no pytest, no Spark);
# `make test` and `make notebooks` add the test extra (pytest, lifelines, PySpark, ...).
define make_venv
	@if [ -z "$(PYTHON)" ]; then echo "error: no Python >= 3.12 found (tried python3.14..python3.12 and pyenv)"; exit 1; fi
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
endef

$(STAMP): pyproject.toml
	$(make_venv)
	$(PY) -m pip install --quiet -e .
	@touch $(STAMP)

$(TEST_STAMP): pyproject.toml
	$(make_venv)
	$(PY) -m pip install --quiet -e '.[test]'
	@touch $(STAMP) $(TEST_STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/bayesconv demo --out demo-output

# Tests run in TEST_JOBS processes (pytest-xdist), a test file per process: most of the suite's
# time is single-threaded compilation, so 2 processes on 2 cores take about half the time.
TEST_JOBS ?= $(shell n=$$(nproc 2>/dev/null || echo 2); [ $$n -gt 4 ] && n=4; echo $$n)

test: $(TEST_STAMP)
	$(VENV)/bin/ruff check bayesconv tests validation
	$(VENV)/bin/lint-imports --no-cache
	$(PY) -m pytest -q -n $(TEST_JOBS) --dist loadfile --durations=15

# The slow statistical tests (recovery fits, model rankings); validation/recovery.py runs the
# same tests and records the outcome in validation/recovery.md.
test-slow: $(TEST_STAMP)
	$(PY) -m pytest -q -m slow -n $(TEST_JOBS) --dist loadfile

# Execute every notebook top to bottom with the venv's kernel (outputs to a temp dir); any
# cell error fails. notebooks-update writes the executed outputs back into notebooks/.
notebooks: $(TEST_STAMP)
	$(PY) notebooks/run.py

notebooks-update: $(TEST_STAMP)
	$(PY) notebooks/run.py --update

lint: $(TEST_STAMP)
	$(VENV)/bin/ruff check bayesconv tests validation
	$(VENV)/bin/lint-imports --no-cache

clean:
	rm -rf $(VENV) demo-output .pytest_cache
