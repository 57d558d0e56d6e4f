"""Benchmark the op graph: build, Parquet save and load, and its size, at paper scale.

Run:  OMP_WAIT_POLICY=passive NUMBA_CACHE_DIR=.cache/numba \\
      python benchmarks/bench_graph.py [--audio-s 300] [--repeats 3] [--out FILE.json]

Workload: ``workloads.paper_graph(swb300, A s, beam 16, DR fusion)`` (300 s: about 2M ops).
Reported (medians of ``--repeats``): build seconds and ops/s, ``OpGraph.save`` and
``OpGraph.load`` ops/s (goal >= 1M ops/s each), bytes per op in memory (the graph's columns) and
on disk. The loaded graph is checked equal to the built one (columns and templates).

Writes JSON to ``results_path("graph")`` (``benchmarks/_timing.py``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
from pathlib import Path

import numpy as np

from _timing import median_s, results_path

GOAL_OPS_PER_S = 1_000_000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--audio-s", type=float, default=300.0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()

    from models.config import load_config
    from workloads import paper_graph
    from workloads.graph import OpGraph

    cfg = load_config("swb300")
    paper_graph(cfg, 10.0, 16, "dr")                     # Numba cache load, imports
    build_s = median_s(lambda: paper_graph(cfg, args.audio_s, 16, "dr"), args.repeats)
    graph = paper_graph(cfg, args.audio_s, 16, "dr")
    n = len(graph)
    ptr, deps = graph.edge_arrays()
    with tempfile.TemporaryDirectory(prefix="bench_graph_") as tmp:
        path = Path(tmp) / "g.parquet"
        save_s = median_s(lambda: graph.save(path), args.repeats)
        load_s = median_s(lambda: OpGraph.load(path), args.repeats)
        back = OpGraph.load(path)
        disk = path.stat().st_size
    same = (back.templates == graph.templates and np.array_equal(back.code, graph.code)
            and np.array_equal(back.step, graph.step) and all(np.array_equal(a, b) for a, b in
                                                               zip(back.edge_arrays(), graph.edge_arrays())))
    if not same:
        raise SystemExit("bench_graph: the loaded graph differs from the saved one")
    result = {
        "benchmark": "graph",
        "workload": f"workloads.paper_graph(swb300, {args.audio_s:g} s, beam 16, dr)",
        "platform": platform.platform(), "python": platform.python_version(), "cpu_count": os.cpu_count(),
        "loadavg_1min": os.getloadavg()[0],
        "ops": n, "templates": len(graph.templates), "edges": int(len(deps)),
        "build_s": build_s, "build_ops_per_s": n / build_s,
        "save_ops_per_s": n / save_s, "load_ops_per_s": n / load_s, "goal_ops_per_s": GOAL_OPS_PER_S,
        "memory_bytes_per_op": (graph.code.nbytes + graph.step.nbytes + ptr.nbytes + deps.nbytes) / n,
        "disk_bytes_per_op": disk / n,
        "meets_goal": n / save_s >= GOAL_OPS_PER_S and n / load_s >= GOAL_OPS_PER_S,
    }
    out = Path(args.out) if args.out else results_path("graph")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
