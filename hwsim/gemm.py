"""The cost of a GEMM on one core's matrix engine: engine cycles, mapping, memory terms.

Notation: a GEMM ``(m x k) @ (k x n)`` on an ``R x C`` array whose PEs do ``L`` MACs per cycle
along k at the GEMM's precision (``matrix.macs_per_pe_per_cycle``; the whole array does
``R * C * L``). A *tile* (SCALE-Sim: a *fold*) is one placement of a block of the GEMM on the
array.

``cycle_model: hwsim`` (default):

- output-stationary: ``tiles = ceil(m/R) * ceil(n/C)``, ``compute = tiles * ceil(k/L)`` (or, with
  ``matrix.fold_outputs``, the folded mapping of ``gemm_mapping`` when it is faster);
- weight-stationary: a tile holds ``R*L`` values of k, ``tiles = ceil(k/(R*L)) * ceil(n/C)``,
  ``compute = tiles * m``, plus a weight preload of ``R`` cycles per tile;
- fill/drain ``R + C`` cycles per tile, or once per GEMM when the spec says it overlaps (likewise
  the ws preload).

``cycle_model: scalesim``: SCALE-Sim 3.0's compute cycles without memory stalls, derived from its
documented schedule (``scalesim/compute/systolic_compute_{os,ws}.py``; our own closed forms, not its
code). SCALE-Sim maps a GEMM to operand matrices as an ifmap ``Sr x T`` and a filter ``T x Sc``.
Output-stationary: ``Sr = m`` on the rows, ``Sc = n`` on the columns, ``T = k`` streamed; each
fold streams its ``T`` operands, then waits ``C - 1`` cycles for the outputs to drain, and the
operands enter skewed by up to ``R - 1`` cycles: ``k + R + C - 2`` cycles per fold. Weight-
stationary: ``Sr = k`` on the rows, ``Sc = n`` on the columns, ``T = m`` streamed; each fold first
loads ``R`` rows of weights, then streams ``m`` inputs, skewed and drained as above:
``m + 2R + C - 2`` cycles per fold. Folds are timed one after another with no overlap (ragged
folds cost as much as full ones: SCALE-Sim pads them with null requests), and SCALE-Sim reports the
index of the last cycle counted from 0, one less than the cycles it simulates::

    os:  cycles = ceil(m/R) * ceil(n/C) * (k + R + C - 2) - 1
    ws:  cycles = ceil(k/R) * ceil(n/C) * (m + 2R + C - 2) - 1

Here they are split as ``compute`` (``folds * k``, resp. ``folds * m``), ``preload`` (ws:
``folds * R``) and ``fill_drain`` (``folds * (R + C - 2) - 1``: the skew and the -1 of the
count). With ``L > 1`` lanes per PE (not a SCALE-Sim setting; our extension, L = 1 is SCALE-Sim)
``k`` becomes ``ceil(k/L)`` (os) and a ws fold holds ``R*L`` values of k.

``cycle_model: cpu``: a CPU thread's GEMM library (``matrix.cpu``, one ``CpuGemmSpec`` per
precision; the "array" is 1 x 1, so ``macs_per_pe_per_cycle`` is the thread's rate for a GEMM's
rows). The thread does a GEMM's parts one after another::

    n_g     = ceil(n / n_granule) * n_granule                 (the register tile's columns)
    passes  = gemv_weight_passes                              if m = 1 and it is given
              ceil(m / m_tile) * weight_passes                (m_tile = 0: one tile)
    compute = m * k * n_g / rate + m * n * out_cycles_per_elem
                                     rate = gemv_macs_per_cycle if m = 1 and given, else the rows rate
    call    = call_cycles
    weight  = w_bytes * (n_g / n) * f * (min(passes, 1) * s_home + max(passes - 1, 0) * s_again)

Split as ``compute``, ``fill_drain`` (= ``call``: the library's fixed cost of a call) and
``preload`` (= ``weight``: the passes over the weight). The first pass reads the weight from
where it is stored: ``s_home`` mixes the bandwidths of the scratchpad, shared SRAM, other cores
and DRAM in proportion to its bytes there (a cache is modelled as the level that holds the
weight). The other passes (the library's packing, and every further row tile) read it again
where ``reread`` says: ``home`` (``s_again = s_home``: the library streams the whole weight for
every row tile) or ``near`` (``s_again = min(s_home, 1 / core.scratchpad_bw_bytes_per_s)``: it
keeps a block of the weight in the core's own cache while every row tile uses it, as the
project's VNNI kernels keep a panel's K block in L1, ``hwsim.kernels.vnni``, and BLAS
libraries pack B in blocks sized for L2). ``hwsim calibrate`` fits the choice.

``cost_gemm`` is the public single-GEMM estimate, vectorized over arrays of shapes. The simulator
prices every GEMM through ``gemm_engine``, as ``cost_gemm`` does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.quant.policy import BITS
from models.yamlio import ConfigError

from hwsim.precision import PREC_CODE, precision_table
from hwsim.spec import AcceleratorSpec


@dataclass(frozen=True)
class GemmCost:
    """Cycles of GEMMs (arrays, or 0-d arrays for scalar inputs), at the hw clock.

    Attributes:
        cycles: total = max(engine, sram, dram) + dispatch, where engine = compute + fill_drain
            + preload.
        compute, fill_drain, preload: engine cycles (see the module docstring; ``cycle_model:
            cpu``: the rows' MACs, the library call, the passes over the weight).
        sram, dram: memory cycles (inputs + outputs at the scratchpad, weight at DRAM unless
            resident).
        dispatch: dispatch overhead cycles.
        utilization: macs / (engine cycles * whole-array MACs per cycle): MAC-slot use of the
            array.
    """

    cycles: np.ndarray
    compute: np.ndarray
    fill_drain: np.ndarray
    preload: np.ndarray
    sram: np.ndarray
    dram: np.ndarray
    dispatch: np.ndarray
    utilization: np.ndarray

    @property
    def latency_s(self) -> np.ndarray:
        return self.cycles / self._f

    _f: float = 1.0


def _whole(x: np.ndarray) -> np.ndarray:
    """``x`` rounded where it is a whole number up to float error (rates derived by division)."""
    r = np.round(x)
    return np.where(np.abs(x - r) <= 1e-9 * np.abs(x), r, x)


def engine_cycles(hw: AcceleratorSpec, m, k, n, macs_per_cycle, fold: bool = False):
    """(compute, fill_drain, preload) cycles of GEMMs ``(m x k) @ (k x n)`` on one core's array.

    ``macs_per_cycle`` is the whole-array rate at each GEMM's effective precision (array), i.e.
    ``matrix.array_macs_per_cycle(p)``; the lanes per PE are ``macs_per_cycle / (rows * cols)``.
    ``fold`` (output-stationary only): the folded mapping, where the ``rows * cols`` PEs hold
    ``rows * cols`` outputs of one row of m at a time (``tiles = m * ceil(n / (rows * cols))``);
    see ``gemm_mapping``. The formulas of ``matrix.cycle_model`` are in the module docstring.
    """
    mx = hw.core.matrix
    R, C = mx.rows, mx.cols
    m = np.asarray(m, dtype=np.float64)
    k = np.asarray(k, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    lanes = np.asarray(macs_per_cycle, dtype=np.float64) / (R * C)
    if mx.cycle_model == "scalesim":
        lanes = np.round(lanes)  # whole by validation; removes the error of the division
    if mx.dataflow == "os":
        tiles = m * np.ceil(n / (R * C)) if fold else np.ceil(m / R) * np.ceil(n / C)
        compute = tiles * np.ceil(k / lanes)
        preload = np.zeros_like(compute)
    else:
        tiles = np.ceil(k / _whole(R * lanes)) * np.ceil(n / C)
        compute = tiles * m
        per_gemm = mx.weight_preload_overlap and mx.cycle_model == "hwsim"
        preload = np.where(tiles > 0, R * (1.0 if per_gemm else tiles), 0.0)
    if mx.cycle_model == "scalesim":
        fill = np.where(tiles > 0, (R + C - 2) * tiles - 1.0, 0.0)
    else:
        fill = np.where(tiles > 0, (R + C) * (1.0 if mx.fill_drain_overlap else tiles), 0.0)
    return compute, fill, preload


def gemm_mapping(hw: AcceleratorSpec, m, k, n, macs_per_cycle, act_bytes, w_onchip_bytes, w_bytes):
    """Engine cycles of the better of the array's mappings, and the weight re-reads it costs.

    Output-stationary arrays put m on the rows and n on the columns. When m is small (a GEMV of
    one hypothesis, or a few) most rows idle; with ``matrix.fold_outputs`` the array may instead
    hold ``rows * cols`` outputs of one row of m at a time. Each PE then needs its own weight
    every cycle, and the weights are read once per row of m (``(m - 1) * w_bytes`` more
    scratchpad traffic). Per GEMM, the mapping whose ``max(engine, scratchpad)`` time is smaller
    is used.

    Args:
        act_bytes: activation bytes at the scratchpad; w_onchip_bytes: weight bytes read from the
            scratchpad by the plain mapping (resident weights); w_bytes: the weight's bytes.

    Returns:
        (compute, fill_drain, preload, reread_bytes, folded): cycles, extra scratchpad bytes, and
        a boolean array of the GEMMs that use the folded mapping.
    """
    compute, fill, preload = engine_cycles(hw, m, k, n, macs_per_cycle)
    reread = np.zeros_like(compute)
    folded = np.zeros(compute.shape, dtype=bool)
    mx = hw.core.matrix
    if mx.dataflow != "os" or not mx.fold_outputs:
        return compute, fill, preload, reread, folded
    f, bw = hw.frequency_hz, hw.core.scratchpad_bw_bytes_per_s
    c2, f2, p2 = engine_cycles(hw, m, k, n, macs_per_cycle, fold=True)
    reread2 = (np.asarray(m, dtype=np.float64) - 1.0) * w_bytes
    base = (act_bytes + w_onchip_bytes) / bw
    plain_s = np.maximum((compute + fill + preload) / f, base)
    fold_s = np.maximum((c2 + f2 + p2) / f, base + reread2 / bw)
    folded = fold_s < plain_s
    return (np.where(folded, c2, compute), np.where(folded, f2, fill), np.where(folded, p2, preload),
            np.where(folded, reread2, 0.0), folded)


def _cpu_table(hw: AcceleratorSpec, field: str) -> np.ndarray:
    """``matrix.cpu[p].<field>`` per precision code (NaN where absent or None)."""
    return precision_table({p: getattr(c, field) for p, c in (hw.core.matrix.cpu or {}).items()})


def cpu_gemm_cycles(hw: AcceleratorSpec, m, k, n, prec, w_bytes, s_per_w_byte):
    """(compute, call, weight) cycles of GEMMs under ``cycle_model: cpu`` (module docstring).

    Args:
        m, k, n: shapes (arrays of equal shape); prec: effective precision codes
            (``hwsim.precision.PREC_CODE``), each a key of ``matrix.cpu``.
        w_bytes: each GEMM's weight bytes; s_per_w_byte: seconds per weight byte of the first
            pass (1 / bandwidth of the level it is stored in, mixed by bytes); the other passes
            read where ``reread`` says (module docstring).
    """
    mx = hw.core.matrix
    prec = np.asarray(prec, dtype=np.int64)
    m = np.asarray(m, dtype=np.float64)
    k = np.asarray(k, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    gran = _cpu_table(hw, "n_granule")[prec]
    mt = _cpu_table(hw, "m_tile")[prec]
    rate = precision_table(mx.macs_per_pe_per_cycle)[prec]
    gv_rate = _cpu_table(hw, "gemv_macs_per_cycle")[prec]
    gv_pass = _cpu_table(hw, "gemv_weight_passes")[prec]
    gemv = m == 1
    n_g = np.ceil(n / gran) * gran
    compute = m * k * n_g / np.where(gemv & ~np.isnan(gv_rate), gv_rate, rate) \
        + m * n * _cpu_table(hw, "out_cycles_per_elem")[prec]
    tiles = np.where(mt > 0, np.ceil(m / np.where(mt > 0, mt, 1.0)), 1.0)
    passes = np.where(gemv & ~np.isnan(gv_pass), gv_pass, tiles * _cpu_table(hw, "weight_passes")[prec])
    with np.errstate(divide="ignore", invalid="ignore"):
        pad = np.where(n > 0, n_g / n, 1.0)
    s_home = np.asarray(s_per_w_byte, dtype=np.float64)
    near = precision_table({p: float(c.reread == "near") for p, c in (hw.core.matrix.cpu or {}).items()})[prec] > 0
    s_again = np.where(near, np.minimum(s_home, 1.0 / hw.core.scratchpad_bw_bytes_per_s), s_home)
    per_byte = np.minimum(passes, 1.0) * s_home + np.maximum(passes - 1.0, 0.0) * s_again
    weight = np.asarray(w_bytes, dtype=np.float64) * pad * per_byte * hw.frequency_hz
    call = _cpu_table(hw, "call_cycles")[prec] + np.zeros_like(compute)
    zero = m * k * n == 0
    return (np.where(zero, 0.0, compute), np.where(zero, 0.0, call), np.where(zero, 0.0, weight))


def gemm_engine(hw: AcceleratorSpec, m, k, n, prec, act_bytes, w_onchip_bytes, w_bytes, s_per_w_byte):
    """Engine cycles of GEMMs as ``matrix.cycle_model`` times them: the one entry point of the
    simulator (``hwsim.cost``) and of ``cost_gemm``.

    Args:
        prec: effective precision codes (``PREC_CODE``); act_bytes, w_onchip_bytes, w_bytes: as
            ``gemm_mapping``; s_per_w_byte: seconds per weight byte where it is stored (read by
            ``cycle_model: cpu`` only; None is fine for the array models).

    Returns:
        (compute, fill_drain, preload, reread_bytes, folded), see ``gemm_mapping``; under
        ``cycle_model: cpu`` fill_drain is the call and preload the passes over the weight.
    """
    mx = hw.core.matrix
    if mx.cycle_model == "cpu":
        compute, call, weight = cpu_gemm_cycles(hw, m, k, n, prec, w_bytes, s_per_w_byte)
        return compute, call, weight, np.zeros_like(compute), np.zeros(compute.shape, dtype=bool)
    mpc = precision_table({p: mx.array_macs_per_cycle(p) for p in mx.macs_per_pe_per_cycle})[
        np.asarray(prec, dtype=np.int64)]
    return gemm_mapping(hw, m, k, n, mpc, act_bytes, w_onchip_bytes, w_bytes)


def cost_gemm(hw: AcceleratorSpec, m, k, n, precision: str = "fp16", *, in_bits: float | None = None,
              w_bits: float | None = None, out_bits: float | None = None,
              weight_resident: bool = False) -> GemmCost:
    """Cycles of GEMMs ``(m x k) @ (k x n)`` at ``precision`` on one core (vectorized over arrays).

    Args:
        hw: accelerator spec.
        m, k, n: scalars or arrays of equal shape.
        precision: requested precision (the engine falls back if it does not support it).
        in_bits, w_bits, out_bits: storage widths (default: the requested precision's bits).
        weight_resident: weights read from the scratchpad instead of streamed from DRAM.

    Returns:
        A GemmCost; ``.latency_s`` in seconds.
    """
    if precision not in BITS:
        raise ConfigError(f"unknown precision {precision!r}; known: {', '.join(BITS)}")
    eff = hw.engine_precision(precision)
    mpc = hw.core.matrix.array_macs_per_cycle(eff)
    code = np.full(np.shape(m), PREC_CODE[eff], dtype=np.int64)
    bits = BITS[precision]
    in_bits = bits if in_bits is None else in_bits
    w_bits = bits if w_bits is None else w_bits
    out_bits = bits if out_bits is None else out_bits
    m = np.asarray(m, dtype=np.float64)
    k = np.asarray(k, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    f = hw.frequency_hz
    act_bytes = (m * k * in_bits + m * n * out_bits) / 8.0
    w_bytes = k * n * w_bits / 8.0
    w_onchip = w_bytes if weight_resident else np.zeros_like(w_bytes)
    s_per_byte = 1.0 / (hw.core.scratchpad_bw_bytes_per_s if weight_resident else hw.dram_bw_bytes_per_s)
    compute, fill, preload, reread, _ = gemm_engine(hw, m, k, n, code, act_bytes, w_onchip, w_bytes, s_per_byte)
    sram_s = (act_bytes + w_onchip + reread) / hw.core.scratchpad_bw_bytes_per_s
    dram_s = np.where((w_bytes > 0) & (not weight_resident),
                      hw.dram_latency_s + w_bytes / hw.dram_bw_bytes_per_s, 0.0) + np.zeros_like(sram_s)
    engine = compute + fill + preload
    dispatch = np.full_like(engine, hw.core.dispatch_overhead_cycles)
    cycles = np.maximum(np.maximum(engine, sram_s * f), dram_s * f) + dispatch
    with np.errstate(divide="ignore", invalid="ignore"):
        util = np.where(engine > 0, m * k * n / (engine * mpc), 0.0)
    return GemmCost(cycles, compute, fill, preload, sram_s * f, dram_s * f, dispatch, util, _f=f)
