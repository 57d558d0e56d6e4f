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
def _schedule(row, unit, lat, c0, nc, split, xfer, dram_pre, dram_dem, dram_lat, disp, seg, ptr, deps,
              ncores, nseg, n_busy):
    # Every per-op quantity is read through the op's row (``row[i]``): ops that cost the same
    # share one row (hwsim.simulate), so the inputs grow with distinct rows, not with ops.
    n = len(row)
    free = np.zeros((ncores, N_UNITS))
    start = np.zeros(n)
    end = np.zeros(n)
    core = np.zeros(n, dtype=np.int32)
    waited = np.zeros(n, dtype=np.bool_)
    seg_start = np.full(nseg, np.inf)
    bs = np.zeros(n_busy)
    be = np.zeros(n_busy)
    cnt = 0
    for i in range(n):
        r = row[i]
        u = unit[r]
        a = c0[r]
        w = nc[r]
        if split[r]:
            t = 0.0
            for c in range(a, a + w):
                if free[c, u] > t:
                    t = free[c, u]
            for j in range(ptr[i], ptr[i + 1]):
                p = deps[j]
                ready = end[p]
                if core[p] < a or core[p] >= a + w:
                    ready += xfer[row[p]]
                if ready > t:
                    t = ready
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
                    ready = end[p]
                    if core[p] != c:
                        ready += xfer[row[p]]
                    if ready > t:
                        t = ready
                if t < best_t:
                    best_t = t
                    best_c = c
        sg = seg[r]
        if seg_start[sg] == np.inf:
            seg_start[sg] = best_t
        fin = best_t + lat[r]
        if dram_pre[r] > 0.0:
            rel = best_t
            if sg > 0 and seg_start[sg - 1] < rel:
                rel = seg_start[sg - 1]
            last, cnt = _dram_fill(bs, be, cnt, rel, dram_pre[r])
            if last + dram_lat + disp[r] > fin:
                fin = last + dram_lat + disp[r]
        if dram_dem[r] > 0.0:
            last, cnt = _dram_fill(bs, be, cnt, best_t, dram_dem[r])
            if last + dram_lat + disp[r] > fin:
                fin = last + dram_lat + disp[r]
        waited[i] = fin > best_t + lat[r]
        start[i] = best_t
        end[i] = fin
        core[i] = best_c
        if split[r]:
            for c in range(a, a + w):
                free[c, u] = fin
        else:
            free[best_c, u] = fin
    return start, end, core, waited, bs[:cnt].copy(), be[:cnt].copy()


def schedule_rows(row: np.ndarray, unit: np.ndarray, latency_s: np.ndarray, core0: np.ndarray,
                  ncores: np.ndarray, split: np.ndarray, xfer_s: np.ndarray, dram_pre_s: np.ndarray,
                  dram_demand_s: np.ndarray, dram_latency_s: float, dispatch_s: np.ndarray,
                  seg: np.ndarray, ptr: np.ndarray, deps: np.ndarray, cores: int):
    """Schedule ops (see the module docstring) whose costs are given per row.

    Args:
        row: the row of every op (int32 or int64); every other per-op argument below is indexed
            by row, not by op.
        unit: unit index (0 matrix, 1 sfu, 2 vector, 3 select).
        latency_s: latency on its core(s), DRAM excluded.
        core0, ncores: the core range ``core0 .. core0 + ncores - 1``.
        split: the op occupies every core of its range (a split GEMM).
        xfer_s: time to ship the op's output to another core.
        dram_pre_s, dram_demand_s: channel time of the op's prefetched and demand DRAM bytes.
        dram_latency_s: DRAM latency after a transfer's last byte.
        dispatch_s: the op's dispatch overhead (part of ``latency_s``).
        seg: segment id (``hwsim.plan.segments``; non-decreasing in op order).
        ptr, deps: producers in CSR form (``deps[ptr[i]:ptr[i+1]]``), per op.
        cores: number of cores.

    Returns:
        (start_s, end_s, core, waited_for_dram, dram_busy_start_s, dram_busy_end_s) arrays: per
        op (core as int32), then the DRAM channel's busy intervals (sorted, disjoint); a split
        op's core is its first core.
    """
    f64 = np.float64
    row = np.ascontiguousarray(row)
    if row.dtype not in (np.int32, np.int64):
        row = row.astype(np.int64)
    deps = np.ascontiguousarray(deps)
    if deps.dtype not in (np.int32, np.int64):
        deps = deps.astype(np.int64)
    dram_pre_s = np.ascontiguousarray(dram_pre_s, dtype=f64)
    dram_demand_s = np.ascontiguousarray(dram_demand_s, dtype=f64)
    # Each transfer adds at most one busy interval (a gap-filling one merges): bound the list
    # by the ops that move DRAM bytes.
    moving = (dram_pre_s > 0).astype(np.int64) + (dram_demand_s > 0)
    n_busy = int(np.bincount(row, minlength=len(moving))[:len(moving)] @ moving) + 2 if len(row) else 2
    seg = np.ascontiguousarray(seg, dtype=np.int64)
    return _schedule(row, np.ascontiguousarray(unit, dtype=np.int64), np.ascontiguousarray(latency_s, dtype=f64),
                     np.ascontiguousarray(core0, dtype=np.int64), np.ascontiguousarray(ncores, dtype=np.int64),
                     np.ascontiguousarray(split, dtype=np.bool_), np.ascontiguousarray(xfer_s, dtype=f64),
                     dram_pre_s, dram_demand_s, float(dram_latency_s), np.ascontiguousarray(dispatch_s, dtype=f64),
                     seg, np.ascontiguousarray(ptr, dtype=np.int64), deps, int(cores),
                     int(seg.max()) + 1 if len(seg) else 1, n_busy)


def list_schedule(unit: np.ndarray, latency_s: np.ndarray, core0: np.ndarray, ncores: np.ndarray,
                  split: np.ndarray, xfer_s: np.ndarray, dram_pre_s: np.ndarray, dram_demand_s: np.ndarray,
                  dram_latency_s: float, dispatch_s: np.ndarray, seg: np.ndarray, ptr: np.ndarray,
                  deps: np.ndarray, cores: int):
    """``schedule_rows`` with one row per op (every argument per op)."""
    return schedule_rows(np.arange(len(latency_s), dtype=np.int64), unit, latency_s, core0, ncores, split,
                         xfer_s, dram_pre_s, dram_demand_s, dram_latency_s, dispatch_s, seg, ptr, deps, cores)


@njit(cache=True, nogil=True)
def remote_outputs(row, c0, nc, split, core, ptr, deps):
    """Per op, how many of its consumers run on another core (its output crosses the ring):
    a split consumer needs it on all its cores (remote unless made inside its range), any
    other consumer on its own core. ``c0``, ``nc``, ``split`` per row; the rest per op."""
    n = len(row)
    out = np.zeros(n, dtype=np.int32)
    for i in range(n):
        r = row[i]
        a = c0[r]
        w = nc[r]
        for j in range(ptr[i], ptr[i + 1]):
            p = deps[j]
            if split[r]:
                remote = core[p] < a or core[p] >= a + w
            else:
                remote = core[p] != core[i]
            if remote:
                out[p] += 1
    return out


@njit(cache=True, nogil=True)
def op_sums(row, start, end, waited, remote, phase, unit, cores, bound, out_bytes, n_phases, n_units,
            n_bounds, dram_bound):
    """One pass over the scheduled ops for the per-phase and per-unit totals (``phase``,
    ``unit``, ``cores``, ``bound``, ``out_bytes`` per row; the rest per op): busy seconds per
    phase, core-seconds per unit, ops per ``bound_by`` code (``dram_bound`` if the op waited for
    DRAM), and bytes of outputs sent to consumers on other cores per phase."""
    busy = np.zeros(n_phases)
    unit_s = np.zeros(n_units)
    bounds = np.zeros(n_bounds, dtype=np.int64)
    ring = np.zeros(n_phases)
    for i in range(len(row)):
        r = row[i]
        lat = end[i] - start[i]
        busy[phase[r]] += lat
        unit_s[unit[r]] += lat * cores[r]
        bounds[dram_bound if waited[i] else bound[r]] += 1
        if remote[i]:
            ring[phase[r]] += remote[i] * out_bytes[r]
    return busy, unit_s, bounds, ring


@njit(cache=True, nogil=True)
def _phase_latency(start, end, so, eo, phase, n_phases):
    # so, eo: the ops in order of start and of end time
    n = len(start)
    out = np.zeros(n_phases)
    if n == 0:
        return out
    running = np.zeros(n_phases)
    total = 0.0
    t = 0.0
    i = 0
    k = 0
    while k < n:
        # next event: an end at or before the next start goes first
        if i < n and start[so[i]] < end[eo[k]]:
            x = start[so[i]]
            is_start = True
        else:
            x = end[eo[k]]
            is_start = False
        span = x - t
        if span > 0.0:
            if total > 0.5:
                for p in range(n_phases):
                    if running[p] > 0.0:
                        out[p] += span * running[p] / total
            else:  # idle: to the phase of the next op to start
                out[phase[so[i]]] += span
            t = x
        if is_start:
            running[phase[so[i]]] += 1.0
            total += 1.0
            i += 1
        else:
            running[phase[eo[k]]] -= 1.0
            total -= 1.0
            k += 1
    return out


def phase_latency(start: np.ndarray, end: np.ndarray, phase: np.ndarray, n_phases: int) -> np.ndarray:
    """Seconds of the makespan attributed to each phase code (sums to ``end.max()``)."""
    start = np.ascontiguousarray(start, dtype=np.float64)
    end = np.ascontiguousarray(end, dtype=np.float64)
    # numpy's stable sort (timsort for floats) is fast on the nearly sorted times of a schedule
    return _phase_latency(start, end, np.argsort(start, kind="stable"), np.argsort(end, kind="stable"),
                          np.ascontiguousarray(phase), int(n_phases))
