"""How other users of a shared machine disturb this process's timings (not a test): the evidence
behind ``hwsim.calibrate``'s choice of the minimum over round-robin samples.

Round-robin over a few benches, one sample each per round (thread CPU time, ``sample_loop``: time
slices taken by other users do not count, so what is left is their traffic in the shared L3 and
to DRAM): the ``small`` beam-8 DR decode that ``hwsim validate`` times (about 0.3 s a sample),
the ``small`` greedy decode, ``cyclic_bench`` at 2, 8 and 24 MiB (a decode's weight reuse in and
beyond the L3), an L1-resident GEMM (compute-bound) and a 256 MiB read (DRAM). Per bench: the
spread max / min of its samples, and the correlation of its samples with the beam-8 decode's
(each bench's samples divided by their median). A burst of traffic slows the memory-bound benches
together and the long decode most.

Run: OMP_WAIT_POLICY=passive NUMBA_CACHE_DIR=.cache/numba .venv/bin/python benchmarks/bench_interference.py
[--rounds N] (about 40 s at the default 25). Writes ``interference.json`` (``results_path``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hwsim import calibrate as C  # noqa: E402
from hwsim.validate import decode_case  # noqa: E402
from _timing import results_path  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=25)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    benches = {
        "decode small b8 dr": (decode_case("small", 300, 8, "dr")[0], 1),
        "decode small greedy": (decode_case("small", 300, 1, "none")[0], 1),
        "cyclic 2 MiB": (C.cyclic_bench(2), 10),
        "cyclic 8 MiB": (C.cyclic_bench(8), 10),
        "cyclic 24 MiB": (C.cyclic_bench(24), 10),
        "gemm 64x256x256 fp32 (L1)": (C.gemm_bench("aten", "fp32", 64, 256, 256), 10),
        "read 256 MiB (DRAM)": (C.read_bench(256 << 20), 10),
    }
    for fn, _ in benches.values():
        fn()
    samples = {k: [] for k in benches}
    for _ in range(args.rounds):
        for k, (fn, loops) in benches.items():
            samples[k].append(C.sample_loop(fn, loops))
    names = list(benches)
    a = np.array([samples[k] for k in names]).T
    a = a / np.median(a, axis=0)
    ref = a[:, 0]
    rows = {k: {"spread": float(a[:, j].max() / a[:, j].min()),
                "corr_with_decode": float(np.corrcoef(ref, a[:, j])[0, 1]),
                "min_over_median": float(a[:, j].min()),
                "median_s": float(np.median(samples[k]))} for j, k in enumerate(names)}
    machine = C.machine_info()
    print(f"{C.machine_name(machine)}, {C.utc_stamp()}, {args.rounds} rounds")
    print(f"{'bench':<28} {'spread':>7} {'corr':>6} {'min/med':>8}")
    for k, r in rows.items():
        print(f"{k:<28} {r['spread']:7.2f} {r['corr_with_decode']:6.2f} {r['min_over_median']:8.2f}")
    out = args.out or results_path("interference")
    out.write_text(json.dumps({"machine": machine, "date": C.utc_stamp(), "rounds": args.rounds,
                               "benches": rows, "samples_s": samples}, indent=1))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
