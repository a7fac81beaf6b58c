# trashkit: `make demo` runs the workbook end to end, `make test` runs the tests,
# `make check` is the fast loop (lint + the fast tests).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.trashkit-installed

.PHONY: install kernel demo test check lint lab strip bench clean-data book student docs

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -e ".[dev,postgres]"
	touch $(STAMP)

install: $(STAMP)

kernel: install
	$(PY) -m ipykernel install --user --name trashkit --display-name "Python (trashkit)"

demo: install kernel
	$(PY) -m trashkit demo

# the workbook as a static HTML book in a fresh outputs/<run-id>-book/ (demo parameters);
# PARAMS goes to `python -m trashkit book`: papermill parameters for every chapter that has
# them (-p NAME VALUE) or for one (-p NN.NAME VALUE), --chapters NN ..., --quick (a preview)
#   make book PARAMS="-p quick True -p 04.epochs 2"
book: install kernel
	$(PY) -m trashkit book $(PARAMS)

# student copies (solutions cleared by nbgrader, no outputs) in a fresh outputs/<run-id>-student/
student: install
	$(PY) -m trashkit student $(PARAMS)

# lint (with McCabe complexity) and format check of every Python file and notebook first:
# seconds, and they name the line
lint: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

# the fast loop (<= 2 minutes on 2 cores): lint, then every test not marked slow, with the
# 20 slowest printed so a test that grows slow is seen
check: lint
	$(PY) -m pytest -m "not slow" --durations=20

# the full suite (what CI runs): lint, then every test, notebooks and browser included
test: lint
	$(PY) -m pytest

lab: install kernel
	$(VENV)/bin/jupyter lab notebooks/

# strip outputs before committing notebooks (a test checks it)
strip: install
	$(PY) -m nbconvert --clear-output --inplace notebooks/*.ipynb

# docs generated from the code: the bad-input table (tests/test_hostile.py's rows)
docs: install
	$(PY) tests/test_hostile.py

bench: install
	$(PY) benchmarks/loader.py

clean-data:
	rm -rf data/synthetic data/cache
