"""Benchmark of the simulator (not a test): time to simulate a paper-scale graph, and
``cost_gemm`` evaluations per second vectorized over 100k shapes.

Run: OMP_WAIT_POLICY=passive NUMBA_CACHE_DIR=.cache/numba .venv/bin/python benchmarks/bench_simulator.py
Writes ``simulator.json`` into ``benchmarks/results/latest/`` (``_timing.results_path``). Medians of
repeats; the machine is shared (2 cores).

The graph: ``workloads.paper_graph(swb300, 10 s, beam 16, DR fusion)``.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import workloads  # noqa: E402
from hwsim import cost_gemm, load_spec, simulate  # noqa: E402
from models.config import load_config  # noqa: E402
from _timing import median_s, results_path  # noqa: E402



def main() -> None:
    cfg = load_config("swb300")
    t0 = time.perf_counter()
    graph = workloads.paper_graph(cfg, 10.0, 16, "dr", method="alsd")
    source = "workloads.paper_graph"
    build_s = time.perf_counter() - t0
    rows = {}
    simulate(graph, "rapid4", "int4", 10.0, config=cfg)  # warm-up (Numba cache load)

    def first_simulation():
        graph._memo.clear()   # the op table and dependency arrays are cached per graph
        simulate(graph, "rapid4", "int4", 10.0, config=cfg)

    rows["simulate rapid4 int4, first on the graph"] = median_s(first_simulation, repeats=5)
    for hw in ("rapid4", "edge"):
        for policy in ("fp16", "int4"):
            rows[f"simulate {hw} {policy}"] = median_s(
                lambda: simulate(graph, hw, policy, 10.0, config=cfg), repeats=5)
    r = simulate(graph, "rapid4", "int4", 10.0, config=cfg)

    hw = load_spec("rapid4")
    rng = np.random.default_rng(0)
    m, k, n = (rng.integers(1, 4096, 100_000) for _ in range(3))
    cost_gemm(hw, m, k, n, "int4")
    t = median_s(lambda: cost_gemm(hw, m, k, n, "int4"), repeats=20)
    evals_per_s = 100_000 / t

    print(f"graph: {source}, {len(graph):,} ops, built in {build_s:.2f} s")
    print("simulate: the first call on a graph extracts its op table (then cached per graph, as in a sweep)")
    print(f"{'case':<42} {'median_s':>10}")
    for name, sec in rows.items():
        print(f"{name:<42} {sec:>10.3f}")
    print(f"{'cost_gemm 100k shapes':<42} {t:>10.4f}   ({evals_per_s:,.0f} evaluations/s)")
    print(f"rapid4 int4: latency_s {r.summary['latency_s']:.4g}, rtf {r.summary['rtf']:.4g}")
    out = results_path("simulator")
    out.write_text(json.dumps({
        "graph_source": source, "graph_ops": len(graph), "graph_build_s": build_s,
        "simulate_median_s": rows, "cost_gemm_batch": 100_000, "cost_gemm_median_s": t,
        "cost_gemm_evals_per_s": evals_per_s,
        "rapid4_int4": {"latency_s": r.summary["latency_s"], "rtf": r.summary["rtf"]},
    }, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
