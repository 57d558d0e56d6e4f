"""Precision of each op under a policy, on an accelerator.

The *requested* precision comes from the policy's role specs of the op's module; the unit then
runs it at ``hwsim.spec.fallback_precision`` of it, and every substitution is counted:

==========================  ===========================================================  =======
op                          requested precision (policy role specs of the op's module)    unit
==========================  ===========================================================  =======
gemm, weight ``*weight_hh``  combine(``weight``, ``hidden``) (recurrent GEMM: input is h)  matrix
gemm, other weight           combine(``weight`` or ``embedding``, ``input``)               matrix
gemm, no weight              combine(``input``, ``input``)                                 matrix
nonlinear                    ``act`` (bounded by the SFU's precisions)                     sfu
eltwise in an LSTM module    ``cell`` (gate products, cell update)                         vector
eltwise elsewhere            ``act`` in modules, ``output`` outside modules (search)       vector
reduce                       ``output`` (softmax sums, log-sum-exp, scores)                vector
select, move                 ``embedding`` for lookups with a weight, else as eltwise      spec.select.unit
==========================  ===========================================================  =======

combine(a, b): both integer -> the wider integer; any float -> the wider float. An LSTM module is
one whose dotted name contains ``.layers.`` (``rnnt.encoder.layers.0.fwd``, ``lm_ext.layers.1``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.quant.policy import BITS, FLOAT_PRECISIONS, PrecisionPolicy

from hwsim.spec import AcceleratorSpec, fallback_precision

PREC_NAMES = tuple(BITS)
PREC_CODE = {p: i for i, p in enumerate(PREC_NAMES)}
PREC_BITS = np.array([BITS[p] for p in PREC_NAMES], dtype=np.float64)


def combine(a: str, b: str) -> str:
    """Engine precision of a GEMM with operands at ``a`` and ``b``: both int -> the wider int;
    any float -> the wider float."""
    floats = [p for p in (a, b) if p in FLOAT_PRECISIONS]
    pool = floats or [a, b]
    return max(pool, key=lambda p: BITS[p])


def _is_lstm(module: str) -> bool:
    return ".layers." in module


@dataclass(frozen=True)
class OpPrecision:
    requested: str      # precision the policy asks for (computation)
    effective: str      # precision the unit runs it at
    in_bits: int        # GEMM activation input width (storage)
    out_bits: int       # output width (storage)
    w_bits: int         # weight width (storage), 0 if none


def op_precision(kind: str, module: str, weight: str, phase: str, policy: PrecisionPolicy,
                 hw: AcceleratorSpec) -> OpPrecision:
    """Precision of one op class (see the table in the module docstring)."""
    spec = policy.spec
    core = hw.core
    if kind == "gemm":
        wrole = "embedding" if module.endswith("embedding") else "weight"
        w = spec(module, wrole).precision if weight else None
        x = spec(module, "hidden" if weight.endswith("weight_hh") else "input").precision
        req = combine(w, x) if w else x
        out_role = "preact" if _is_lstm(module) else ("output" if module.endswith(".out") else "act")
        return OpPrecision(req, fallback_precision(req, core.matrix.macs_per_pe_per_cycle), BITS[x],
                           BITS[spec(module, out_role).precision], BITS[w] if w else 0)
    if kind == "nonlinear":
        req = spec(module, "act").precision
        eff = fallback_precision(req, core.sfu.elems_per_cycle)
        return OpPrecision(req, eff, BITS[req], BITS[req], 0)
    if kind == "reduce":
        role = "output"
    elif kind in ("select", "move") and weight:
        role = "embedding"
    elif _is_lstm(module):
        role = "cell"
    else:
        role = "act" if module else "output"
    req = spec(module, role).precision
    rates = core.sfu.elems_per_cycle if (kind in ("select", "move") and core.select.unit == "sfu") \
        else core.vector.elems_per_cycle
    eff = req if (kind in ("select", "move") and core.select.unit == "dedicated") else fallback_precision(req, rates)
    return OpPrecision(req, eff, BITS[req], BITS[req], 0)
