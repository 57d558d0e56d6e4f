# Two commands set everything up on a fresh machine: `make report` and `make test`.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export OMP_WAIT_POLICY ?= passive
export NUMBA_CACHE_DIR ?= $(CURDIR)/.cache/numba
export MPLBACKEND ?= Agg

.PHONY: install report test bench clean

$(PY):
	python3 -m venv $(VENV)

# Reinstall only when the project's requirements change.
$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "torch==2.13.0"
	$(PY) -m pip install --quiet -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

report: $(STAMP)
	mkdir -p $(NUMBA_CACHE_DIR)
	$(VENV)/bin/hwsim report --out reports/paper

test: $(STAMP)
	mkdir -p $(NUMBA_CACHE_DIR)
	$(PY) -m pytest tests

bench: $(STAMP)
	mkdir -p $(NUMBA_CACHE_DIR)
	$(PY) benchmarks/run_all.py

clean:
	rm -rf $(VENV) .cache .pytest_cache
