"""Causes of the gaps ``hwsim validate`` leaves (not a test): two measurements on this CPU.

1. Cache effects: the search GEMMs of ``small`` (F.linear with bias, fp32, one thread) timed hot (the
   same weight every call) and cold (after reading a 32 MiB buffer, as the interpreter's traffic
   between a decode's uses of a weight evicts it); the simulator's prediction beside them.
2. Unit overlap: per decode case of ``hwsim.validate``, the sum of the simulated op latencies over the
   simulated makespan on ``host-cpu`` (> 1: the cost model overlapped a core's units, which one CPU
   thread does not; the presets ``hwsim calibrate`` writes since 2026-12-07 set
   ``core.concurrent_units: false``, so this is 1 on them: a check that it stays so).

Times: thread CPU time, median of 30 calls. Run:
OMP_WAIT_POLICY=passive NUMBA_CACHE_DIR=.cache/numba .venv/bin/python benchmarks/bench_validate_probes.py
Writes ``validate_probes.json`` (with the machine and date) into ``benchmarks/results/latest/``
(``_timing.results_path``).
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import hwsim  # noqa: E402
from hwsim.calibrate import machine_info  # noqa: E402
from hwsim.provenance import utc_stamp  # noqa: E402
from hwsim.validate import DECODE_CASES, decode_case, predict_gemm  # noqa: E402
from _timing import results_path  # noqa: E402

SEARCH_GEMMS = ((6, 512, 2048), (6, 256, 1024), (1, 256, 1024))   # (m, k, n) of small's search / encoder


def median_thread_s(fn, before=None, n: int = 30) -> float:
    samples = []
    for _ in range(n):
        if before is not None:
            before()
        t0 = time.thread_time()
        fn()
        samples.append(time.thread_time() - t0)
    return statistics.median(samples)


def main() -> int:
    torch.set_num_threads(1)
    hw = hwsim.load_spec("host-cpu")
    junk = torch.ones(8 << 20)                  # 32 MiB
    cache = []
    for m, k, n in SEARCH_GEMMS:
        x, w, b = torch.randn(m, k), torch.randn(n, k), torch.randn(n)
        f = lambda: F.linear(x, w, b)  # noqa: E731
        f()
        hot, cold = median_thread_s(f), median_thread_s(f, lambda: junk.sum())
        cache.append({"m": m, "k": k, "n": n, "weight_bytes": 4 * k * n, "hot_s": hot, "cold_s": cold,
                      "cold_over_hot": cold / hot, "predicted_s": predict_gemm(hw, m, k, n, "fp32")})
        print(f"F.linear {m}x{k}x{n}: hot {hot * 1e6:.0f} us, after a 32 MiB sweep {cold * 1e6:.0f} us "
              f"({cold / hot:.2f}x); simulated {cache[-1]['predicted_s'] * 1e6:.0f} us")
    overlap = []
    for model, frames, beam, fusion in DECODE_CASES:
        _, graph, system, audio_s, _ = decode_case(model, frames, beam, fusion)
        res = hwsim.simulate(graph, hw, "fp32", audio_s, config=system.config)
        busy = float(res.ops["latency_s"].sum())
        overlap.append({"model": model, "frames": frames, "beam": beam, "lm_fusion": fusion,
                        "sum_op_latency_s": busy, "makespan_s": res.latency_s,
                        "sum_over_makespan": busy / res.latency_s})
        print(f"{model} beam {beam} {fusion}: summed op latencies / makespan = {busy / res.latency_s:.2f}")
    out = results_path("validate_probes")
    out.write_text(json.dumps({"machine": machine_info(),
                               "date": utc_stamp(),
                               "command": "python benchmarks/bench_validate_probes.py",
                               "cache": cache, "unit_overlap": overlap}, indent=1))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
