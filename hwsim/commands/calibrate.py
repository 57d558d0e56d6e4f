"""``hwsim calibrate``: measure this CPU on one thread and write it as accelerator presets.

Writes ``FILE.yaml`` (torch eager as ``models.decode`` runs it), ``FILE-aten.yaml`` (bare torch
ops) and ``FILE-numba.yaml`` (the Numba integer kernels), each recording every measured number
with the call that measured it, the date and the CPU (``hwsim.calibrate``). About a minute; check
the result with ``hwsim validate --hw FILE.yaml``.
"""

from __future__ import annotations

import argparse
import logging

from hwsim.commands._args import count, positive_float

log = logging.getLogger(__name__)


def register(subparsers) -> None:
    p = subparsers.add_parser("calibrate", help="measure this CPU and write it as presets",
                              description=__doc__)
    p.add_argument("--out", required=True, help="preset to write (FILE.yaml; FILE-aten.yaml and "
                   "FILE-numba.yaml are written beside it)")
    p.add_argument("--repeats", type=count, default=5, help="samples per measurement (--stat of them kept)")
    p.add_argument("--stat", choices=("min", "median"), default="min",
                   help="how the samples reduce to one time: min (default: the machine without other "
                        "users' cache and DRAM traffic) or median")
    p.add_argument("--min-sample-s", type=positive_float, default=0.02,
                   help="least duration of one sample, seconds")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from models.yamlio import UserError

    from hwsim.calibrate import measure, preset_paths, write_presets
    from hwsim.outputs import check_file

    for path in preset_paths(args.out).values():
        check_file(path, "--out", suffix=".yaml")
    if args.repeats < 1:
        raise UserError("--repeats must be >= 1")
    cal = measure(repeats=args.repeats, min_sample_s=args.min_sample_s, stat=args.stat)
    paths = write_presets(cal, args.out)
    for exe, path in paths.items():
        print(f"{exe:>6}: {path}")
    keys = [k for k in sorted(cal.items) if k.split(".")[0] in ("gemm", "dispatch", "read", "copy")]
    for k in keys + ["l3_effective_bytes"]:
        it = cal.items[k]
        print(f"  {k:<24} {it.value:.4g} {it.unit}")
    print("  GEMM model (hwsim.calibrate.fit_cpu_gemm; the torch executor uses aten's):")
    for exe, fits in cal.gemm.items():
        for prec, fit in fits.items():
            gv = fit["gemv_macs_per_cycle"]
            print(f"    {exe:>5} {prec:<4}  {fit['macs_per_cycle']:7.2f} MAC/cycle (m = 1: "
                  f"{'rows rate' if gv is None else f'{gv:.2f}'}), call {fit['call_cycles']:8.0f} cycles, "
                  f"n_granule {fit['n_granule']}, m_tile {fit['m_tile']}, weight passes {fit['weight_passes']:.2f}")
    return 0
