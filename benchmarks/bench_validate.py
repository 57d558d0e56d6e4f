"""Validation against this CPU (not a test): ``hwsim.validate.validate``, saved for the report.

With ``--calibrate`` (what regenerates the committed results, on the machine the presets
describe: ``--calibrate --hw hwsim/presets/host-cpu-zen5.yaml --out benchmarks/results/validate.json``
for the AMD EPYC of family 26; ``host-cpu.yaml`` and ``validate-host-cpu.json`` are an earlier
machine's, 2026-12-07) the presets are measured in the same session as the cases and written to
``--hw`` first (``hwsim validate --calibrate``); without it, the presets named by ``--hw`` are used
as they are. A machine that differs from those gets presets of its own (another ``--hw`` path).

Predicted (the simulator) vs measured time of 135 GEMM cases (RNN-T weight shapes x m in 1, 4, 8, 16,
250 x torch fp32 / bf16 / int8 and the Numba INT8 / INT4 kernels) and 4 whole decodes (``tiny``,
``small``; greedy and beam 8 with DR fusion) in torch eager on one thread. The presets come from
``hwsim calibrate --out hwsim/presets/host-cpu.yaml``; on another machine, calibrate first and pass
``--hw`` (the file records on which CPU it was measured; so does the output here).

Run: OMP_WAIT_POLICY=passive NUMBA_CACHE_DIR=.cache/numba .venv/bin/python benchmarks/bench_validate.py
Writes ``validate.json`` (fields: the ``hwsim.validate`` module docstring) into
``benchmarks/results/latest/`` unless ``--out`` says otherwise.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hwsim.calibrate import machine_name  # noqa: E402
from hwsim.validate import validate  # noqa: E402
from _timing import results_path  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hw", default="host-cpu", help="preset written by hwsim calibrate")
    ap.add_argument("--calibrate", action="store_true",
                    help="measure the presets in the same session and write them to --hw (a .yaml path)")
    ap.add_argument("--repeats", type=int, default=9, help="samples per case (--stat of them kept)")
    ap.add_argument("--stat", choices=("min", "median"), default="min", help="min (default) or median of the rounds")
    ap.add_argument("--out", type=Path, default=results_path("validate"))
    args = ap.parse_args()
    command = "python benchmarks/bench_validate.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    res = validate(args.hw, repeats=args.repeats, command=command.strip(), calibrate=args.calibrate,
                   stat=args.stat)
    s = res["summary"]
    print(f"{machine_name(res['machine'])} ({', '.join(res['machine']['flags'])}), {res['date']}, "
          f"{res['stat']} of {res['repeats']} rounds")
    print("| cases | n | median abs err | p90 abs err | worst |")
    print("|---|---|---|---|---|")
    for key, v in list(s["by_kind"].items()) + list(s["by_precision"].items()):
        print(f"| {key} | {v['n']} | {100 * v['median_abs_err']:.1f}% | {100 * v['p90_abs_err']:.1f}% | {v['worst']} |")
    sm = res["summary_median"]["by_kind"]
    print("against the rounds' medians: " + "; ".join(f"{k} median {100 * v['median_abs_err']:.1f}%, p90 "
                                                     f"{100 * v['p90_abs_err']:.1f}%" for k, v in sm.items()))
    for c in res["cases"]:
        if c["kind"] == "decode":
            print(f"{c['name']}: predicted {c['predicted_s'] * 1e3:.1f} ms, measured {c['measured_s'] * 1e3:.1f} ms "
                  f"({res['stat']}; median {c['measured_median_s'] * 1e3:.1f}, max {c['measured_max_s'] * 1e3:.1f}), "
                  f"ratio {c['ratio']:.2f}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=1))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
