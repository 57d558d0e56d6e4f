# Two commands set everything up on a fresh machine: `make report` and `make test`.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export OMP_WAIT_POLICY ?= passive
export NUMBA_CACHE_DIR ?= $(CURDIR)/.cache/numba
export MPLBACKEND ?= Agg

.PHONY: install report test test-html chromium bench bench-save clean inverse

$(PY):
	python3 -m venv $(VENV)

# Reinstall only when the project's requirements change.
$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "torch==2.13.0"
	$(PY) -m pip install --quiet -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

# The reference report, with its design-space section from the example sweep (resumable: a
# re-run only evaluates points that are not in reports/paper/sweep yet).
report: $(STAMP)
	mkdir -p $(NUMBA_CACHE_DIR)
	$(VENV)/bin/hwsim sweep workloads/sweeps/rapid4_dse.yaml --out reports/paper/sweep
	$(VENV)/bin/hwsim report --out reports/paper --sweep reports/paper/sweep

# The inverse search (which unpublished rapid4 parameters give the paper's figures): 1,296 points,
# about 4 s on 2 cores, resumable; the report's validation section reads its last results.
inverse: $(STAMP)
	mkdir -p $(NUMBA_CACHE_DIR)
	$(PY) -m reports.inverse --out reports/paper/inverse

test: $(STAMP) chromium
	mkdir -p $(NUMBA_CACHE_DIR)
	$(PY) -m pytest tests

# The HTML report's headless-browser check alone (tests/reports/test_html.py; screenshots go to
# artifacts/html/, or $HWSIM_ARTIFACTS/html).
test-html: $(STAMP) chromium
	mkdir -p $(NUMBA_CACHE_DIR)
	$(PY) -m pytest tests/reports/test_html.py -rs

# Debian's chromium for that check, installed when missing (about 30 s; as root, or through
# passwordless sudo). Where it cannot be installed the check skips, except under CI=true, where
# this fails.
chromium:
	@if ! command -v chromium >/dev/null; then \
		SUDO=$$([ "$$(id -u)" = 0 ] || echo "sudo -n"); \
		mkdir -p .cache; \
		if $$SUDO true 2>/dev/null && { $$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive \
				$$SUDO apt-get install -y -q chromium; } >.cache/apt-chromium.log 2>&1; then \
			echo "installed $$(chromium --version 2>/dev/null)"; \
		else \
			tail -5 .cache/apt-chromium.log 2>/dev/null; \
			echo "chromium could not be installed (needs root or sudo): the HTML browser check will skip" >&2; \
			[ "$$CI" != true ] || exit 1; \
		fi; \
	fi

# Benchmarks write benchmarks/results/latest/ (not committed); bench-save runs them and updates
# the committed benchmarks/results/*.json that the README and the report quote.
bench: $(STAMP)
	mkdir -p $(NUMBA_CACHE_DIR)
	$(PY) benchmarks/run_all.py

bench-save: $(STAMP)
	mkdir -p $(NUMBA_CACHE_DIR)
	$(PY) benchmarks/run_all.py --save

clean:
	rm -rf $(VENV) .cache .pytest_cache

# Accuracy of the trained `small` model (corpus synthesis, training, PTQ/QAT, WER/CER): more than
# 1.5 h on 2 cores; measured for the committed checkpoints (checkpoints/MANIFEST.json, train_wall_s):
# training 99 min (FP32 RNN-T 90 min with the LMs and their QAT alongside, then RNN-T QAT 9 min);
# corpus synthesis and evaluation come on top (not timed). Resumable: every stage skips when its
# outputs are complete. Needs the TTS and text packages, installed here (as root, or through sudo)
# when missing.
.PHONY: accuracy
ACC_DATA ?= data
ACC_APT := espeak-ng flite sox libsox-fmt-all bible-kjv bible-kjv-text fortunes fortunes-min
accuracy: $(STAMP)
	@if ! (command -v espeak-ng && command -v flite && command -v sox && command -v bible \
	      && test -e /usr/share/games/fortunes/fortunes) >/dev/null; then \
		SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
		$$SUDO apt-get update && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y $(ACC_APT); \
	fi
	$(PY) -m models.train.pipeline all --data $(ACC_DATA)
	$(PY) -m reports.accuracy --data $(ACC_DATA)
	$(PY) -m reports.ablation --data $(ACC_DATA)
