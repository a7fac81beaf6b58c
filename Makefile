# trashkit: `make demo` runs the workbook end to end, `make test` runs the tests.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.trashkit-installed

.PHONY: install kernel demo test lab strip bench clean-data

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

test: install
	$(PY) -m pytest

lab: install kernel
	$(VENV)/bin/jupyter lab notebooks/

# strip outputs before committing notebooks (a test checks it)
strip: install
	$(PY) -m nbconvert --clear-output --inplace notebooks/*.ipynb

bench: install
	$(PY) benchmarks/loader.py

clean-data:
	rm -rf data/synthetic data/cache
