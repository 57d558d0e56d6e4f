"""List scheduling of a costed op graph onto cores and units, and phase attribution of time.

Policy (what a static compiler schedule of this program looks like):

- Ops are visited in id order (a topological order) and placed as early as their inputs and
  their unit allow: no op is delayed to make room for a later one (greedy list scheduling).
- Each op has a range of cores (``hwsim.plan``: its work group's cores; all cores for floating
  ops). A split op (a GEMM divided over its group's cores) occupies that unit on every core of
  the range at once and leaves its output on the first core; any other op runs on the core of
  the range where it can start first (ties: the core of its first producer, then the lowest).
  Units of one core run concurrently (unless ``core.concurrent_units`` is false: then one op at a
  time per core); one unit runs one op at a time.
- An input made on another core arrives ``xfer`` later (its bytes over the inter-core link plus
  the link latency); a split op's own broadcast and gather are part of its latency.
- DRAM is one channel shared by all cores. An op's DRAM bytes are transfers that occupy the
  channel for ``bytes / bandwidth`` and fill the channel's idle time from their release on
  (a transfer may be served in several idle slices: the bandwidth goes to whoever is waiting);
  data is usable ``dram_latency_s`` after its last byte. A demand transfer is released when its
  op starts; a prefetch transfer (``hwsim.plan``) when the segment before the op's segment
  started. An op ends at ``max(start + latency, last byte + DRAM latency + dispatch)``.
- Streaming (``hwsim.program``): an op starts no earlier than its release, the arrival of its
  chunk's audio; ops are released in id order.

Known limits: the greedy order can leave a unit idle that a look-ahead schedule would fill; the
ring, the shared SRAM and the scratchpad ports are not arbitrated between concurrent ops; a
greedy list schedule is not monotone in general (Graham's anomalies), so a faster resource can in
rare cases lengthen the makespan slightly (``tests/hwsim/test_monotone.py`` measures by how much
over fine grids).

The inner loop is Numba-compiled, and reads every op's costs through its *row* (``hwsim.program``:
ops of one template and work group cost the same), so its inputs grow with distinct rows, not with
ops; the totals (busy time per phase and unit, ring bytes) are summed as it goes.

Phase attribution (``phase_latency``): the makespan is cut at every op start and end. Each slice
during which ops run is divided among the phases of the running ops in proportion to how many of
each phase's ops run in it; a slice during which nothing runs (waiting for a transfer) goes to the
phase of the op that starts at its end (streaming: unless that op starts at its release, the
chip waiting for audio, which is counted apart). The phase latencies and that wait therefore
sum exactly to the makespan.
Up to ``SORT_CHUNK`` ops the events are sorted whole; above, start times are sorted in chunks and
merged on the fly, ends come from a heap of the running ops (one int32 per op of extra memory:
an hour of audio); both give the same result (``tests/hwsim/test_long.py``).
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


@njit(cache=True, nogil=True, inline="always")
def _remote(i, p, r, c0, nc, split, core):
    if split[r]:
        return core[p] < c0[r] or core[p] >= c0[r] + nc[r]
    return core[p] != core[i]


@njit(cache=True, nogil=True)
def _schedule(base_row, sp_ops, sp_rows, unit, lane, lat, c0, nc, split, xfer, dram_pre, dram_dem, dram_lat,
              disp, seg, ptr, deps, ncores, nseg, n_busy, phase, width, out_bytes, n_phases, rel_op, rel_t):
    # Every per-op quantity is read through the op's row: ``base_row[i]``, or ``sp_rows[k]`` for
    # the special ops ``sp_ops`` (sorted). A special op has its base row's template and group,
    # so what a consumer reads of its producer (xfer) is the same through either row.
    n = len(base_row)
    free = np.zeros((ncores, N_UNITS))
    start = np.zeros(n)
    end = np.zeros(n)
    core = np.zeros(n, dtype=np.int16)
    waited = np.zeros(len(lat), dtype=np.int64)
    seg_start = np.full(nseg, np.inf)
    bs = np.zeros(n_busy)
    be = np.zeros(n_busy)
    busy = np.zeros(n_phases)
    unit_s = np.zeros(N_UNITS)
    ring = np.zeros(n_phases)
    cnt = 0
    k = 0
    kr = 0
    release = 0.0
    for i in range(n):
        r = base_row[i]
        if k < len(sp_ops) and sp_ops[k] == i:
            r = sp_rows[k]
            k += 1
        while kr < len(rel_op) and rel_op[kr] <= i:
            release = rel_t[kr]
            kr += 1
        u = unit[r]
        ln = lane[r]
        a = c0[r]
        w = nc[r]
        if split[r]:
            t = release
            for c in range(a, a + w):
                if free[c, ln] > t:
                    t = free[c, ln]
            for j in range(ptr[i], ptr[i + 1]):
                p = deps[j]
                ready = end[p]
                if core[p] < a or core[p] >= a + w:
                    ready += xfer[base_row[p]]
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
                t = free[c, ln]
                if release > t:
                    t = release
                for j in range(ptr[i], ptr[i + 1]):
                    p = deps[j]
                    ready = end[p]
                    if core[p] != c:
                        ready += xfer[base_row[p]]
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
        if fin > best_t + lat[r]:
            waited[r] += 1
        start[i] = best_t
        end[i] = fin
        core[i] = best_c
        if split[r]:
            for c in range(a, a + w):
                free[c, ln] = fin
        else:
            free[best_c, ln] = fin
        # totals: busy time per phase and unit, producers' outputs that cross the ring
        busy[phase[r]] += fin - best_t
        unit_s[u] += (fin - best_t) * width[r]
        for j in range(ptr[i], ptr[i + 1]):
            p = deps[j]
            if _remote(i, p, r, c0, nc, split, core):
                ring[phase[base_row[p]]] += out_bytes[base_row[p]]
    return start, end, core, waited, bs[:cnt].copy(), be[:cnt].copy(), busy, unit_s, ring


def schedule_rows(base_row: np.ndarray, special_ops: np.ndarray, special_rows: np.ndarray, unit: np.ndarray,
                  latency_s: np.ndarray, core0: np.ndarray, ncores: np.ndarray, split: np.ndarray,
                  xfer_s: np.ndarray, dram_pre_s: np.ndarray, dram_demand_s: np.ndarray,
                  dram_latency_s: float, dispatch_s: np.ndarray, seg: np.ndarray, ptr: np.ndarray,
                  deps: np.ndarray, cores: int, row_count: np.ndarray, phase: np.ndarray, width: np.ndarray,
                  out_bytes: np.ndarray, n_phases: int, release_op: np.ndarray | None = None,
                  release_s: np.ndarray | None = None, lane: np.ndarray | None = None):
    """Schedule ops (see the module docstring) whose costs are given per row, and total them.

    Args:
        base_row: the row of every op; ``special_ops`` (sorted op ids) use ``special_rows``
            instead (rows of the same template and work group: ``hwsim.program``). Every other
            per-op argument below is indexed by row.
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
        cores: number of cores. row_count: ops per row (to bound the DRAM interval list).
        phase, width, out_bytes: per row, its phase code (< ``n_phases``), cores it occupies
            and output bytes, for the totals.
        release_op, release_s: ops from ``release_op[k]`` on start no earlier than
            ``release_s[k]`` (sorted; streaming chunks); default none.
        lane: the timeline of its core the op occupies (ops of one lane run one at a time);
            default ``unit`` (units run concurrently). All zeros: a core that runs one op at a
            time whatever its unit (``core.concurrent_units: false``, a CPU thread).

    Returns:
        (start_s, end_s, core (int16), ops per row that waited for DRAM, dram_busy_start_s,
        dram_busy_end_s, busy_s per phase, core-seconds per unit, ring_bytes per phase): per op,
        per row, the DRAM channel's busy intervals (sorted, disjoint), then the totals: busy
        seconds of the ops of each phase, seconds x cores each unit is busy, and bytes of
        outputs sent to consumers on other cores (``remote_outputs``), by the producer's phase.
        A split op's core is its first core.
    """
    f64 = np.float64
    dram_pre_s = np.ascontiguousarray(dram_pre_s, dtype=f64)
    dram_demand_s = np.ascontiguousarray(dram_demand_s, dtype=f64)
    # Each transfer adds at most one busy interval (a gap-filling one merges): bound the list
    # by the ops that move DRAM bytes.
    moving = (dram_pre_s > 0).astype(np.int64) + (dram_demand_s > 0)
    n_busy = int(np.asarray(row_count, dtype=np.int64) @ moving) + 2
    seg = np.ascontiguousarray(seg, dtype=np.int64)
    return _schedule(np.ascontiguousarray(base_row), np.ascontiguousarray(special_ops, dtype=np.int64),
                     np.ascontiguousarray(special_rows, dtype=np.int64),
                     np.ascontiguousarray(unit, dtype=np.int64),
                     np.ascontiguousarray(unit if lane is None else lane, dtype=np.int64),
                     np.ascontiguousarray(latency_s, dtype=f64),
                     np.ascontiguousarray(core0, dtype=np.int64), np.ascontiguousarray(ncores, dtype=np.int64),
                     np.ascontiguousarray(split, dtype=np.bool_), np.ascontiguousarray(xfer_s, dtype=f64),
                     dram_pre_s, dram_demand_s, float(dram_latency_s), np.ascontiguousarray(dispatch_s, dtype=f64),
                     seg, np.ascontiguousarray(ptr), np.ascontiguousarray(deps), int(cores),
                     int(seg.max()) + 1 if len(seg) else 1, n_busy, np.ascontiguousarray(phase, dtype=np.int64),
                     np.ascontiguousarray(width, dtype=f64), np.ascontiguousarray(out_bytes, dtype=f64), int(n_phases),
                     np.ascontiguousarray(np.zeros(0) if release_op is None else release_op, dtype=np.int64),
                     np.ascontiguousarray(np.zeros(0) if release_s is None else release_s, dtype=f64))


@njit(cache=True, nogil=True)
def _op_row(base_row, sp_ops, sp_rows):
    out = base_row.copy()
    for k in range(len(sp_ops)):
        out[sp_ops[k]] = sp_rows[k]
    return out


def op_rows(base_row: np.ndarray, special_ops: np.ndarray, special_rows: np.ndarray) -> np.ndarray:
    """The row of every op (``schedule_rows``' convention) as one array."""
    return _op_row(base_row, np.asarray(special_ops, dtype=np.int64), np.asarray(special_rows, dtype=base_row.dtype))


@njit(cache=True, nogil=True)
def remote_outputs(base_row, c0, nc, split, core, ptr, deps):
    """Per op, how many of its consumers run on another core (its output crosses the ring):
    a split consumer needs it on all its cores (remote unless made inside its range), any
    other consumer on its own core. ``c0``, ``nc``, ``split`` per row (the consumer's base row
    has its template and group); the rest per op."""
    n = len(base_row)
    out = np.zeros(n, dtype=np.int32)
    for i in range(n):
        r = base_row[i]
        for j in range(ptr[i], ptr[i + 1]):
            if _remote(i, deps[j], r, c0, nc, split, core):
                out[deps[j]] += 1
    return out


@njit(cache=True, nogil=True, inline="always")
def _idle_to(op, ph, start, rel_op, rel_t, n_phases):
    """Where an idle slice ending at ``op``'s start goes: ``op``'s phase ``ph``, or the
    waiting bucket ``n_phases`` when ``op`` starts at its release (waiting for audio)."""
    if len(rel_op) == 0:
        return ph
    k = np.searchsorted(rel_op, op, side="right") - 1
    if k >= 0 and start[op] <= rel_t[k]:
        return n_phases
    return ph


@njit(cache=True, nogil=True, inline="always")
def _attribute(out, running, total, span, idle_phase):
    """A slice of ``span`` seconds: shared by the phases in proportion to their running ops,
    or, when nothing runs (waiting for a transfer), to ``idle_phase`` (the op that starts at
    its end)."""
    if total > 0.5:
        for p in range(len(running)):
            if running[p] > 0.0:
                out[p] += span * running[p] / total
    else:
        out[idle_phase] += span


@njit(cache=True, nogil=True, inline="always")
def _next_start(start, order, bounds, pos, heads, nh):
    """Pop the op with the earliest start among the chunk heads (a min-heap of chunk indices
    ``heads[:nh]`` keyed by the start of each chunk's next op); returns (op, new nh)."""
    c = heads[0]
    op = order[pos[c]]
    pos[c] += 1
    if pos[c] == bounds[c + 1]:        # chunk done: the last head replaces the root
        nh -= 1
        c = heads[nh]
    key = start[order[pos[c]]] if nh > 0 else 0.0
    q = 0
    while nh > 0:                      # sift c down from the root
        k = 2 * q + 1
        if k >= nh:
            break
        if k + 1 < nh and start[order[pos[heads[k + 1]]]] < start[order[pos[heads[k]]]]:
            k += 1
        if start[order[pos[heads[k]]]] >= key:
            break
        heads[q] = heads[k]
        q = k
    if nh > 0:
        heads[q] = c
    return op, nh


@njit(cache=True, nogil=True)
def _phase_latency(start, end, order, bounds, base_row, phase, n_phases, cap, rel_op, rel_t):
    # Events in time order: starts by merging the chunks of ``order`` (each chunk's ops sorted
    # by start; ``bounds`` delimit the chunks), ends from a min-heap of the running ops' end
    # times (at most ``cap`` run at once: one per unit of a core in a schedule). At equal
    # times, ends go first. Phase per row, read through ``base_row``.
    n = len(start)
    out = np.zeros(n_phases + 1)
    if n == 0:
        return out
    n_chunks = len(bounds) - 1
    pos = bounds[:-1].copy()
    heads = np.empty(n_chunks, dtype=np.int64)
    nh = 0
    for c in range(n_chunks):              # heapify the chunk heads
        if bounds[c + 1] > bounds[c]:
            q = nh
            nh += 1
            key = start[order[pos[c]]]
            while q > 0 and start[order[pos[heads[(q - 1) // 2]]]] > key:
                heads[q] = heads[(q - 1) // 2]
                q = (q - 1) // 2
            heads[q] = c
    heap_t = np.empty(cap)
    heap_p = np.empty(cap, dtype=np.int64)
    size = 0
    running = np.zeros(n_phases)
    total = 0.0
    t = 0.0
    while nh > 0 or size > 0:
        nxt = start[order[pos[heads[0]]]] if nh > 0 else np.inf
        is_start = nh > 0 and (size == 0 or nxt < heap_t[0])
        x = nxt if is_start else heap_t[0]
        span = x - t
        if span > 0.0:
            nx = order[pos[heads[0]]] if nh > 0 else 0
            _attribute(out, running, total, span,
                       _idle_to(nx, phase[base_row[nx]], start, rel_op, rel_t, n_phases) if nh > 0 else 0)
            t = x
        if is_start:
            op, nh = _next_start(start, order, bounds, pos, heads, nh)
            ph = phase[base_row[op]]
            running[ph] += 1.0
            total += 1.0
            if size == cap:
                raise ValueError("more ops run at once than the phase sweep's capacity")
            q = size                       # push (end, phase)
            size += 1
            while q > 0 and heap_t[(q - 1) // 2] > end[op]:
                heap_t[q] = heap_t[(q - 1) // 2]
                heap_p[q] = heap_p[(q - 1) // 2]
                q = (q - 1) // 2
            heap_t[q] = end[op]
            heap_p[q] = ph
        else:
            running[heap_p[0]] -= 1.0
            total -= 1.0
            size -= 1                      # pop: sift the last entry down from the root
            lt = heap_t[size]
            lp = heap_p[size]
            q = 0
            while True:
                c = 2 * q + 1
                if c >= size:
                    break
                if c + 1 < size and heap_t[c + 1] < heap_t[c]:
                    c += 1
                if heap_t[c] >= lt:
                    break
                heap_t[q] = heap_t[c]
                heap_p[q] = heap_p[c]
                q = c
            if size > 0:
                heap_t[q] = lt
                heap_p[q] = lp
    return out


@njit(cache=True, nogil=True)
def _phase_latency_sorted(start, end, so, eo, base_row, phase, n_phases, rel_op, rel_t):
    # The same sweep as ``_phase_latency`` with every op sorted by start (``so``) and by end
    # (``eo``): faster, with two orders of all ops in memory (graphs up to SORT_CHUNK ops).
    n = len(start)
    out = np.zeros(n_phases + 1)
    if n == 0:
        return out
    running = np.zeros(n_phases)
    total = 0.0
    t = 0.0
    i = 0
    k = 0
    while k < n:
        if i < n and start[so[i]] < end[eo[k]]:  # at equal times, ends go first
            x = start[so[i]]
            is_start = True
        else:
            x = end[eo[k]]
            is_start = False
        span = x - t
        if span > 0.0:
            _attribute(out, running, total, span,
                       _idle_to(so[i], phase[base_row[so[i]]], start, rel_op, rel_t, n_phases) if i < n else 0)
            t = x
        if is_start:
            running[phase[base_row[so[i]]]] += 1.0
            total += 1.0
            i += 1
        else:
            running[phase[base_row[eo[k]]]] -= 1.0
            total -= 1.0
            k += 1
    return out


#: Graphs above this many ops sort start times in chunks of it and sweep with heaps
#: (``_phase_latency``): memory for one int32 order, not two int64 ones (an hour of audio).
SORT_CHUNK = 1 << 20


def phase_latency(start: np.ndarray, end: np.ndarray, phase: np.ndarray, n_phases: int,
                  base_row: np.ndarray | None = None, concurrency: int | None = None,
                  release_op: np.ndarray | None = None, release_s: np.ndarray | None = None) -> np.ndarray:
    """Seconds of the makespan attributed to each phase code (sums to ``end.max()``): ``phase``
    per op, or per row with ``base_row`` the row of every op. ``concurrency``: the most ops
    that run at once (a schedule: cores x units), default any.

    With ``release_op`` and ``release_s`` (``schedule_rows``' streaming releases) the result has
    one more entry, last: idle time that ends when an op starts at its release (the chip waiting
    for audio), which no phase gets."""
    start = np.ascontiguousarray(start, dtype=np.float64)
    end = np.ascontiguousarray(end, dtype=np.float64)
    phase = np.ascontiguousarray(phase, dtype=np.int64)
    n = len(start)
    if base_row is None:
        base_row = np.arange(n, dtype=np.int64)
    base_row = np.ascontiguousarray(base_row)
    streaming = release_op is not None and len(release_op) > 0
    rel_op = np.ascontiguousarray(release_op if streaming else np.zeros(0), dtype=np.int64)
    rel_t = np.ascontiguousarray(release_s if streaming else np.zeros(0), dtype=np.float64)
    keep = n_phases + 1 if streaming else n_phases
    # numpy's stable sort is fast on the nearly sorted times of a schedule
    if n <= SORT_CHUNK:
        return _phase_latency_sorted(start, end, np.argsort(start, kind="stable"), np.argsort(end, kind="stable"),
                                     base_row, phase, int(n_phases), rel_op, rel_t)[:keep]
    # Start order per chunk of ops, merged on the fly by the sweep: int32 indices, no sort of
    # all ops at once; ends from a heap of the running ops.
    order = np.empty(n, dtype=np.int32 if n < 2**31 else np.int64)
    bounds = np.unique(np.append(np.arange(0, n, SORT_CHUNK, dtype=np.int64), n))
    for a, b in zip(bounds[:-1], bounds[1:]):
        order[a:b] = np.argsort(start[a:b], kind="stable") + a
    cap = max(1, n if concurrency is None else min(int(concurrency), n))
    return _phase_latency(start, end, order, bounds, base_row, phase, int(n_phases), cap, rel_op, rel_t)[:keep]
