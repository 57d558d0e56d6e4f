"""Benchmark streaming and serving: a minute of live audio, and a capacity search, in CPU seconds.

Run:  OMP_WAIT_POLICY=passive NUMBA_CACHE_DIR=.cache/numba \\
      python benchmarks/bench_streaming.py [--out FILE.json]

Workloads, as the user runs them, each in a fresh child process (the figures include the imports,
the graph build and the simulation; from the child's ``getrusage``):

- ``hwsim simulate --model swb300-stream --hw H --precision int4 --beam 8 --lm-fusion dr
  --audio-s 60 --streaming --json`` on ``rapid4`` and ``edge``;
- ``hwsim serve --model swb300-stream --hw edge --precision int4 --beam 8 --lm-fusion dr
  --audio-s 60 --max-streams --p95-ms 40 --limit 64 --json``, and the same on ``rapid4`` with
  ``--limit 4096`` (its answer is in the thousands).

Goals (issue 18): the 60 s stream in under 2 s of CPU; ``--max-streams`` up to 64 streams in
under a minute on 2 cores.

Also measured (``monotonicity``, in this process, 10 s streams, beam 8): how far ``hwsim.serve``'s
delays are from monotone, without batching (max batch 1: a FIFO, where they must be) and with
batches of up to 16: over S = 1..40 streams, the steps S -> S + 1 where some stream's p95 fell and
the largest fall of the worst stream's p95 (edge, rapid4 x FP16, INT8, INT4, DR fusion); and with
every bandwidth doubled (DRAM, scratchpad, shared, inter-core), the cases (S = 1, 2, 4, 8, 16, 32,
with and without fusion) where some stream's p95 rose, and by how much.

Writes JSON to ``results_path("streaming")`` (``benchmarks/_timing.py``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

from _timing import results_path

GOAL_STREAM_CPU_S = 2.0
GOAL_SERVE_CPU_S = 60.0
MODEL = ["--model", "swb300-stream", "--precision", "int4", "--beam", "8", "--lm-fusion", "dr", "--audio-s", "60"]


def child(args: list[str]) -> dict:
    """``hwsim ARGS --json`` in a child process: its CPU seconds, wall seconds, peak RSS, output."""
    cmd = [sys.executable, "-m", "hwsim.cli", *args, "--json"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {"command": "hwsim " + " ".join(args) + " --json",
            "cpu_s": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), "wall_s": wall,
            "peak_rss_mib": after.ru_maxrss / 1024.0, "result": json.loads(proc.stdout)}


def monotonicity() -> dict:
    """See the module docstring."""
    import numpy as np

    from hwsim import serve
    from hwsim.spec import load_spec

    out = {}
    for batch in (1, 16):
        policy = serve.BatchPolicy(max_batch=batch)
        steps = fell = 0
        worst_drop = 0.0
        raised = cases = 0
        worst_rise = 0.0
        for name in ("edge", "rapid4"):
            hw = load_spec(name)
            fast = hw.replace_paths({"dram_bw_bytes_per_s": 2 * hw.dram_bw_bytes_per_s,
                                     "core.scratchpad_bw_bytes_per_s": 2 * hw.core.scratchpad_bw_bytes_per_s,
                                     "shared_bw_bytes_per_s": 2 * hw.shared_bw_bytes_per_s,
                                     "inter_core_bw_bytes_per_s": 2 * hw.inter_core_bw_bytes_per_s})
            for p in ("fp16", "int8", "int4"):
                for fusion in ("none", "dr"):
                    w = serve.workload("swb300-stream", hw, p, 10.0, 8, fusion, max_batch=16)
                    if fusion == "dr":
                        m = serve.stream_monotonicity(w, 40, policy)
                        steps, fell = steps + m["steps"], fell + m["fell"]
                        worst_drop = max(worst_drop, m["worst_drop"])
                    w2 = serve.workload("swb300-stream", fast, p, 10.0, 8, fusion, max_batch=16)
                    for s in (1, 2, 4, 8, 16, 32):
                        a = serve.serve(w, s, policy).streams["delay_p95_s"].to_numpy()
                        b = serve.serve(w2, s, policy).streams["delay_p95_s"].to_numpy()
                        cases += 1
                        if (b > a + 1e-12).any():
                            raised += 1
                            worst_rise = max(worst_rise, float(np.max(b / a - 1)))
        out[f"max_batch_{batch}"] = {"streams_steps": steps, "streams_steps_where_a_p95_fell": fell,
                                     "worst_p95_largest_fall": worst_drop, "bandwidth_cases": cases,
                                     "bandwidth_cases_where_a_p95_rose": raised,
                                     "bandwidth_largest_rise": worst_rise}
        print(f"max batch {batch}: {out[f'max_batch_{batch}']}", flush=True)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", help="JSON file (default: benchmarks/results/latest/streaming.json)")
    args = p.parse_args()
    child(["simulate", "--hw", "rapid4", *MODEL, "--audio-s", "1", "--streaming"])   # Numba cache warm
    runs = []
    for hw in ("rapid4", "edge"):
        r = child(["simulate", "--hw", hw, *MODEL, "--streaming"])
        st = r["result"]["streaming"]
        r["figures"] = {"ops": r["result"]["ops"], "chunks": st["chunks"], "delay_p95_s": st["delay_s"]["p95"],
                        "final_latency_s": st["final_latency_s"], "keeps_up": st["keeps_up"]}
        del r["result"]
        runs.append(r)
        print(f"stream 60 s on {hw}: {r['cpu_s']:.2f} s CPU, {r['peak_rss_mib']:.0f} MiB, {r['figures']}", flush=True)
    for hw, limit in (("edge", 64), ("rapid4", 4096)):
        r = child(["serve", "--hw", hw, *MODEL, "--max-streams", "--p95-ms", "40", "--limit", str(limit)])
        res = r.pop("result")
        r["figures"] = {"max_streams": res["max_streams"], "p95_s": res["p95_s"], "tried": len(res["tried"]),
                        "limit": limit}
        runs.append(r)
        print(f"max-streams on {hw} (limit {limit}): {r['cpu_s']:.2f} s CPU, {r['figures']}", flush=True)
    streams = [r for r in runs if " simulate " in f" {r['command']} "]
    serves = [r for r in runs if " serve " in f" {r['command']} "]
    result = {
        "benchmark": "streaming",
        "platform": platform.platform(), "python": platform.python_version(), "cpu_count": os.cpu_count(),
        "loadavg_1min": os.getloadavg()[0], "runs": runs,
        "stream_cpu_s_max": max(r["cpu_s"] for r in streams), "goal_stream_cpu_s": GOAL_STREAM_CPU_S,
        "serve_64_cpu_s": serves[0]["cpu_s"], "goal_serve_cpu_s": GOAL_SERVE_CPU_S,
        "meets_goal": max(r["cpu_s"] for r in streams) <= GOAL_STREAM_CPU_S and serves[0]["cpu_s"] <= GOAL_SERVE_CPU_S,
        "monotonicity": monotonicity(),
    }
    out = Path(args.out) if args.out else results_path("streaming")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "runs"}, indent=2))


if __name__ == "__main__":
    main()
