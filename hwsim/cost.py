"""Per-op cost model: bytes at the policy's widths, weight residency, and the time of each op on
one core (and split across all cores), vectorized per op kind.

Precision of each op: ``hwsim.precision``; GEMM engine cycles and mappings: ``hwsim.gemm``.

Bytes (the graph's bytes are at FP32): a GEMM moves ``m*k`` inputs at the input precision,
``m*n`` outputs at ``preact`` (LSTM modules), ``output`` (modules named ``*.out``) or ``act``
(others), and its weight tensor at the policy's storage size (``models.quant.policy.
tensor_storage_bytes``: packed data + scales + zero points; ``k*n`` elements at the weight
precision when the model config is not known). Other ops move ``bytes_read + bytes_written``
scaled by ``bits / 32`` of their precision.

Residency (``mapping.residency: reuse``): GEMM weights used at least twice are kept on chip,
greedily by reuse count (most-used first, smaller first on ties), until the on-chip capacity
``cores * scratchpad_bytes + shared_sram_bytes`` is full: scratchpads fill first, then the shared
memory. A resident weight is loaded from DRAM once, by its first use (program order); later uses
read it at the scratchpad (or shared) bandwidth. Non-resident weights stream from DRAM at every
use (one DRAM latency per streaming op). Activations live in the scratchpad. The placement is not
pinned to a core: an op reads a resident weight at scratchpad bandwidth wherever it runs (the ring
is assumed not to be the bottleneck for weights).

Time of an op on one core: ``max(engine, sram, shared, dram) + dispatch`` with

- GEMM engine cycles: ``hwsim.gemm`` (array tiling, mapping choice, fill/drain).
- SFU / vector / select: ``ceil(work / elems_per_cycle[p])`` with work = output elements
  (reductions, topk and sort: input elements, ``bytes_read / 4`` of the FP32 graph).
- ``bound_by`` names the largest term: compute, fill_drain, sfu, vector, select, sram, shared,
  dram; or dispatch when the dispatch overhead exceeds all of them.

A GEMM with at least ``mapping.split_min_macs`` MACs also gets a split cost: n divided over all
cores, DRAM streaming not divided (one shared DRAM), plus ``split_overhead_cycles`` and gathering
the output over the inter-core link. The scheduler picks whichever finishes first.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd

from models.config import ModelConfig
from models.params import parameter_table
from models.quant.policy import PrecisionPolicy, tensor_storage_bytes
from workloads.graph import KINDS, PHASES

from hwsim.gemm import gemm_mapping
from hwsim.optable import categorical
from hwsim.precision import PREC_BITS, PREC_CODE, PREC_NAMES, op_precision
from hwsim.spec import AcceleratorSpec

KIND_CODE = {k: i for i, k in enumerate(KINDS)}
PHASE_CODE = {p: i for i, p in enumerate(PHASES)}

#: Units of a core, in the scheduler's unit index order.
UNITS = ("matrix", "sfu", "vector", "select")
UNIT_CODE = {u: i for i, u in enumerate(UNITS)}

#: ``bound_by`` labels, in code order.
BOUNDS = ("compute", "fill_drain", "sfu", "vector", "select", "sram", "shared", "dram", "dispatch")
BOUND_CODE = {b: i for i, b in enumerate(BOUNDS)}


class CostError(ValueError):
    """An op cannot be costed (e.g. its kind has no cost function). Names the ops."""


# ------------------------------------------------------------------------------------------------
# Per-kind cost registry


@dataclass
class KindInputs:
    """Arrays of the ops of one kind (all of length n_ops_of_kind)."""

    m: np.ndarray
    k: np.ndarray
    n: np.ndarray
    elems: np.ndarray
    work: np.ndarray            # elements of work for non-GEMM ops
    macs: np.ndarray
    prec: np.ndarray            # effective precision codes
    act_bytes: np.ndarray       # activation bytes at the scratchpad
    w_sram_bytes: np.ndarray    # resident weight bytes read from scratchpads
    w_shared_bytes: np.ndarray  # resident weight bytes read from shared memory
    w_dram_bytes: np.ndarray    # weight bytes streamed from DRAM
    out_bytes: np.ndarray


@dataclass
class KindCost:
    """Per-op times in seconds and the unit that runs them."""

    unit: np.ndarray        # unit codes (UNITS)
    engine_s: np.ndarray    # time on the unit's datapath
    engine_bound: np.ndarray  # BOUND code of the engine term
    extra: dict             # optional extra per-op columns (compute_s, fill_drain_s, ...)
    split_s: np.ndarray | None = None   # latency when split over all cores (inf if not allowed)


COST_FUNCTIONS: dict[str, Callable[[AcceleratorSpec, KindInputs], KindCost]] = {}


def register(kind: str):
    """Decorator: register a vectorized cost function for op kind ``kind``."""
    def deco(fn):
        COST_FUNCTIONS[kind] = fn
        return fn
    return deco


def _rate_table(rates: dict[str, float]) -> np.ndarray:
    table = np.full(len(PREC_NAMES), np.nan)
    for p, r in rates.items():
        table[PREC_CODE[p]] = r
    return table


def _memory_s(hw: AcceleratorSpec, x: KindInputs, divide: float = 1.0):
    sram = (x.act_bytes + x.w_sram_bytes) / (hw.core.scratchpad_bw_bytes_per_s * divide)
    shared = x.w_shared_bytes / hw.shared_bw_bytes_per_s
    dram = np.where(x.w_dram_bytes > 0, hw.dram_latency_s + x.w_dram_bytes / hw.dram_bw_bytes_per_s, 0.0)
    return sram, shared, dram


@register("gemm")
def _gemm(hw: AcceleratorSpec, x: KindInputs) -> KindCost:
    f = hw.frequency_hz
    mx = hw.core.matrix
    mpc = _rate_table({p: mx.array_macs_per_cycle(p) for p in mx.macs_per_pe_per_cycle})[x.prec]
    w_all = x.w_sram_bytes + x.w_shared_bytes + x.w_dram_bytes
    compute, fill, preload, reread, folded = gemm_mapping(hw, x.m, x.k, x.n, mpc, x.act_bytes,
                                                          x.w_sram_bytes, w_all)
    engine = (compute + fill + preload) / f
    bound = np.where(compute >= fill + preload, BOUND_CODE["compute"], BOUND_CODE["fill_drain"])
    split = np.full(len(x.m), np.inf)
    if hw.cores > 1:
        ok = x.macs >= hw.mapping.split_min_macs
        if ok.any():
            P = hw.cores
            sub = KindInputs(*(getattr(x, name)[ok] for name in KindInputs.__dataclass_fields__))
            c2, f2, p2, r2, _ = gemm_mapping(hw, sub.m, sub.k, np.ceil(sub.n / P), mpc[ok], sub.act_bytes / P,
                                             sub.w_sram_bytes / P, w_all[ok] / P)
            sram, shared, dram = _memory_s(hw, sub, divide=P)
            sram = sram + r2 / hw.core.scratchpad_bw_bytes_per_s
            gather = (sub.out_bytes * (P - 1) / P / hw.inter_core_bw_bytes_per_s + hw.inter_core_latency_s)
            split[ok] = (np.maximum.reduce([(c2 + f2 + p2) / f, sram, shared, dram])
                         + (hw.mapping.split_overhead_cycles + hw.core.dispatch_overhead_cycles) / f + gather)
    return KindCost(np.full(len(x.m), UNIT_CODE["matrix"]), engine, bound,
                    {"compute_s": compute / f, "fill_drain_s": (fill + preload) / f, "reread_bytes": reread,
                     "folded": folded}, split)


def _elementwise(hw: AcceleratorSpec, x: KindInputs, rates: dict[str, float], unit: str) -> KindCost:
    rate = _rate_table(rates)[x.prec]
    engine = np.ceil(x.work / rate) / hw.frequency_hz
    return KindCost(np.full(len(x.m), UNIT_CODE[unit]), engine,
                    np.full(len(x.m), BOUND_CODE[unit]), {})


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
    engine = np.ceil(x.work / sel.elems_per_cycle) / hw.frequency_hz
    unit = {"vector": "vector", "sfu": "sfu", "dedicated": "select"}[sel.unit]
    return KindCost(np.full(len(x.m), UNIT_CODE[unit]), engine,
                    np.full(len(x.m), BOUND_CODE["select"]), {})


register("select")(_select_like)
register("move")(_select_like)


# ------------------------------------------------------------------------------------------------
# Whole-graph costing


def weight_storage(config: ModelConfig | None, policy: PrecisionPolicy) -> dict[str, int]:
    """Bytes of each parameter under ``policy`` (empty without a config)."""
    if config is None:
        return {}
    return {p.name: sum(tensor_storage_bytes(p, policy.param_spec(p), policy).values())
            for p in parameter_table(config)}


def choose_resident(names: np.ndarray, sizes: np.ndarray, hw: AcceleratorSpec) -> dict[str, str]:
    """Greedy residency by reuse count: ``{weight name: "scratchpad"|"shared"}`` for resident ones.

    Args:
        names: weight name of every GEMM op ('' for none), in program order.
        sizes: bytes of that weight under the policy (per op).
    """
    if hw.mapping.residency == "none" or len(names) == 0:
        return {}
    uses = Counter(n for n in names if n)
    size = {}
    for nm, sz in zip(names, sizes):
        if nm:
            size[nm] = int(sz)
    order = sorted((nm for nm, u in uses.items() if u >= 2), key=lambda nm: (-uses[nm], size[nm], nm))
    pad_left = hw.cores * hw.core.scratchpad_bytes
    shared_left = hw.shared_sram_bytes
    placed = {}
    for nm in order:
        if size[nm] <= pad_left:
            placed[nm] = "scratchpad"
            pad_left -= size[nm]
        elif size[nm] <= shared_left:
            placed[nm] = "shared"
            shared_left -= size[nm]
    return placed


@dataclass
class CostedOps:
    """Per-op cost arrays for the scheduler and the result tables."""

    table: pd.DataFrame     # op_table + precision/bytes/time columns
    unit: np.ndarray
    latency_s: np.ndarray
    split_s: np.ndarray
    out_xfer_s: np.ndarray  # time to send the op's output to another core
    fallbacks: dict[str, int]
    resident: dict[str, str]


def cost_ops(table: pd.DataFrame, hw: AcceleratorSpec, policy: PrecisionPolicy,
             config: ModelConfig | None = None) -> CostedOps:
    """Cost every op of an op table (``op_table(graph)``) on ``hw`` under ``policy``.

    Raises:
        CostError: some ops have a kind without a registered cost function (names and counts).
    """
    n = len(table)
    for col in ("op", "kind", "phase", "module", "weight"):
        if not isinstance(table[col].dtype, pd.CategoricalDtype):
            table = table.assign(**{col: categorical(table[col])})
    kind_cat = table["kind"].cat
    kind_names = np.asarray(kind_cat.categories, dtype=object)
    kinds = kind_names[kind_cat.codes.to_numpy()]     # object array of kind names
    missing = sorted(set(kind_names[np.unique(kind_cat.codes.to_numpy())]) - set(COST_FUNCTIONS))
    if missing:
        bad = table[table["kind"].isin(missing)]
        counts = bad.groupby(["kind", "op"], observed=True).size().sort_values(ascending=False)
        listed = ", ".join(f"{op} ({kind}) x{c}" for (kind, op), c in counts.items())
        raise CostError(f"{len(bad)} op(s) have no cost function for their kind: {listed}; "
                        f"cost functions exist for: {', '.join(sorted(COST_FUNCTIONS))}")

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
    weights = np.asarray(wcat.categories, dtype=object)[wcat.codes.to_numpy()]
    is_gemm = kinds == "gemm"

    # Bytes at the policy's widths.
    scale = PREC_BITS[req] / 32.0
    act_bytes = np.where(is_gemm, (m * k * in_bits + m * nn * out_bits) / 8.0, (br + bw) * scale)
    out_bytes = np.where(is_gemm, m * nn * out_bits / 8.0, bw * scale)
    stored = weight_storage(config, policy)
    w_bytes = np.zeros(n)
    if is_gemm.any():
        gi = np.flatnonzero(is_gemm & (weights != ""))
        fallback_size = k[gi] * nn[gi] * w_bits[gi] / 8.0
        w_bytes[gi] = [stored.get(weights[i], fb) for i, fb in zip(gi, fallback_size)]

    # Residency and first-use loads.
    gemm_w = np.where(is_gemm, weights, "")
    resident = choose_resident(gemm_w, w_bytes, hw)
    w_dram = np.where(is_gemm, w_bytes, 0.0)
    w_sram = np.zeros(n)
    w_shared = np.zeros(n)
    if resident:
        tier = np.array([resident.get(w, "") for w in gemm_w])
        first = np.zeros(n, dtype=bool)
        seen = set()
        for i in np.flatnonzero(tier != ""):
            if gemm_w[i] not in seen:
                seen.add(gemm_w[i])
                first[i] = True
        on_pad = (tier == "scratchpad") & ~first
        on_shared = (tier == "shared") & ~first
        w_sram[on_pad] = w_bytes[on_pad]
        w_shared[on_shared] = w_bytes[on_shared]
        w_dram[on_pad | on_shared] = 0.0

    # Work of non-GEMM ops: output elements; reductions, topk, sort: input elements.
    in_elems = br / 4.0
    is_sel = (kinds == "select") | (kinds == "move")
    wide_in = (kinds == "reduce") | (is_sel & (weights == ""))
    work = np.where(wide_in, np.maximum(elems, in_elems), elems)
    work = np.where(is_gemm, 0.0, np.maximum(work, 1.0))

    f = hw.frequency_hz
    unit = np.zeros(n, dtype=np.int64)
    engine = np.zeros(n)
    ebound = np.zeros(n, dtype=np.int64)
    split = np.full(n, np.inf)
    compute_s = np.zeros(n)
    fill_s = np.zeros(n)
    reread = np.zeros(n)
    folded = np.zeros(n, dtype=bool)
    macs = table["macs"].to_numpy().astype(np.float64)
    for kind in sorted(set(kind_names[np.unique(kind_cat.codes.to_numpy())])):
        idx = np.flatnonzero(kinds == kind)
        x = KindInputs(m[idx], k[idx], nn[idx], elems[idx], work[idx], macs[idx], eff[idx],
                       act_bytes[idx], w_sram[idx], w_shared[idx], w_dram[idx], out_bytes[idx])
        c = COST_FUNCTIONS[kind](hw, x)
        unit[idx], engine[idx], ebound[idx] = c.unit, c.engine_s, c.engine_bound
        if c.split_s is not None:
            split[idx] = c.split_s
        if "compute_s" in c.extra:
            compute_s[idx] = c.extra["compute_s"]
            fill_s[idx] = c.extra["fill_drain_s"]
        if "reread_bytes" in c.extra:
            reread[idx] = c.extra["reread_bytes"]
            folded[idx] = c.extra["folded"]
        elif kind not in ("gemm",):
            compute_s[idx] = c.engine_s

    x_all = KindInputs(m, k, nn, elems, work, macs, eff, act_bytes, w_sram + reread, w_shared, w_dram, out_bytes)
    sram_s, shared_s, dram_s = _memory_s(hw, x_all)
    dispatch_s = np.full(n, hw.core.dispatch_overhead_cycles / f)
    terms = np.stack([engine, sram_s, shared_s, dram_s])
    which = np.argmax(terms, axis=0)
    body = terms.max(axis=0)
    bound = np.select([which == 0, which == 1, which == 2], [ebound, BOUND_CODE["sram"], BOUND_CODE["shared"]],
                      BOUND_CODE["dram"])
    bound = np.where(dispatch_s > body, BOUND_CODE["dispatch"], bound)
    latency = body + dispatch_s
    split = np.where(split < latency, split, np.inf)

    # Fallback report: "unit:requested->effective" -> ops.
    fallbacks: dict[str, int] = {}
    diff = req != eff
    if diff.any():
        keys_fb = pd.Series([f"{UNITS[u]}:{PREC_NAMES[a]}->{PREC_NAMES[b]}"
                             for u, a, b in zip(unit[diff], req[diff], eff[diff])])
        fallbacks = {k_: int(v) for k_, v in keys_fb.value_counts().sort_index().items()}

    out = table.copy()
    out["unit"] = pd.Categorical.from_codes(unit, categories=list(UNITS))
    out["precision"] = pd.Categorical.from_codes(eff, categories=list(PREC_NAMES))
    out["precision_requested"] = pd.Categorical.from_codes(req, categories=list(PREC_NAMES))
    out["bytes"] = act_bytes + w_sram + reread + w_shared + w_dram
    out["act_bytes"] = act_bytes
    out["weight_bytes"] = w_bytes
    out["dram_bytes"] = w_dram
    out["sram_bytes"] = act_bytes + w_sram + reread
    out["folded"] = folded
    out["shared_bytes"] = w_shared
    out["work_elems"] = work
    out["compute_s"] = compute_s
    out["fill_drain_s"] = fill_s
    out["engine_s"] = engine
    out["sram_s"] = sram_s
    out["shared_s"] = shared_s
    out["dram_s"] = dram_s
    out["dispatch_s"] = dispatch_s
    out["bound_by"] = pd.Categorical.from_codes(bound, categories=list(BOUNDS))
    out["resident"] = np.array([w in resident for w in gemm_w]) if resident else np.zeros(n, dtype=bool)
    xfer = out_bytes / hw.inter_core_bw_bytes_per_s + hw.inter_core_latency_s
    return CostedOps(out, unit, latency, split, xfer, fallbacks, resident)


def energy_j(costed: pd.DataFrame, hw: AcceleratorSpec, split: np.ndarray | None = None) -> np.ndarray | None:
    """Per-op energy in joules (None if the spec has no energy section).

    MACs at the effective precision (0 J for a precision without ``mac_j``), bytes at each level
    (DRAM bytes also cross the scratchpad), SFU and vector elements; split GEMMs add their
    inter-core gather bytes.
    """
    e = hw.energy
    if e is None:
        return None
    prec = costed["precision"].cat
    mac_j = np.array([e.mac_j.get(p, 0.0) for p in prec.categories])[prec.codes.to_numpy()]
    total = costed["macs"].to_numpy() * mac_j
    total = total + (costed["sram_bytes"].to_numpy() + costed["dram_bytes"].to_numpy()) * e.scratchpad_byte_j
    total = total + costed["shared_bytes"].to_numpy() * e.shared_byte_j
    total = total + costed["dram_bytes"].to_numpy() * e.dram_byte_j
    unit = costed["unit"].astype(object).to_numpy()
    work = costed["work_elems"].to_numpy()
    total = total + np.where(unit == "sfu", work * e.sfu_elem_j, 0.0)
    total = total + np.where(unit == "vector", work * e.vector_elem_j, 0.0)
    return total
