"""Per-op cost model: bytes at the policy's widths, and the time of each op on its core(s),
vectorized per op kind. What is on chip comes from ``hwsim.plan``; when DRAM bytes move is the
scheduler's business (``hwsim.schedule``).

Precision of each op: ``hwsim.precision``; GEMM engine cycles and mappings: ``hwsim.gemm``.

Bytes (``prepare_ops``; the graph's bytes are at FP32): a GEMM moves ``m*k`` inputs at its input
role's width, ``m*n`` outputs at its output role's (``hwsim.precision``: the slot table of the
fake-quantized model), and its weight tensor at the policy's storage size
(``models.quant.policy.tensor_storage_bytes``: packed data + scales + zero points). Without a
model config the weight size is computed as ``k*n`` elements at the weight precision (no scales).
Other ops move ``bytes_read + bytes_written`` scaled by ``bits / 32`` of their precision.

Time of an op (``op_times``) on ``g`` cores (``g > 1``: a GEMM split over its work group's
cores, n divided, each core holding its slice of the weight):
``max(engine, scratchpad, shared, ring) + dispatch (+ split overhead and the input broadcast /
output gather over the ring when g > 1)``, with

- GEMM engine cycles: ``hwsim.gemm.gemm_engine`` (array tiling, mapping choice, fill/drain; or,
  ``cycle_model: cpu``, a library call, passes over the weight at the bandwidth of the levels
  it is stored in (``weight_levels``) and the rows' MACs, one after another) on ``ceil(n/g)``;
- scratchpad: activations (per core) + the on-chip weight bytes (per core: every operand enters
  the engine through its core's scratchpad port, wherever it is stored) + folded-mapping
  re-reads, at the scratchpad bandwidth;
- shared: weight bytes read from the shared SRAM, at its bandwidth; ring: weight bytes read from
  other cores' scratchpads, at the inter-core bandwidth;
- SFU / vector / select: ``ceil(work / elems_per_cycle[p])`` with work = output elements
  (reductions, topk and sort: input elements, ``bytes_read / 4`` of the FP32 graph).

DRAM time is not part of an op's latency here: ``hwsim.schedule`` runs every op's DRAM bytes
through the one shared channel and the op ends when both its compute and its bytes are done.
``bound_by`` names the largest term: compute, fill_drain, sfu, vector, select, sram, shared,
ring, dispatch; the scheduler turns it into ``dram`` when the op waited for DRAM.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd

from models.config import ModelConfig
from models.params import parameter_table
from models.quant.policy import PrecisionPolicy, tensor_storage_bytes
from models.yamlio import UserError
from workloads.graph import KINDS, PHASES

from hwsim.gemm import gemm_engine
from hwsim.optable import categorical
from hwsim.precision import PREC_BITS, PREC_CODE, PREC_NAMES, op_precision, precision_table
from hwsim.spec import AcceleratorSpec

KIND_CODE = {k: i for i, k in enumerate(KINDS)}
PHASE_CODE = {p: i for i, p in enumerate(PHASES)}

#: Units of a core, in the scheduler's unit index order.
UNITS = ("matrix", "sfu", "vector", "select")
UNIT_CODE = {u: i for i, u in enumerate(UNITS)}

#: ``bound_by`` labels, in code order.
BOUNDS = ("compute", "fill_drain", "sfu", "vector", "select", "sram", "shared", "ring", "dram", "dispatch")
BOUND_CODE = {b: i for i, b in enumerate(BOUNDS)}


class CostError(UserError):
    """The inputs cannot be costed: ops whose kind has no cost function (a traced or loaded graph),
    a GEMM weight the model does not have, a precision the spec gives no energy for. Names the ops.

    Bad input, not a bug, so a ``UserError``: the command line prints it on one line (exit 2).
    """


# ------------------------------------------------------------------------------------------------
# Per-kind engine cost registry


@dataclass
class KindInputs:
    """Arrays of the ops of one kind (all of length n_ops_of_kind); bytes per core."""

    m: np.ndarray
    k: np.ndarray
    n: np.ndarray               # output features per core (ceil(n / g) for split GEMMs)
    work: np.ndarray            # elements of work for non-GEMM ops
    prec: np.ndarray            # effective precision codes
    act_bytes: np.ndarray       # activation bytes at the scratchpad, per core
    w_onchip_bytes: np.ndarray  # weight bytes read from the own scratchpad, per core
    w_bytes: np.ndarray         # weight bytes, per core
    w_shared_bytes: np.ndarray  # weight bytes read from the shared SRAM, per core
    w_remote_bytes: np.ndarray  # weight bytes read from other cores' scratchpads, per core


@dataclass
class KindCost:
    """Per-op engine times in seconds and the unit that runs them."""

    unit: np.ndarray          # unit codes (UNITS)
    engine_s: np.ndarray      # time on the unit's datapath
    engine_bound: np.ndarray  # BOUND code of the engine term
    compute_s: np.ndarray
    fill_drain_s: np.ndarray
    reread_bytes: np.ndarray  # extra scratchpad bytes of the folded mapping
    folded: np.ndarray


COST_FUNCTIONS: dict[str, Callable[[AcceleratorSpec, KindInputs], KindCost]] = {}


def register(kind: str):
    """Decorator: register a vectorized cost function for op kind ``kind``."""
    def deco(fn):
        COST_FUNCTIONS[kind] = fn
        return fn
    return deco


def weight_levels(hw: AcceleratorSpec, x: KindInputs) -> tuple[np.ndarray, np.ndarray]:
    """Seconds per weight byte of one pass over each GEMM's weight (the bandwidths of the levels
    it is read from, mixed by its bytes there; the rest is DRAM), and the BOUND code of the
    level holding most of it."""
    dram = np.maximum(x.w_bytes - x.w_onchip_bytes - x.w_shared_bytes - x.w_remote_bytes, 0.0)
    parts = np.stack([x.w_onchip_bytes, x.w_shared_bytes, x.w_remote_bytes, dram])
    bws = np.array([hw.core.scratchpad_bw_bytes_per_s, hw.shared_bw_bytes_per_s,
                    hw.inter_core_bw_bytes_per_s, hw.dram_bw_bytes_per_s])
    with np.errstate(divide="ignore", invalid="ignore"):
        s_per_byte = np.where(x.w_bytes > 0, (parts / bws[:, None]).sum(axis=0) / x.w_bytes, 0.0)
    codes = np.array([BOUND_CODE["sram"], BOUND_CODE["shared"], BOUND_CODE["ring"], BOUND_CODE["dram"]])
    return s_per_byte, codes[np.argmax(parts, axis=0)] if len(x.w_bytes) else np.zeros(0, dtype=np.int64)


@register("gemm")
def _gemm(hw: AcceleratorSpec, x: KindInputs) -> KindCost:
    f = hw.frequency_hz
    cpu = hw.core.matrix.cycle_model == "cpu"
    # only the cpu model reads the weight's levels (array models bound memory in op_times)
    s_per_byte, level = weight_levels(hw, x) if cpu else (None, None)
    compute, fill, preload, reread, folded = gemm_engine(hw, x.m, x.k, x.n, x.prec, x.act_bytes,
                                                         x.w_onchip_bytes, x.w_bytes, s_per_byte)
    engine = (compute + fill + preload) / f
    if cpu:
        # the call is the library's fixed cost (dispatch-like); the passes are bound by memory
        bound = np.select([compute >= np.maximum(fill, preload), preload >= fill],
                          [BOUND_CODE["compute"], level], BOUND_CODE["dispatch"])
    else:
        bound = np.where(compute >= fill + preload, BOUND_CODE["compute"], BOUND_CODE["fill_drain"])
    return KindCost(np.full(len(x.m), UNIT_CODE["matrix"]), engine, bound, compute / f,
                    (fill + preload) / f, reread, folded)


def _simple(hw: AcceleratorSpec, x: KindInputs, engine: np.ndarray, unit: str, bound: str) -> KindCost:
    z = np.zeros(len(x.m))
    return KindCost(np.full(len(x.m), UNIT_CODE[unit]), engine, np.full(len(x.m), BOUND_CODE[bound]),
                    engine, z, z, np.zeros(len(x.m), dtype=bool))


def _elementwise(hw: AcceleratorSpec, x: KindInputs, rates: dict[str, float], unit: str) -> KindCost:
    rate = precision_table(rates)[x.prec]
    return _simple(hw, x, np.ceil(x.work / rate) / hw.frequency_hz, unit, unit)


@register("nonlinear")
def _nonlinear(hw: AcceleratorSpec, x: KindInputs) -> KindCost:
    return _elementwise(hw, x, hw.core.sfu.elems_per_cycle, "sfu")


@register("eltwise")
def _eltwise(hw: AcceleratorSpec, x: KindInputs) -> KindCost:
    return _elementwise(hw, x, hw.core.vector.elems_per_cycle, "vector")


@register("reduce")
def _reduce(hw: AcceleratorSpec, x: KindInputs) -> KindCost:
    return _elementwise(hw, x, hw.core.vector.elems_per_cycle, "vector")


def _select_like(hw: AcceleratorSpec, x: KindInputs) -> KindCost:
    sel = hw.core.select
    unit = {"vector": "vector", "sfu": "sfu", "dedicated": "select"}[sel.unit]
    return _simple(hw, x, np.ceil(x.work / sel.elems_per_cycle) / hw.frequency_hz, unit, "select")


register("select")(_select_like)
register("move")(_select_like)


# ------------------------------------------------------------------------------------------------
# Bytes and precisions of every op (policy- and precision-dependent, placement-independent)


def weight_storage(config: ModelConfig | None, policy: PrecisionPolicy) -> dict[str, int]:
    """Bytes of each parameter under ``policy`` (empty without a config)."""
    if config is None:
        return {}
    return {p.name: sum(tensor_storage_bytes(p, policy.param_spec(p), policy).values())
            for p in parameter_table(config)}


@dataclass
class PreparedOps:
    """Per-op arrays at the policy's widths, before placement (``prepare_ops``)."""

    table: pd.DataFrame       # the op table with categorical string columns
    kinds: np.ndarray         # kind name per op (object)
    kind_code: np.ndarray     # index into kind_names per op
    kind_names: np.ndarray
    is_gemm: np.ndarray
    m: np.ndarray
    k: np.ndarray
    n: np.ndarray
    work: np.ndarray          # elements of work of non-GEMM ops
    macs: np.ndarray
    req: np.ndarray           # requested precision codes
    eff: np.ndarray           # effective precision codes
    in_bits: np.ndarray
    out_bits: np.ndarray
    act_bytes: np.ndarray     # activation bytes (inputs + outputs) at the policy's widths
    out_bytes: np.ndarray
    in_bytes: np.ndarray      # GEMM input bytes (0 for other ops)
    w_bytes: np.ndarray       # bytes of the op's GEMM weight under the policy (0 if none)
    weight: np.ndarray        # weight code per op (-1 = none; index into weight_names)
    weight_names: np.ndarray
    fallbacks: dict[str, int]

    def take(self, idx: np.ndarray) -> PreparedOps:
        """The rows ``idx`` (e.g. the template of every cost row); ``table`` is not taken."""
        arrays = {f: getattr(self, f)[idx] for f in _PER_ROW}
        return PreparedOps(table=self.table, kind_names=self.kind_names, weight_names=self.weight_names,
                           fallbacks=self.fallbacks, **arrays)


_PER_ROW = ("kinds", "kind_code", "is_gemm", "m", "k", "n", "work", "macs", "req", "eff", "in_bits",
            "out_bits", "act_bytes", "out_bytes", "in_bytes", "w_bytes", "weight")


def _check_kinds(table: pd.DataFrame, counts: np.ndarray) -> None:
    kind_cat = table["kind"].cat
    kind_names = np.asarray(kind_cat.categories, dtype=object)
    missing = sorted(set(kind_names[np.unique(kind_cat.codes.to_numpy())]) - set(COST_FUNCTIONS))
    if missing:
        sel = table["kind"].isin(missing).to_numpy()
        bad = table[sel].assign(ops=counts[sel])
        per = bad.groupby(["kind", "op"], observed=True)["ops"].sum().sort_values(ascending=False, kind="stable")
        listed = ", ".join(f"{op} ({kind}) x{c}" for (kind, op), c in per.items())
        raise CostError(f"{int(counts[sel].sum())} op(s) have no cost function for their kind: {listed}; "
                        f"cost functions exist for: {', '.join(sorted(COST_FUNCTIONS))}")


def prepare_ops(table: pd.DataFrame, hw: AcceleratorSpec, policy: PrecisionPolicy,
                config: ModelConfig | None = None, weight_sizes: dict[str, int] | None = None,
                counts: np.ndarray | None = None) -> PreparedOps:
    """Precisions and bytes of every row of an op table (``op_table(graph)``, or the graph's
    templates, ``template_table``).

    ``weight_sizes``: bytes of each parameter under the policy, when the caller has them already
    (``hwsim.simulate`` takes them from the compression table); default ``weight_storage``.
    ``counts``: ops per row (default 1 each), for the fallback counts and error messages.

    Raises:
        CostError: ops whose kind has no cost function (names and counts); a GEMM weight that
            the model config has no parameter for.
    """
    n = len(table)
    for col in ("op", "kind", "phase", "module", "weight"):
        if not isinstance(table[col].dtype, pd.CategoricalDtype):
            table = table.assign(**{col: categorical(table[col])})
    counts = np.ones(n, dtype=np.int64) if counts is None else np.asarray(counts, dtype=np.int64)
    _check_kinds(table, counts)
    kind_cat = table["kind"].cat
    kind_names = np.asarray(kind_cat.categories, dtype=object)
    kind_code = kind_cat.codes.to_numpy().astype(np.int64)
    kinds = kind_names[kind_code]
    code_of = {kd: i for i, kd in enumerate(kind_names)}

    def kind_is(name: str) -> np.ndarray:
        return kind_code == code_of.get(name, -1)

    # Precision per op class (few distinct classes: resolve each once).
    cats = [table[c].cat for c in ("kind", "module", "weight", "phase")]
    names = [np.asarray(c.categories, dtype=object) for c in cats]
    key = np.zeros(n, dtype=np.int64)
    for c, nm in zip(cats, names):        # mixed-radix key of the 4 codes
        key = key * max(len(nm), 1) + c.codes.to_numpy().astype(np.int64)
    uniq, inverse = np.unique(key, return_inverse=True)
    resolved = []
    for u in uniq:
        digits = []
        for nm in reversed(names):
            u, d = divmod(int(u), max(len(nm), 1))
            digits.append(nm[d])
        resolved.append(op_precision(*reversed(digits), policy, hw))
    inverse = inverse.reshape(-1)
    req = np.array([PREC_CODE[p.requested] for p in resolved], dtype=np.int64)[inverse]
    eff = np.array([PREC_CODE[p.effective] for p in resolved], dtype=np.int64)[inverse]
    in_bits = np.array([p.in_bits for p in resolved], dtype=np.float64)[inverse]
    out_bits = np.array([p.out_bits for p in resolved], dtype=np.float64)[inverse]
    w_bits = np.array([p.w_bits for p in resolved], dtype=np.float64)[inverse]

    m = table["m"].to_numpy().astype(np.float64)
    k = table["k"].to_numpy().astype(np.float64)
    nn = table["n"].to_numpy().astype(np.float64)
    elems = table["elems"].to_numpy().astype(np.float64)
    br = table["bytes_read"].to_numpy().astype(np.float64)
    bw = table["bytes_written"].to_numpy().astype(np.float64)
    wcat = table["weight"].cat
    weight_names = np.asarray(wcat.categories, dtype=object)
    wcode = wcat.codes.to_numpy().astype(np.int64)
    is_gemm = kind_is("gemm")
    has_weight = is_gemm & np.array([w != "" for w in weight_names], dtype=bool)[wcode] if n else np.zeros(0, dtype=bool)
    weight = np.where(has_weight, wcode, -1)

    scale = PREC_BITS[req] / 32.0
    in_bytes = np.where(is_gemm, m * k * in_bits / 8.0, 0.0)
    out_bytes = np.where(is_gemm, m * nn * out_bits / 8.0, bw * scale)
    act_bytes = np.where(is_gemm, in_bytes + out_bytes, (br + bw) * scale)
    w_bytes = np.zeros(n)
    used = np.unique(weight[weight >= 0])
    if len(used):
        stored = weight_sizes if weight_sizes is not None else weight_storage(config, policy)
        per_code = np.zeros(len(weight_names))
        for c in used:
            name = weight_names[c]
            if config is not None and name not in stored:
                raise CostError(f"GEMM weight {name!r} is not a parameter of model {config.name!r} "
                                f"(models.params.parameter_table); cannot size it under the policy")
            if config is not None:
                per_code[c] = stored[name]
        gi = np.flatnonzero(weight >= 0)
        w_bytes[gi] = per_code[weight[gi]] if config is not None else k[gi] * nn[gi] * w_bits[gi] / 8.0

    # Work of non-GEMM ops: output elements; reductions, topk, sort: input elements.
    in_elems = br / 4.0
    is_sel = kind_is("select") | kind_is("move")
    nonempty = np.array([w != "" for w in weight_names], dtype=bool)
    weight_any = nonempty[wcode] if n else np.zeros(0, dtype=bool)
    wide_in = kind_is("reduce") | (is_sel & ~weight_any)
    work = np.where(wide_in, np.maximum(elems, in_elems), elems)
    work = np.where(is_gemm, 0.0, np.maximum(work, 1.0))

    fallbacks: dict[str, int] = {}
    diff = req != eff
    if diff.any():
        unit = _unit_of(kinds[diff], hw)
        for u, a, b, c in zip(unit, req[diff], eff[diff], counts[diff]):
            key_fb = f"{u}:{PREC_NAMES[a]}->{PREC_NAMES[b]}"
            fallbacks[key_fb] = fallbacks.get(key_fb, 0) + int(c)
        fallbacks = {k_: v for k_, v in sorted(fallbacks.items()) if v}
    return PreparedOps(table, kinds, kind_code, kind_names, is_gemm, m, k, nn, work, table["macs"].to_numpy().astype(np.float64),
                       req, eff, in_bits, out_bits, act_bytes, out_bytes, in_bytes, w_bytes, weight,
                       weight_names, fallbacks)


def _unit_of(kinds: np.ndarray, hw: AcceleratorSpec) -> list[str]:
    sel = {"vector": "vector", "sfu": "sfu", "dedicated": "select"}[hw.core.select.unit]
    by_kind = {"gemm": "matrix", "nonlinear": "sfu", "eltwise": "vector", "reduce": "vector",
               "select": sel, "move": sel}
    return [by_kind[k] for k in kinds]


# ------------------------------------------------------------------------------------------------
# Time of every op on its cores


@dataclass
class OpTimes:
    """Per-op times (seconds) and the placement-dependent bytes."""

    unit: np.ndarray
    latency_s: np.ndarray     # on its g cores, DRAM excluded
    engine_s: np.ndarray
    compute_s: np.ndarray
    fill_drain_s: np.ndarray
    sram_s: np.ndarray
    shared_s: np.ndarray
    ring_s: np.ndarray
    dispatch_s: np.ndarray
    bound: np.ndarray         # BOUND codes (static terms)
    sram_bytes: np.ndarray    # scratchpad bytes, all cores together
    ring_bytes: np.ndarray    # remote weight reads + split broadcast/gather
    folded: np.ndarray
    xfer_s: np.ndarray        # time to ship the op's output to another core


def dispatch_s(hw: AcceleratorSpec, phase: np.ndarray | None, n: int, search_extra_s: float = 0.0) -> np.ndarray:
    """Seconds of dispatch of ``n`` ops whose phases (indices into ``workloads.graph.PHASES``) are
    ``phase`` (None: all at ``dispatch_overhead_cycles``): ``core.dispatch_by_phase`` where it
    names the phase, plus ``search_extra_s`` on the search phase's ops (``hyp_overhead_cycles``
    spread over them: ``hwsim.simulate``)."""
    from workloads.graph import PHASES

    f = hw.frequency_hz
    out = np.full(n, hw.core.dispatch_overhead_cycles / f)
    if phase is None:
        return out
    for ph, cycles in (hw.core.dispatch_by_phase or {}).items():
        out[phase == PHASES.index(ph)] = cycles / f
    if search_extra_s:
        out[phase == PHASES.index("search")] += search_extra_s
    return out


def op_times(hw: AcceleratorSpec, prep: PreparedOps, g: np.ndarray, w_local: np.ndarray,
             w_shared: np.ndarray, w_remote: np.ndarray, phase: np.ndarray | None = None,
             search_extra_s: float = 0.0) -> OpTimes:
    """Time of every op on ``g`` cores with its weight bytes read on chip as given.

    Args:
        g: cores per op (> 1 only for split GEMMs).
        w_local, w_shared, w_remote: weight bytes read from the own scratchpads (all ``g``
            together), the shared SRAM and other cores' scratchpads over the ring.
        phase, search_extra_s: the ops' phases and the search ops' extra dispatch (``dispatch_s``).
    """
    n = len(prep.m)
    f = hw.frequency_hz
    g = np.asarray(g, dtype=np.float64)
    n_core = np.where(prep.is_gemm, np.ceil(prep.n / g), prep.n)
    out_core = np.where(prep.is_gemm, prep.m * n_core * prep.out_bits / 8.0, prep.out_bytes)
    act_core = np.where(prep.is_gemm, prep.in_bytes + out_core, prep.act_bytes)
    unit = np.zeros(n, dtype=np.int64)
    engine = np.zeros(n)
    ebound = np.zeros(n, dtype=np.int64)
    compute = np.zeros(n)
    fill = np.zeros(n)
    reread = np.zeros(n)
    folded = np.zeros(n, dtype=bool)
    present = np.flatnonzero(np.bincount(prep.kind_code, minlength=len(prep.kind_names)))
    order = np.argsort(prep.kind_code, kind="stable")
    bounds = np.searchsorted(prep.kind_code[order], np.arange(len(prep.kind_names) + 1))
    for code in present:
        kind = prep.kind_names[code]
        idx = order[bounds[code]:bounds[code + 1]]
        x = KindInputs(prep.m[idx], prep.k[idx], n_core[idx], prep.work[idx], prep.eff[idx],
                       act_core[idx], w_local[idx] / g[idx], prep.w_bytes[idx] / g[idx],
                       w_shared[idx] / g[idx], w_remote[idx] / g[idx])
        c = COST_FUNCTIONS[kind](hw, x)
        unit[idx], engine[idx], ebound[idx] = c.unit, c.engine_s, c.engine_bound
        compute[idx], fill[idx] = c.compute_s, c.fill_drain_s
        reread[idx], folded[idx] = c.reread_bytes, c.folded
    # Every operand the engine consumes enters through its core's scratchpad port, wherever it
    # is stored: remote and shared bytes are bounded by their own links too, never faster.
    sram_core = act_core + (w_local + w_shared + w_remote) / g + reread
    sram_s = sram_core / hw.core.scratchpad_bw_bytes_per_s
    shared_s = w_shared / hw.shared_bw_bytes_per_s
    split = g > 1
    bcast = np.where(split, (prep.in_bytes + prep.out_bytes) * (g - 1) / g, 0.0)
    ring_s = w_remote / hw.inter_core_bw_bytes_per_s
    dispatch = dispatch_s(hw, phase, n, search_extra_s)
    terms = np.stack([engine, sram_s, shared_s, ring_s])
    which = np.argmax(terms, axis=0)
    body = terms.max(axis=0)
    bound = np.select([which == 0, which == 1, which == 2], [ebound, BOUND_CODE["sram"], BOUND_CODE["shared"]],
                      BOUND_CODE["ring"])
    split_extra = np.where(split, hw.mapping.split_overhead_cycles / f + bcast / hw.inter_core_bw_bytes_per_s
                           + hw.inter_core_latency_s, 0.0)
    bound = np.where(dispatch > body, BOUND_CODE["dispatch"], bound)
    latency = body + dispatch + split_extra
    xfer = prep.out_bytes / hw.inter_core_bw_bytes_per_s + hw.inter_core_latency_s
    return OpTimes(unit, latency, engine, compute, fill, sram_s, shared_s, ring_s, dispatch, bound,
                   sram_core * g, w_remote + bcast, folded, xfer)
