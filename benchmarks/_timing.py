"""Helpers shared by the benchmarks (run as scripts: ``benchmarks/`` is on ``sys.path``): timing,
and where results go.

Results: ``benchmarks/results/*.json`` are the committed figures that the README and the report
quote; a run writes into ``benchmarks/results/latest/`` (git-ignored) unless it is asked to save
(``make bench-save``, ``run_all.py --save``). ``run_all.py`` passes the folder to every script as
``$HWSIM_BENCH_RESULTS``; a script takes its output path from ``results_path(name)``.
"""

from __future__ import annotations

import os
import statistics
import time
from pathlib import Path

#: The committed results (read by reports/validation.py and tests/test_readme_bench_qat.py).
SAVED_DIR = Path(__file__).resolve().parent / "results"
#: Where a run writes unless it saves: untracked, so that ``make bench`` leaves the tree clean.
LATEST_DIR = SAVED_DIR / "latest"
RESULTS_ENV = "HWSIM_BENCH_RESULTS"


def results_dir() -> Path:
    """The folder this run writes into: ``$HWSIM_BENCH_RESULTS``, else ``LATEST_DIR``."""
    return Path(os.environ.get(RESULTS_ENV) or LATEST_DIR)


def results_path(name: str) -> Path:
    """``<results_dir()>/<name>.json``, its folder created."""
    d = results_dir()
    d.mkdir(parents=True, exist_ok=True)
    return d / f"{name}.json"


def median_s(fn, repeats: int) -> float:
    """Median wall time of ``repeats`` calls of ``fn()``, in seconds."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)
