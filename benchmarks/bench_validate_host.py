"""Fidelity check (not a test): simulated host-cpu latency vs measured PyTorch decode time.

The ``host-cpu`` preset describes this machine with measured GEMM rates and DRAM bandwidth. Here
real decodes of ``tiny`` and ``small`` (random weights and features, ALSD, with and without DR
fusion) are timed in eager PyTorch on one thread, traced, and the traced graphs simulated on
``host-cpu`` restricted to one core (PyTorch eager runs one op at a time on one thread). Also
measured: PyTorch's per-op overhead (a tiny ``torch.add``), against the preset's assumed dispatch
overhead. The search's Python bookkeeping (hypothesis dicts, caches) is not an op and is not
simulated: that is part of the gap, and the reason to report a ratio rather than assert one.

Run: OMP_WAIT_POLICY=passive NUMBA_CACHE_DIR=.cache/numba .venv/bin/python benchmarks/bench_validate_host.py
Writes benchmarks/results/validate_host.json.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import hwsim  # noqa: E402
import models  # noqa: E402
import workloads  # noqa: E402
from _timing import median_s  # noqa: E402




def per_op_overhead_s(repeats: int = 5) -> float:
    a, b = torch.ones(4), torch.ones(4)
    n = 20000

    def loop():
        for _ in range(n):
            torch.add(a, b)

    with torch.inference_mode():
        return median_s(loop, repeats) / n


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "validate_host.json"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    hw = hwsim.load_spec("host-cpu").replace_path("cores", 1)
    overhead = per_op_overhead_s()
    assumed = hw.core.dispatch_overhead_cycles / hw.frequency_hz
    rows = []
    cases = [("tiny", 400, 4, "none"), ("tiny", 400, 4, "dr"), ("small", 300, 1, "none"),
             ("small", 300, 4, "none"), ("small", 300, 4, "dr"), ("small", 300, 8, "dr")]
    for model, frames, beam, fusion in cases:
        system = models.build_system(model, seed=0)
        feats = models.random_features(system.config, frames, seed=1)
        kw = dict(beam=beam, lm_fusion=fusion)
        models.decode(system, feats, **kw)  # warm-up
        measured = median_s(lambda: models.decode(system, feats, **kw), args.repeats)
        graph, _ = workloads.trace(system, feats, **kw)
        audio_s = frames * system.config.features.frame_shift_s
        sim = hwsim.simulate(graph, hw, "fp32", audio_s, config=system.config).summary
        rows.append({"model": model, "frames": frames, "beam": beam, "lm_fusion": fusion, "ops": len(graph),
                     "measured_s": measured, "simulated_s": sim["latency_s"],
                     "simulated_over_measured": sim["latency_s"] / measured,
                     "measured_s_per_op": measured / len(graph)})
    print(f"PyTorch per-op overhead (tiny torch.add, 1 thread): {overhead * 1e6:.2f} us; "
          f"host-cpu preset assumes {assumed * 1e6:.2f} us")
    print("| model | frames | beam | fusion | ops | measured ms | simulated ms | sim/measured | measured us/op |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['model']} | {r['frames']} | {r['beam']} | {r['lm_fusion']} | {r['ops']} | "
              f"{r['measured_s'] * 1e3:.1f} | {r['simulated_s'] * 1e3:.1f} | {r['simulated_over_measured']:.2f} | "
              f"{r['measured_s_per_op'] * 1e6:.1f} |")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"per_op_overhead_s": overhead, "assumed_dispatch_s": assumed,
                                          "cases": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
