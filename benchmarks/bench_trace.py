"""Tracer overhead and analytic-builder speed (a benchmark, not a test).

- traced / untraced decode time of ``small``, 10 s (1000 frames), beam 8, DR fusion (goal <= 3x);
- ``workloads.paper_graph`` build time for ``swb300``, 10 s, beam 16, DR fusion (goal <= 5 s).

Medians over ``--repeats`` runs, measured in one process after one warm-up run each (the first
dispatch-mode entry and the first decode pay one-off start-up costs). Prints a table and writes
JSON to ``trace.json`` in ``benchmarks/results/latest/`` (``_timing.results_path``).

    .venv/bin/python benchmarks/bench_trace.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import platform

import torch

import models
import workloads
from models.features import random_features

from _timing import median_s, results_path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)

    system = models.build_system("small")
    feats = random_features(system.config, 1000, seed=0)
    kw = dict(beam=8, lm_fusion="dr", method="alsd")
    untraced = median_s(lambda: models.decode(system, feats, **kw), args.repeats)
    traced = median_s(lambda: workloads.trace(system, feats, **kw), args.repeats)
    graph, _ = workloads.trace(system, feats, **kw)

    cfg = models.load_config("swb300")
    build = median_s(lambda: workloads.paper_graph(cfg, 10.0, 16, "dr", "alsd"), args.repeats)
    paper = workloads.paper_graph(cfg, 10.0, 16, "dr", "alsd")

    rows = [
        ("small 10 s beam 8 DR: untraced decode", "s", untraced, None),
        ("small 10 s beam 8 DR: traced decode", "s", traced, None),
        ("  traced / untraced", "x", traced / untraced, 3.0),
        ("  traced ops", "ops", len(graph), None),
        ("  tracer time per op", "us", 1e6 * (traced - untraced) / len(graph), None),
        ("swb300 10 s beam 16 DR: paper_graph build", "s", build, 5.0),
        ("  analytic ops", "ops", len(paper), None),
    ]
    print(f"{'measurement':<46}{'value':>14}  {'unit':<5}{'goal':>8}")
    for name, unit, value, goal in rows:
        v = f"{value:,.0f}" if unit == "ops" else f"{value:.3f}"
        g = f"<= {goal:g}" if goal else ""
        print(f"{name:<46}{v:>14}  {unit:<5}{g:>8}")
    result = {
        "host": platform.node(), "torch": torch.__version__, "repeats": args.repeats,
        "small_untraced_decode_s": untraced, "small_traced_decode_s": traced,
        "trace_overhead_x": traced / untraced, "trace_overhead_goal_x": 3.0,
        "small_traced_ops": len(graph), "tracer_us_per_op": 1e6 * (traced - untraced) / len(graph),
        "swb300_paper_graph_build_s": build, "paper_graph_build_goal_s": 5.0,
        "swb300_paper_graph_ops": len(paper),
    }
    out = results_path("trace")
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
