"""List scheduling of a costed op graph onto cores and units, and phase attribution of time.

Policy (what a static compiler schedule of this program looks like):

- Ops are visited in id order (a topological order) and placed as early as their inputs and
  their unit allow: no op is delayed to make room for a later one (greedy list scheduling).
- Each op has a range of cores (``hwsim.plan``: its work group's cores; all cores for floating
  ops). A split op (a GEMM divided over its group's cores) occupies that unit on every core of
  the range at once and leaves its output on the first core; any other op runs on the core of
  the range where it can start first (ties: the core of its first producer, then the lowest).
  Units of one core run concurrently; one unit runs one op at a time.
- An input made on another core arrives ``xfer`` later (its bytes over the inter-core link plus
  the link latency); a split op's own broadcast and gather are part of its latency.
- DRAM is one channel shared by all cores. An op's DRAM bytes are transfers that occupy the
  channel for ``bytes / bandwidth`` and fill the channel's idle time from their release on
  (a transfer may be served in several idle slices: the bandwidth goes to whoever is waiting);
  data is usable ``dram_latency_s`` after its last byte. A demand transfer is released when its
  op starts; a prefetch transfer (``hwsim.plan``) when the segment before the op's segment
  started. An op ends at ``max(start + latency, last byte + DRAM latency + dispatch)``.

Known limits: the greedy order can leave a unit idle that a look-ahead schedule would fill; the
ring, the shared SRAM and the scratchpad ports are not arbitrated between concurrent ops; a
greedy list schedule is not monotone in general (Graham's anomalies), so a faster resource can in
rare cases lengthen the makespan slightly (``tests/hwsim/test_monotone.py`` measures by how much
over fine grids).

The inner loop is Numba-compiled.

Phase attribution (``phase_latency``): the makespan is cut at every op start and end. Each slice
during which ops run is divided among the phases of the running ops in proportion to how many of
each phase's ops run in it; a slice during which nothing runs (waiting for a transfer) goes to the
phase of the op that starts at its end. The phase latencies therefore sum exactly to the makespan.
"""

from __future__ import annotations

import numpy as np
from numba import njit

N_UNITS = 4


@njit(cache=True, nogil=True)
def _dram_fill(bs, be, cnt, release, dur):
    """Serve ``dur`` seconds of transfer in the channel's idle time from ``release`` on.

    ``bs[:cnt]``, ``be[:cnt]``: sorted, disjoint busy intervals (updated in place).
    Returns (time of the last byte, new count).
    """
    if dur <= 0.0:
        return release, cnt
    lo_i, hi_i = 0, cnt           # first interval with end > release (binary search)
    while lo_i < hi_i:
        mid = (lo_i + hi_i) // 2
        if be[mid] > release:
            hi_i = mid
        else:
            lo_i = mid + 1
    j = lo_i
    t = release
    rem = dur
    a = -1.0
    first_j = j
    finish = release
    while True:
        if j < cnt and bs[j] <= t:
            if be[j] > t:
                t = be[j]
            j += 1
            continue
        gap_end = bs[j] if j < cnt else np.inf
        if a < 0.0:
            a = t
            first_j = j
        avail = gap_end - t
        if avail >= rem:
            finish = t + rem
            break
        rem -= avail
        t = gap_end
    # [a, finish] is now busy: merge it with the intervals it absorbed or touches.
    lo = first_j
    hi = j
    b = finish
    if lo > 0 and be[lo - 1] >= a:
        lo -= 1
        a = bs[lo]
    if hi < cnt and bs[hi] <= b:
        b = be[hi]
        hi += 1
    removed = hi - lo
    new_cnt = cnt - removed + 1
    if removed == 0:
        for q in range(cnt, lo, -1):
            bs[q] = bs[q - 1]
            be[q] = be[q - 1]
    elif removed > 1:
        for q in range(hi, cnt):
            bs[q - removed + 1] = bs[q]
            be[q - removed + 1] = be[q]
    bs[lo] = a
    be[lo] = b
    return finish, new_cnt


@njit(cache=True, nogil=True)
def _schedule(unit, lat, c0, nc, split, xfer, dram_pre, dram_dem, dram_lat, disp, seg, ptr, deps,
              ncores, nseg):
    n = len(lat)
    free = np.zeros((ncores, N_UNITS))
    start = np.zeros(n)
    end = np.zeros(n)
    core = np.zeros(n, dtype=np.int64)
    waited = np.zeros(n, dtype=np.bool_)
    seg_start = np.full(nseg, np.inf)
    bs = np.zeros(2 * n + 2)
    be = np.zeros(2 * n + 2)
    cnt = 0
    for i in range(n):
        u = unit[i]
        a = c0[i]
        w = nc[i]
        if split[i]:
            t = 0.0
            for c in range(a, a + w):
                if free[c, u] > t:
                    t = free[c, u]
            for j in range(ptr[i], ptr[i + 1]):
                p = deps[j]
                r = end[p]
                if core[p] < a or core[p] >= a + w:
                    r += xfer[p]
                if r > t:
                    t = r
            best_t = t
            best_c = a
        else:
            pref = a
            if ptr[i + 1] > ptr[i]:
                q = core[deps[ptr[i]]]
                if q >= a and q < a + w:
                    pref = q
            best_t = np.inf
            best_c = a
            for cc in range(w):
                c = a + (pref - a + cc) % w
                t = free[c, u]
                for j in range(ptr[i], ptr[i + 1]):
                    p = deps[j]
                    r = end[p]
                    if core[p] != c:
                        r += xfer[p]
                    if r > t:
                        t = r
                if t < best_t:
                    best_t = t
                    best_c = c
        s = seg[i]
        if seg_start[s] == np.inf:
            seg_start[s] = best_t
        fin = best_t + lat[i]
        if dram_pre[i] > 0.0:
            rel = best_t
            if s > 0 and seg_start[s - 1] < rel:
                rel = seg_start[s - 1]
            last, cnt = _dram_fill(bs, be, cnt, rel, dram_pre[i])
            if last + dram_lat + disp[i] > fin:
                fin = last + dram_lat + disp[i]
        if dram_dem[i] > 0.0:
            last, cnt = _dram_fill(bs, be, cnt, best_t, dram_dem[i])
            if last + dram_lat + disp[i] > fin:
                fin = last + dram_lat + disp[i]
        waited[i] = fin > best_t + lat[i]
        start[i] = best_t
        end[i] = fin
        core[i] = best_c
        if split[i]:
            for c in range(a, a + w):
                free[c, u] = fin
        else:
            free[best_c, u] = fin
    return start, end, core, waited, bs[:cnt].copy(), be[:cnt].copy()


def list_schedule(unit: np.ndarray, latency_s: np.ndarray, core0: np.ndarray, ncores: np.ndarray,
                  split: np.ndarray, xfer_s: np.ndarray, dram_pre_s: np.ndarray, dram_demand_s: np.ndarray,
                  dram_latency_s: float, dispatch_s: np.ndarray, seg: np.ndarray, ptr: np.ndarray,
                  deps: np.ndarray, cores: int):
    """Schedule ops (see the module docstring).

    Args:
        unit: unit index per op (0 matrix, 1 sfu, 2 vector, 3 select).
        latency_s: latency on its core(s), DRAM excluded.
        core0, ncores: the op's core range ``core0 .. core0 + ncores - 1``.
        split: the op occupies every core of its range (a split GEMM).
        xfer_s: time to ship the op's output to another core.
        dram_pre_s, dram_demand_s: channel time of the op's prefetched and demand DRAM bytes.
        dram_latency_s: DRAM latency after a transfer's last byte.
        dispatch_s: the op's dispatch overhead (part of ``latency_s``).
        seg: segment id per op (``hwsim.plan.segments``; non-decreasing).
        ptr, deps: producers in CSR form (``deps[ptr[i]:ptr[i+1]]``).
        cores: number of cores.

    Returns:
        (start_s, end_s, core, waited_for_dram, dram_busy_start_s, dram_busy_end_s) arrays: per
        op, then the DRAM channel's busy intervals (sorted, disjoint); a split op's core is its
        first core.
    """
    f64 = np.float64
    args = (np.ascontiguousarray(unit, dtype=np.int64), np.ascontiguousarray(latency_s, dtype=f64),
            np.ascontiguousarray(core0, dtype=np.int64), np.ascontiguousarray(ncores, dtype=np.int64),
            np.ascontiguousarray(split, dtype=np.bool_), np.ascontiguousarray(xfer_s, dtype=f64),
            np.ascontiguousarray(dram_pre_s, dtype=f64), np.ascontiguousarray(dram_demand_s, dtype=f64),
            float(dram_latency_s), np.ascontiguousarray(dispatch_s, dtype=f64),
            np.ascontiguousarray(seg, dtype=np.int64), np.ascontiguousarray(ptr, dtype=np.int64),
            np.ascontiguousarray(deps, dtype=np.int64), int(cores),
            int(seg.max()) + 1 if len(seg) else 1)
    return _schedule(*args)


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
    # Slice j lies before event j; the ops running in it are those of events 0..j-1. A phase's
    # share is sum_j span_j * running_p(j) / running(j); swapping the sums, event e adds
    # delta_e times the sum of span_j / running(j) over the slices after it.
    span = np.diff(np.concatenate([[0.0], times]))
    running = np.concatenate([[0.0], np.cumsum(delta)[:-1]])
    busy = running > 0.5
    w = np.where(busy, span / np.where(busy, running, 1.0), 0.0)
    after = np.concatenate([np.cumsum(w[::-1])[::-1][1:], [0.0]])
    out += np.bincount(ph, weights=delta * after, minlength=n_phases)
    # Idle slices: to the phase of the next op to start (the event closing the slice is a start
    # when nothing runs before it; at t=0 the first slice has zero length).
    idle = ~busy & (span > 0)
    if idle.any():
        start_pos = np.flatnonzero(delta > 0)
        nxt = start_pos[np.searchsorted(start_pos, np.flatnonzero(idle))]
        np.add.at(out, ph[nxt], span[idle])
    return out
