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

``cost_gemm`` is the public single-GEMM estimate, vectorized over arrays of shapes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.quant.policy import BITS
from models.yamlio import ConfigError

from hwsim.spec import AcceleratorSpec


@dataclass(frozen=True)
class GemmCost:
    """Cycles of GEMMs (arrays, or 0-d arrays for scalar inputs), at the hw clock.

    Attributes:
        cycles: total = max(engine, sram, dram) + dispatch, where engine = compute + fill_drain
            + preload.
        compute, fill_drain, preload: engine cycles (see the module docstring).
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
    compute, fill, preload, reread, _ = gemm_mapping(hw, m, k, n, mpc, act_bytes, w_onchip, w_bytes)
    sram_s = (act_bytes + w_onchip + reread) / hw.core.scratchpad_bw_bytes_per_s
    dram_s = np.where((w_bytes > 0) & (not weight_resident),
                      hw.dram_latency_s + w_bytes / hw.dram_bw_bytes_per_s, 0.0) + np.zeros_like(sram_s)
    engine = compute + fill + preload
    dispatch = np.full_like(engine, hw.core.dispatch_overhead_cycles)
    cycles = np.maximum(np.maximum(engine, sram_s * f), dram_s * f) + dispatch
    with np.errstate(divide="ignore", invalid="ignore"):
        util = np.where(engine > 0, m * k * n / (engine * mpc), 0.0)
    return GemmCost(cycles, compute, fill, preload, sram_s * f, dram_s * f, dispatch, util, _f=f)
