"""Energy per component: the dynamic energy of every op, and static power over the latency.

Components (``COMPONENTS``), each from the spec's ``energy`` section (``hwsim.spec.EnergySpec``):

- ``mac``: the op's MACs x ``mac_j`` at the precision the engine runs (a precision without an
  entry is an error naming ``energy.mac_j.<precision>``, never 0 J);
- ``scratchpad``: bytes read or written at the scratchpads (activations, on-chip weight reads,
  folded-mapping re-reads, and every DRAM byte, which is written into a scratchpad);
- ``shared``: weight bytes read from the shared SRAM;
- ``dram``: DRAM bytes (loads, prefetches, streams, activation spills);
- ``inter_core``: bytes over the ring (remote weight reads, split-GEMM broadcasts and gathers,
  outputs sent to a consumer on another core);
- ``sfu``, ``vector``: elements processed on those units (select/move ops count on the unit
  that runs them; a dedicated select unit has no energy figure and counts 0, said here);
- ``static``: ``static_w`` x latency (not per op).

``sum(per-op energy_j) + static == summary energy_j`` (tested).
"""

from __future__ import annotations

import numpy as np

from hwsim.cost import CostError
from hwsim.spec import AcceleratorSpec

COMPONENTS = ("mac", "scratchpad", "shared", "dram", "inter_core", "sfu", "vector", "static")


def op_energy(hw: AcceleratorSpec, *, macs: np.ndarray, precision: np.ndarray, is_gemm: np.ndarray,
              sram_bytes: np.ndarray, dram_bytes: np.ndarray, shared_bytes: np.ndarray,
              ring_bytes: np.ndarray, unit: np.ndarray, work: np.ndarray) -> dict[str, np.ndarray] | None:
    """Dynamic energy of every op per component (J), or None if the spec has no energy section.

    Args:
        precision: effective precision name per op (object array). unit: unit name per op.
        ring_bytes: all bytes the op moves over the ring (including its output's transfers).
    """
    e = hw.energy
    if e is None:
        return None
    used = sorted(set(precision[is_gemm & (macs > 0)]))
    missing = [p for p in used if p not in e.mac_j]
    if missing:
        counts = {p: int(((precision == p) & is_gemm).sum()) for p in missing}
        raise CostError(f"{hw.name}: energy.mac_j has no entry for "
                        + ", ".join(f"{p} (used by {c} GEMMs)" for p, c in counts.items())
                        + f"; given: {sorted(e.mac_j)}")
    mac_j = np.zeros(len(macs))
    for p in used:
        mac_j[precision == p] = e.mac_j[p]
    return {
        "mac": np.where(is_gemm, macs * mac_j, 0.0),
        "scratchpad": (sram_bytes + dram_bytes) * e.scratchpad_byte_j,
        "shared": shared_bytes * e.shared_byte_j,
        "dram": dram_bytes * e.dram_byte_j,
        "inter_core": ring_bytes * e.inter_core_byte_j,
        "sfu": np.where(unit == "sfu", work * e.sfu_elem_j, 0.0),
        "vector": np.where(unit == "vector", work * e.vector_elem_j, 0.0),
    }


def breakdown(hw: AcceleratorSpec, per_op: dict[str, np.ndarray], latency_s: float) -> dict[str, float]:
    """Joules per component of ``COMPONENTS`` (static from the latency)."""
    out = {c: float(per_op[c].sum()) for c in COMPONENTS if c != "static"}
    out["static"] = float(hw.energy.static_w * latency_s)
    return out
