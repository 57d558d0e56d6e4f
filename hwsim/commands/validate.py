"""``hwsim validate``: predicted (the simulator) vs measured time on this CPU, per case and in
summary (``median_abs_err``, ``p90_abs_err`` of |predicted / measured - 1|).

``--hw FILE.yaml`` names the presets ``hwsim calibrate --out FILE.yaml`` wrote (``FILE-aten.yaml``
and ``FILE-numba.yaml`` beside it are used too). Cases and output fields: ``hwsim.validate``.
About two minutes. ``--calibrate`` measures the presets in the same session (``hwsim calibrate``'s
benchmarks in one round-robin with the cases) and writes them to ``--hw FILE.yaml`` first: on a
shared machine whose speed drifts, calibration and cases then see the same machine.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys

from hwsim.commands._args import count, positive_float


def register(subparsers) -> None:
    p = subparsers.add_parser("validate", help="simulated vs measured GEMMs and decodes on this CPU",
                              description=__doc__)
    p.add_argument("--hw", required=True, help="preset written by hwsim calibrate (name or YAML path)")
    p.add_argument("--repeats", type=count, default=5, help="samples per case (--stat of them kept)")
    p.add_argument("--stat", choices=("min", "median"), default="min",
                   help="how the samples reduce to one time: min (default: the machine without other "
                        "users' cache and DRAM traffic) or median")
    p.add_argument("--min-sample-s", type=positive_float, default=0.02,
                   help="least duration of one sample, seconds")
    p.add_argument("--no-decodes", action="store_true", help="GEMM cases only")
    p.add_argument("--calibrate", action="store_true",
                   help="measure the presets in the same session and write them to --hw (a .yaml path)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def _pct(x) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def run(args: argparse.Namespace) -> int:
    from models.yamlio import UserError

    from hwsim.validate import resolve_presets, validate

    if args.repeats < 1:
        raise UserError("--repeats must be >= 1")
    if args.calibrate:
        from hwsim.calibrate import preset_paths
        from hwsim.outputs import check_file

        for path in preset_paths(args.hw).values():
            check_file(path, "--hw", suffix=".yaml")
    else:
        resolve_presets(args.hw)    # bad --hw is a one-line error before any work
    command = "hwsim " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if len(sys.argv) > 1 else "hwsim validate"
    res = validate(args.hw, repeats=args.repeats, min_sample_s=args.min_sample_s,
                   decodes=not args.no_decodes, command=command, calibrate=args.calibrate, stat=args.stat)
    if args.json:
        print(json.dumps(res))
        return 0
    from hwsim.calibrate import machine_name

    print(f"{machine_name(res['machine'])} ({', '.join(res['machine']['flags'])}), {res['date']}, "
          f"{res['stat']} of {res['repeats']} rounds")
    print(f"{'case':<46} {'predicted':>11} {'measured':>11} {'ratio':>6}")
    for c in res["cases"]:
        print(f"{c['name']:<46} {c['predicted_s'] * 1e3:9.3f}ms {c['measured_s'] * 1e3:9.3f}ms {c['ratio']:6.2f}")
    s = res["summary"]
    print(f"all {s['n']} cases: median |pred/meas - 1| {_pct(s['median_abs_err'])}, p90 {_pct(s['p90_abs_err'])}")
    sm = res["summary_median"]
    print(f"  (against the rounds' medians: median {_pct(sm['median_abs_err'])}, p90 {_pct(sm['p90_abs_err'])})")
    for key, v in list(s["by_kind"].items()) + list(s["by_precision"].items()):
        print(f"  {key:<22} n={v['n']:<3} median {_pct(v['median_abs_err']):>7} p90 {_pct(v['p90_abs_err']):>7}"
              f"  worst: {v['worst']}")
    return 0
