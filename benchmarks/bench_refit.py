"""A committed preset family refitted with today's code, against its own recorded validation (not
a test; no timing): how a change to the CPU GEMM model moves the fit of a machine that is no longer
at hand.

``hwsim.calibrate.recorded_calibration(--hw)`` reads the measured items the presets' headers
record (4 significant digits) and fits them again (``fit_gemms``); the GEMM cases of ``--cases``
(a ``validate.json`` measured on that machine) are predicted with the refitted presets and
compared with their recorded measured times. A family recorded before a calibration GEMM existed
is fitted without it (``fit_cpu_gemm`` uses what is there).

Run: OMP_WAIT_POLICY=passive NUMBA_CACHE_DIR=.cache/numba .venv/bin/python benchmarks/bench_refit.py
[--hw host-cpu --cases benchmarks/results/validate-host-cpu.json] (a few seconds).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hwsim import calibrate as C  # noqa: E402
from hwsim.validate import error_stats, predict_gemm  # noqa: E402
from _timing import results_path  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hw", default="host-cpu", help="a preset family written by hwsim calibrate")
    ap.add_argument("--cases", type=Path, default=ROOT / "benchmarks" / "results" / "validate-host-cpu.json")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    cal = C.recorded_calibration(args.hw)
    specs = {exe: C._spec(C.spec_dict(cal, exe)) for exe in ("aten", "numba")}
    recorded = json.loads(args.cases.read_text())
    cases = []
    for c in recorded["cases"]:
        if c["kind"] != "gemm":
            continue
        pred = predict_gemm(specs[c["executor"]], c["m"], c["k"], c["n"], c["precision"])
        cases.append({**c, "predicted_s": pred, "ratio": pred / c["measured_s"], "recorded_ratio": c["ratio"]})
    groups: dict[str, list[dict]] = {}
    for c in cases:
        groups.setdefault(f"{c['executor']}.{c['precision']}", []).append(c)
    now, then = error_stats(cases), error_stats([{**c, "predicted_s": c["recorded_ratio"] * c["measured_s"]}
                                                 for c in cases])
    print(f"{args.hw} refitted with today's code vs {args.cases.name} ({recorded.get('date')}):")
    print(f"  all {now['n']} GEMMs: median {100 * now['median_abs_err']:.1f}%, p90 {100 * now['p90_abs_err']:.1f}% "
          f"(recorded: {100 * then['median_abs_err']:.1f}%, {100 * then['p90_abs_err']:.1f}%)")
    for k, v in groups.items():
        e = error_stats(v)
        print(f"  {k:<12} median {100 * e['median_abs_err']:5.1f}%  p90 {100 * e['p90_abs_err']:5.1f}%")
    out = args.out or results_path("refit")
    out.write_text(json.dumps({"hw": args.hw, "cases_file": str(args.cases.relative_to(ROOT))
                               if args.cases.is_relative_to(ROOT) else str(args.cases),
                               "summary": now, "recorded_summary": then,
                               "by_precision": {k: error_stats(v) for k, v in groups.items()}}, indent=1))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
