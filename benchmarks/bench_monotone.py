"""Benchmark of the execution model's monotonicity (not a test): the worst latency increase
between neighbouring points of fine grids of scratchpad size, DRAM bandwidth, clock and core
count, on the paper point (swb300, 10 s, beam 16, DR fusion) on rapid4, FP16 and INT4.
``tests/hwsim/test_monotone.py`` asserts a bound on coarser grids; this measures the worst case.

Run: OMP_WAIT_POLICY=passive NUMBA_CACHE_DIR=.cache/numba .venv/bin/python benchmarks/bench_monotone.py
Writes ``monotone.json`` into ``benchmarks/results/latest/`` (``_timing.results_path``; about 3 minutes
on 2 cores).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import workloads  # noqa: E402
from hwsim import load_spec, simulate  # noqa: E402
from models.config import load_config  # noqa: E402
from _timing import results_path  # noqa: E402

GRIDS = {
    "core.scratchpad_bytes": [int(2 ** x) for x in np.arange(0, 27, 0.25)],
    "dram_bw_bytes_per_s": list(np.geomspace(6.4e9, 1.6e12, 40)),
    "frequency_hz": list(np.geomspace(2e8, 6.4e9, 32)),
    "cores": [1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 16],
}


def main() -> None:
    cfg = load_config("swb300")
    graph = workloads.paper_graph(cfg, 10.0, 16, "dr")
    base = load_spec("rapid4")
    out = {}
    for precision in ("fp16", "int4"):
        for path, values in GRIDS.items():
            lat = np.array([simulate(graph, base.replace_path(path, v), precision, 10.0, config=cfg)
                            .summary["latency_s"] for v in values])
            step = lat[1:] / lat[:-1] - 1.0
            worst = int(np.argmax(step))
            out[f"{precision} {path}"] = {"worst_increase": float(step[worst]),
                                          "between": [float(values[worst]), float(values[worst + 1])],
                                          "points": len(values)}
            print(f"{precision:<5} {path:<24} worst step {step[worst]:+.5%} "
                  f"({values[worst]:.4g} -> {values[worst + 1]:.4g}, {len(values)} points)")
    path = results_path("monotone")
    path.write_text(json.dumps(out, indent=2))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
