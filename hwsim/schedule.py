"""List scheduling of a costed op graph onto cores and units, and phase attribution of time.

Scheduling: ops are visited in id order (a topological order). Each op runs on one unit (matrix,
sfu, vector or select) of one core. For every core ``c`` its earliest start is
``max(free[c, unit], max_p(end[p] + xfer[p] if p ran on another core))`` over its producers ``p``
(``xfer`` = the producer's output bytes over the inter-core link, plus link latency); the op goes
to the core with the earliest start (ties: the core of its first producer, then the lowest id).
A GEMM with a finite split latency may instead occupy the matrix units of all cores at once
(start = max(ready, all matrix units free)); it is split when that finishes earlier. Split ops
get core -1. Units of one core run concurrently; one unit runs one op at a time.

DRAM is one channel shared by all cores: an op's DRAM transfer (``dram_s``, its bytes at the full
DRAM bandwidth) starts at ``d0 = max(start, dram_free)`` and holds the channel until
``d0 + dram_s``; the op ends at ``max(start + latency, d0 + dram_s + dispatch)``. Concurrent
streaming ops therefore share the bandwidth instead of each getting all of it (first come, first
served, in program order; prefetching ahead of ``start`` is not modelled). Scratchpads are per
core and the shared SRAM's bandwidth is not arbitrated.

The inner loop is Numba-compiled (``_schedule_numba``); ``_schedule_python`` is the plain
reference used in tests to check that both agree exactly.

Phase attribution (``phase_latency``): the makespan is cut at every op start and end. Each slice
during which ops run is divided among the phases of the running ops in proportion to how many of
each phase's ops run in it; a slice during which nothing runs (waiting for an inter-core
transfer) goes to the phase of the op that starts at its end. The phase latencies therefore sum
exactly to the makespan.
"""

from __future__ import annotations

import numpy as np
from numba import njit

N_UNITS = 4


def _schedule_python(unit, lat, split, xfer, dram, disp, ptr, deps, ncores):
    n = len(lat)
    dram_free = 0.0
    free = np.zeros((ncores, N_UNITS))
    start = np.zeros(n)
    end = np.zeros(n)
    core = np.zeros(n, dtype=np.int64)
    for i in range(n):
        u = unit[i]
        pref = core[deps[ptr[i]]] if ptr[i + 1] > ptr[i] else 0
        if pref < 0:
            pref = 0
        ready_local = 0.0
        for j in range(ptr[i], ptr[i + 1]):
            if end[deps[j]] > ready_local:
                ready_local = end[deps[j]]
        best_c = -1
        best_t = np.inf
        for cc in range(ncores):
            c = (pref + cc) % ncores
            t = free[c, u]
            for j in range(ptr[i], ptr[i + 1]):
                p = deps[j]
                r = end[p]
                if core[p] >= 0 and core[p] != c:
                    r += xfer[p]
                if r > t:
                    t = r
            if t < best_t:
                best_t = t
                best_c = c
        best_end = best_t + lat[i]
        if np.isfinite(split[i]):
            t = ready_local
            for c in range(ncores):
                if free[c, u] > t:
                    t = free[c, u]
            if t + split[i] < best_end:
                start[i] = t
                end[i] = t + split[i]
                if dram[i] > 0:
                    d0 = max(t, dram_free)
                    dram_free = d0 + dram[i]
                    end[i] = max(end[i], dram_free + disp[i])
                core[i] = -1
                for c in range(ncores):
                    free[c, u] = end[i]
                continue
        if dram[i] > 0:
            d0 = max(best_t, dram_free)
            dram_free = d0 + dram[i]
            best_end = max(best_end, dram_free + disp[i])
        start[i] = best_t
        end[i] = best_end
        core[i] = best_c
        free[best_c, u] = best_end
    return start, end, core


_schedule_numba = njit(cache=True, nogil=True)(_schedule_python)


def list_schedule(unit: np.ndarray, latency_s: np.ndarray, split_s: np.ndarray, xfer_s: np.ndarray,
                  dram_s: np.ndarray, dispatch_s: np.ndarray, ptr: np.ndarray, deps: np.ndarray,
                  cores: int, use_numba: bool = True):
    """Schedule ops (see the module docstring).

    Args:
        unit: unit index per op (0 matrix, 1 sfu, 2 vector, 3 select).
        latency_s: latency on one core; split_s: latency split over all cores (inf = no split).
        xfer_s: time to ship the op's output to another core.
        dram_s: the op's DRAM transfer time at full bandwidth (0 = no DRAM traffic).
        dispatch_s: the op's dispatch overhead (part of ``latency_s``).
        ptr, deps: producers in CSR form (``deps[ptr[i]:ptr[i+1]]``).
        cores: number of cores.

    Returns:
        (start_s, end_s, core) arrays; core -1 = split over all cores.
    """
    args = (np.ascontiguousarray(unit, dtype=np.int64), np.ascontiguousarray(latency_s, dtype=np.float64),
            np.ascontiguousarray(split_s, dtype=np.float64), np.ascontiguousarray(xfer_s, dtype=np.float64),
            np.ascontiguousarray(dram_s, dtype=np.float64), np.ascontiguousarray(dispatch_s, dtype=np.float64),
            np.ascontiguousarray(ptr, dtype=np.int64), np.ascontiguousarray(deps, dtype=np.int64), int(cores))
    return (_schedule_numba if use_numba else _schedule_python)(*args)


def phase_latency(start: np.ndarray, end: np.ndarray, phase: np.ndarray, n_phases: int) -> np.ndarray:
    """Seconds of the makespan attributed to each phase code (sums to ``end.max()``)."""
    n = len(start)
    out = np.zeros(n_phases)
    if n == 0:
        return out
    times = np.concatenate([start, end])
    delta = np.concatenate([np.ones(n), -np.ones(n)])
    ph = np.concatenate([phase, phase])
    order = np.lexsort((delta, times))   # at equal times, ends (-1) before starts (+1)
    times, delta, ph = times[order], delta[order], ph[order]
    onehot = np.zeros((2 * n, n_phases))
    onehot[np.arange(2 * n), ph] = delta
    running = np.cumsum(onehot, axis=0)   # ops of each phase running after each event
    span = np.diff(np.concatenate([[0.0], times]))  # slice before each event
    before = np.vstack([np.zeros((1, n_phases)), running[:-1]])
    total = before.sum(axis=1)
    busy = total > 0.5
    out += (span[busy, None] * before[busy] / total[busy, None]).sum(axis=0)
    # Idle slices: to the phase of the next op to start (the event closing the slice is a start
    # when nothing runs before it; at t=0 the first slice has zero length).
    idle = ~busy & (span > 0)
    if idle.any():
        # The closing event of an idle slice: the next start event at or after it.
        start_pos = np.flatnonzero(delta > 0)
        nxt = start_pos[np.searchsorted(start_pos, np.flatnonzero(idle))]
        np.add.at(out, ph[nxt], span[idle])
    return out
