"""Precision of each op under a policy, on an accelerator.

The *requested* precision comes from the policy's role specs of the op's module; the unit then
runs it at ``hwsim.spec.fallback_precision`` of it, and every substitution is counted.

An op's roles (:func:`op_roles`) are those of the quantization slots of its module that quantize
the tensors it reads and writes, from the one slot table ``models.quant.roles`` that the
fake-quantized model fills (the module's kind from its dotted name, ``roles.module_kind``):

==========================  ===========================================  ==================  =======
op                          input (, weight) -> output slot               roles               unit
==========================  ===========================================  ==================  =======
gemm in an ``lstm``          ``q_input`` or ``q_hidden`` (``*weight_hh``),  input / hidden,     matrix
                             ``q_weight_ih/hh`` -> ``q_preact``             weight -> preact
gemm in a ``linear``         ``q_input``, ``q_weight`` -> ``q_output``      input, weight ->    matrix
                                                                            output (``*.out``)
                                                                            or preact
gemm elsewhere               no slot                                        input -> act        matrix
nonlinear in an ``lstm``     ``q_gate`` / ``q_cell_act``                    act                 sfu
nonlinear elsewhere          no slot (the joint's tanh, log-softmax)        act                 sfu
eltwise in an ``lstm``       ``q_cell`` (gate products, cell update)        cell                vector
eltwise elsewhere            no slot                                        ``act`` in modules, vector
                                                                            ``output`` outside
                                                                            (search)
reduce                       no slot (softmax sums, log-sum-exp, scores)    output              vector
select, move with a weight   ``q_weight`` of an ``embedding``               embedding           spec.select.unit
select, move otherwise       as eltwise                                     as eltwise          spec.select.unit
==========================  ===========================================  ==================  =======

A GEMM's requested precision is combine(weight, input) (combine(input, input) without a weight),
its input width the input role's, its output width the output role's; any other op computes,
reads and writes at its one role. combine(a, b): both integer -> the wider integer; any float ->
the wider float.

Known approximations: an op other than a GEMM reads and writes at one width, its output role's
(a sigmoid reads its ``preact`` input at the ``act`` width); and an op is priced at its module's
role for its kind, so the LSTM's last product ``h = o * tanh(c)`` is priced at ``cell`` although
``q_hidden`` stores h at ``hidden`` (the op kind does not tell it from the cell update).
``tests/hwsim/test_precision_roles.py`` checks every other tensor against the quantizer that
stores it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.quant.policy import BITS, FLOAT_PRECISIONS, PrecisionPolicy
from models.quant.roles import WEIGHT_SLOTS, module_kind, slot_role

from hwsim.spec import AcceleratorSpec, fallback_precision

PREC_NAMES = tuple(BITS)
PREC_CODE = {p: i for i, p in enumerate(PREC_NAMES)}
PREC_BITS = np.array([BITS[p] for p in PREC_NAMES], dtype=np.float64)


def precision_table(values: dict) -> np.ndarray:
    """``values`` (precision name -> number, or None) as an array indexed by ``PREC_CODE``; NaN
    where a precision has no entry or its entry is None."""
    table = np.full(len(PREC_NAMES), np.nan)
    for p, v in values.items():
        table[PREC_CODE[p]] = np.nan if v is None else float(v)
    return table


def combine(a: str, b: str) -> str:
    """Engine precision of a GEMM with operands at ``a`` and ``b``: both int -> the wider int;
    any float -> the wider float."""
    floats = [p for p in (a, b) if p in FLOAT_PRECISIONS]
    pool = floats or [a, b]
    return max(pool, key=lambda p: BITS[p])


@dataclass(frozen=True)
class OpRoles:
    """The policy roles of the tensors an op reads and writes (``weight`` is "" without one)."""

    input: str
    weight: str
    output: str


#: (op kind, module kind) -> slot of the module that quantizes the op's output.
_OUT_SLOT = {("gemm", "lstm"): "q_preact", ("gemm", "linear"): "q_output",
             ("nonlinear", "lstm"): "q_gate", ("eltwise", "lstm"): "q_cell",
             ("select", "lstm"): "q_cell", ("move", "lstm"): "q_cell"}

#: Parameter attribute -> weight slot that quantizes it (GEMM weight operands).
_WEIGHT_SLOT = {attr: slot for slot, attr in WEIGHT_SLOTS.items() if attr != "bias"}


def op_roles(kind: str, module: str, weight: str) -> OpRoles:
    """Roles of one op class (see the table in the module docstring).

    Args:
        kind: op kind (``workloads.graph.KINDS``).
        module: dotted name of the module that ran it ("" for the search).
        weight: full name of the parameter it reads ("" if none).
    """
    mkind = module_kind(module)
    if kind == "gemm":
        w_slot = _WEIGHT_SLOT.get(weight.rsplit(".", 1)[-1]) if mkind is not None else None
        w_role = slot_role(mkind, module, w_slot) if w_slot else ("weight" if weight else "")
        in_slot = "q_hidden" if (mkind == "lstm" and weight.endswith("weight_hh")) else "q_input"
        in_role = slot_role(mkind, module, in_slot) if mkind in ("lstm", "linear") else "input"
        out_slot = _OUT_SLOT.get((kind, mkind))
        return OpRoles(in_role, w_role, slot_role(mkind, module, out_slot) if out_slot else "act")
    if kind in ("select", "move") and weight:
        role = slot_role("embedding", module, "q_weight")  # a table read by a lookup
    elif kind == "reduce":
        role = "output"
    elif (kind, mkind) in _OUT_SLOT:
        role = slot_role(mkind, module, _OUT_SLOT[(kind, mkind)])
    elif kind == "nonlinear":
        role = "act"
    else:
        role = "act" if module else "output"
    return OpRoles(role, "", role)


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
    roles = op_roles(kind, module, weight)
    if kind == "gemm":
        w = spec(module, roles.weight).precision if weight else None
        x = spec(module, roles.input).precision
        req = combine(w, x) if w else x
        return OpPrecision(req, fallback_precision(req, core.matrix.macs_per_pe_per_cycle), BITS[x],
                           BITS[spec(module, roles.output).precision], BITS[w] if w else 0)
    req = spec(module, roles.output).precision
    if kind == "nonlinear":
        eff = fallback_precision(req, core.sfu.elems_per_cycle)
        return OpPrecision(req, eff, BITS[req], BITS[req], 0)
    rates = core.sfu.elems_per_cycle if (kind in ("select", "move") and core.select.unit == "sfu") \
        else core.vector.elems_per_cycle
    eff = req if (kind in ("select", "move") and core.select.unit == "dedicated") else fallback_precision(req, rates)
    return OpPrecision(req, eff, BITS[req], BITS[req], 0)
