"""``hwsim gemm``: the cost of one GEMM ``(m x k) @ (k x n)`` on one core of an accelerator.

The numbers come from ``hwsim.gemm.cost_gemm``, the code path the simulator costs every GEMM with:
engine cycles (compute, fill/drain, weight preload) per ``matrix.cycle_model``, memory cycles
(scratchpad, DRAM), dispatch, and the array's utilization. With ``--hw scalesim-os`` or
``scalesim-ws`` the cycles are SCALE-Sim 3.0's compute cycles.
"""

from __future__ import annotations

import argparse
import json

from models.quant.policy import BITS

from hwsim.commands._args import positive_int


def register(subparsers) -> None:
    p = subparsers.add_parser("gemm", help="cycles and latency of one GEMM on one core",
                              description=__doc__)
    p.add_argument("--hw", required=True, help="hardware preset or YAML path")
    p.add_argument("--m", type=positive_int, required=True, help="rows of the input (batch), >= 1")
    p.add_argument("--k", type=positive_int, required=True, help="reduction length, >= 1")
    p.add_argument("--n", type=positive_int, required=True, help="output features, >= 1")
    p.add_argument("--precision", required=True, choices=list(BITS),
                   help="precision of inputs, weights and outputs (the engine may fall back)")
    p.add_argument("--weight-resident", action="store_true",
                   help="weights read from the scratchpad instead of streamed from DRAM")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def gemm_report(hw, m: int, k: int, n: int, precision: str, weight_resident: bool = False) -> dict:
    """One GEMM's cost as a flat dict (cycles at the hw clock, seconds; see ``GemmCost``)."""
    from hwsim.gemm import cost_gemm

    c = cost_gemm(hw, m, k, n, precision, weight_resident=weight_resident)
    mx = hw.core.matrix
    terms = {"compute": c.compute, "fill_drain": c.fill_drain, "preload": c.preload,
             "sram": c.sram, "dram": c.dram}
    engine = float(c.compute + c.fill_drain + c.preload)
    bound = max(("engine", engine), ("sram", float(c.sram)), ("dram", float(c.dram)), key=lambda t: t[1])[0]
    out = {"hw": hw.name, "dataflow": mx.dataflow, "cycle_model": mx.cycle_model,
           "array": f"{mx.rows}x{mx.cols}", "m": m, "k": k, "n": n, "macs": m * k * n,
           "precision": precision, "precision_engine": hw.engine_precision(precision),
           "cycles": _number(c.cycles), "latency_s": float(c.latency_s)}
    out.update({f"{name}_cycles": _number(v) for name, v in terms.items()})
    out.update({"dispatch_cycles": _number(c.dispatch), "engine_cycles": _number(engine),
                "bound_by": bound, "utilization": float(c.utilization)})
    return out


def _number(x) -> int | float:
    x = float(x)
    return int(x) if x.is_integer() else x


def run(args: argparse.Namespace) -> int:
    from hwsim.spec import load_spec

    hw = load_spec(args.hw)
    r = gemm_report(hw, args.m, args.k, args.n, args.precision, args.weight_resident)
    if args.json:
        print(json.dumps(r))
        return 0
    fallback = "" if r["precision_engine"] == r["precision"] else f" (runs at {r['precision_engine']})"
    print(f"{r['hw']}: {r['array']} {r['dataflow']} array, cycle_model {r['cycle_model']}; "
          f"GEMM m={r['m']} k={r['k']} n={r['n']} ({r['macs']} MACs) at {r['precision']}{fallback}")
    width = max(len(key) for key in r)
    for key in ("cycles", "latency_s", "compute_cycles", "fill_drain_cycles", "preload_cycles",
                "engine_cycles", "sram_cycles", "dram_cycles", "dispatch_cycles", "bound_by",
                "utilization"):
        value = r[key]
        text = f"{value:.6g}" if isinstance(value, float) else str(value)
        print(f"  {key:<{width}}  {text}")
    return 0
