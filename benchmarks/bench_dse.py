"""Benchmark design-space sweeps: full-utterance design points per hour on this machine.

Run:  OMP_WAIT_POLICY=passive NUMBA_CACHE_DIR=.cache/numba \\
      python benchmarks/bench_dse.py [--points 3000] [--repeats 3] [--workers 2]

Workload: swb300, 10 s of audio, ALSD beam 16, density-ratio fusion, INT4, on rapid4 with the
hardware varied (array size, scratchpad, DRAM bandwidth, dispatch overhead; a seeded random sample
of ``--points`` points out of 3,000), so one graph serves every point. Goals: >= 10,000 points per
hour on 2 cores (issue 6), >= 500 points per second end to end (1.8M per hour; issue 14).

Reported (medians over ``--repeats`` runs, each in a fresh output directory under a temporary
directory that is removed afterwards):

* ``end_to_end_points_per_hour``: ``hwsim.dse.run_sweep`` with local worker processes, wall time
  from the call to the last part written: worker start-up, one graph build per worker, costing,
  Parquet writes, everything.
* ``steady_points_per_hour``: the same sweep with the first graph build and start-up excluded:
  ``workers * 3600 / median per-point evaluation time`` measured in the worker rows
  (``elapsed_s`` of points that did not build the graph).
* ``in_process_point_s``: median seconds of one point evaluated in this process, graph cached.
* ``graph_build_s``: seconds to build the swb300 graph once.
* ``loadavg_1min_before_after``: other work on this (shared) machine slows every figure.

Writes JSON to ``--out`` (default ``results_path("dse")``, ``benchmarks/_timing.py``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

from _timing import results_path

SWEEP = """
description: bench - hardware points around rapid4 for one swb300 graph (beam 16, DR, 10 s)
base: {{model: swb300, hw: rapid4, audio_s: 10, precision: int4, beam: 16, lm_fusion: dr, method: alsd}}
vary:
  array:
    hw.core.matrix.rows: [16, 32, 64]
    hw.core.matrix.cols: [16, 32, 64]
  hw.core.scratchpad_bytes: [262144, 524288, 786432, 1048576, 1572864, 2097152, 3145728, 4194304, 6291456, 8388608]
  hw.dram_bw_bytes_per_s: [1.28e+10, 1.92e+10, 2.56e+10, 3.84e+10, 5.12e+10, 7.68e+10, 1.024e+11, 1.536e+11, 2.048e+11, 4.096e+11]
  hw.core.dispatch_overhead_cycles: [0, 8, 16, 24, 32, 48, 64, 96, 128, 256]
sampling: {{random: {points}, seed: 0}}
"""
GOAL_POINTS_PER_HOUR = 10_000
GOAL_POINTS_PER_S = 500


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--points", type=int, default=3000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()

    from hwsim.dse import load, loads_sweep, run_sweep
    from hwsim.dse.evaluate import evaluate_point, graph_for

    load_before = os.getloadavg()[0]
    sweep = loads_sweep(SWEEP.format(points=args.points), source="bench_dse")
    points = [p.point for p in sweep.plan().points]

    t0 = time.perf_counter()
    graph = graph_for(points[0])
    graph_build_s = time.perf_counter() - t0
    in_process = []
    for p in points[: min(10, len(points))]:
        t0 = time.perf_counter()
        evaluate_point(p)
        in_process.append(time.perf_counter() - t0)

    end_to_end, steady, per_point = [], [], []
    with tempfile.TemporaryDirectory(prefix="bench_dse_") as tmp:
        for r in range(args.repeats):
            out = Path(tmp) / f"run{r}"
            s = run_sweep(sweep, out, workers=args.workers, progress=False)
            df = load(out)
            if s.done != len(points) or s.errors:
                raise SystemExit(f"bench_dse: {s.errors} of {s.done} points failed, e.g. "
                                 f"{df.loc[df['status'] != 'ok', 'error'].iloc[0]}")
            end_to_end.append(3600 * s.done / s.elapsed_s)
            # The first point of each worker's first chunk also built the graph: drop the slowest
            # `workers` rows (one graph build per worker) to get the steady per-point time.
            t = sorted(df["elapsed_s"])[: max(1, len(df) - args.workers)]
            med = statistics.median(t)
            per_point.append(med)
            steady.append(args.workers * 3600 / med)
            print(f"run {r}: {s.done} points in {s.elapsed_s:.1f} s = {end_to_end[-1]:,.0f} points/h "
                  f"end to end; median point {med * 1e3:.0f} ms in workers")

    result = {
        "benchmark": "dse",
        "workload": "swb300, 10 s audio, ALSD beam 16, DR fusion, int4; rapid4 hardware varied",
        "ops_per_graph": len(graph),
        "points": len(points),
        "repeats": args.repeats,
        "workers": args.workers,
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "loadavg_1min_before_after": [load_before, os.getloadavg()[0]],  # the machine is shared
        "graph_build_s": graph_build_s,
        "in_process_point_s": statistics.median(in_process),
        "worker_point_s": statistics.median(per_point),
        "end_to_end_points_per_hour": statistics.median(end_to_end),
        "steady_points_per_hour": statistics.median(steady),
        "goal_points_per_hour": GOAL_POINTS_PER_HOUR,
        "meets_goal": statistics.median(end_to_end) >= GOAL_POINTS_PER_HOUR,
        "end_to_end_points_per_s": statistics.median(end_to_end) / 3600,
        "steady_points_per_s": statistics.median(steady) / 3600,
        "goal_points_per_s": GOAL_POINTS_PER_S,
        "meets_points_per_s_goal": statistics.median(end_to_end) / 3600 >= GOAL_POINTS_PER_S,
        "runs_end_to_end_points_per_hour": end_to_end,
    }
    out = Path(args.out) if args.out else results_path("dse")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if not isinstance(v, list)}, indent=2))


if __name__ == "__main__":
    main()
