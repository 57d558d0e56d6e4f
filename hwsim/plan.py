"""The execution plan an accelerator compiler would make: segments, work groups on cores, and
what is on chip in each segment.

**Segments.** The program (ops in program order) is cut into execution segments by what it
needs on chip: each encoder layer is one segment (``*.encoder.layers.<i>.*`` modules; the
``cat``/``mean`` ops after a layer stay with it), and the whole search (prediction network,
joint, both LMs and the search's own ops, used at every search step) is one segment. A
unidirectional (``swb300-stream``) encoder in an offline graph (the whole utterance available, as
every graph the builder and the tracer make today) runs layer by layer over the utterance like a
bidirectional one: per layer, its recurrent weights are resident and its input projection
streams once; ``SimResult.memory`` lists it per segment. A chunked streaming graph, whose layers
alternate per chunk, is one segment instead (``hwsim.program``: ``stream``, its on-chip part
``preloaded``), since every layer is used at every chunk. [limit] Long chunks whose layers do not
fit on chip together would in practice run layer by layer within each chunk, reloading each
layer per chunk; the one steady-state segment streams the weights that do not fit at every use.

**Work groups and cores.** Within a segment, ops belong to work groups that have no dataflow
between them inside a step: one per encoder layer direction (``...layers.0.fwd``, ``.bwd``) and
one per network of the search (``rnnt.prediction``, ``rnnt.joint``, ``lm_ext``, ``lm_src``).
Ops outside modules (the search's top-k, merges, gathers; the encoder's ``cat``) are *floating*:
they run on whichever core is free first (unless they read a weight: then they are a group
like the others). With ``mapping.spatial`` each group gets its own
cores in proportion to its work (``allocate_cores``): the two directions of a layer run side by
side, the LMs next to the prediction network. A group's GEMMs with at least
``mapping.split_min_macs`` MACs are split over the group's cores (n divided, weights sliced
over their scratchpads). The work of a group is its ops' single-core time with every weight on
chip, so the allocation does not move with scratchpad size or DRAM bandwidth.

**Residency** (``mapping.residency: plan``): per segment and group, a fractional knapsack over
the group's own scratchpad capacity: a GEMM weight used ``u >= 2`` times in the segment saves
``(u - 1)`` bytes of DRAM traffic per byte kept on chip; the group's largest activation buffer
(e.g. the T x 4H gate pre-activations of an encoder direction) saves 2 (a write and a read
back) and is placed by the same rule. Items go in by saving per byte, the last one partly
(tiles of a weight: part stays, the rest streams at every use). One greedy pass over all
items of the segment by saving per byte: an item fills its own group's scratchpads first, then
the shared SRAM, then (weights only) capacity other groups have left free (read over the ring). Single-use weights (an encoder layer's
input projection, one GEMM over all frames) stream once. Everything a segment keeps is evicted
at its end unless the next segment uses it (carried over).

**Prefetch** (``mapping.prefetch``): the next segment's loads (its resident parts, then its
single-use weights) are issued at the start of the current segment into the capacity the
current one leaves free; the DRAM channel serves them in its idle time (``hwsim.schedule``).
What does not fit loads at its first use.

**Caches** (``mapping.residency: cache``): the on-chip memories are caches, not scratchpads the
compiler fills: what stays between two uses of a byte depends on how much else is touched in
between. [assumption] Least-recently-used caches under cyclic reuse (a search step touches the
same weights in the same order at every step), where a working set larger than a cache misses
it at every access; an exclusive (victim) shared level, as AMD Zen's L3, which adds to the
private one. Per segment and group, the working set is the group's reused weights (used twice or
more: what every step touches again): a group whose set fits its own scratchpad keeps it there;
the groups that do not fit keep theirs in the shared level when their sets together fit the
shared SRAM plus their own scratchpads; otherwise none of their weights stays on chip (every use
streams them). An activation buffer (written once, read back row by row) stays on chip when it
fits beside the weights kept, else spills. A measured hit curve (``mapping.cache_hit_curve``, a
miss-ratio curve under cyclic reuse) replaces the all-or-nothing test of the shared level: the
groups that miss their scratchpads keep its share of their weights there, the rest streams.
With ``mapping.spatial`` false the
groups take turns on the same cores, and their sets count as one. The capacities a calibrated CPU
preset gives are measured for its reuse pattern (``hwsim.calibrate``).

Every DRAM byte is attributed to an op: a weight's first use in a segment carries its load (and
its prefetched part), later uses their streamed part; a spilled activation buffer is charged
(write and read back) to the op that produces it.

Known limits: activation buffers other than each group's largest are assumed to fit beside it;
the ring and the shared SRAM are not arbitrated between concurrent ops; a GEMM too small to
split reads its group's weight slices at scratchpad bandwidth from one core.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd
from numba import njit

from hwsim.spec import AcceleratorSpec

_LAYER = re.compile(r"\.encoder\.layers\.(\d+)(?:\.|$)")
_DIRECTION = re.compile(r"^(.*\.encoder\.layers\.\d+\.[^.]+)")

#: Where a GEMM's weight comes from at one use (``SimResult.ops["weight_source"]``).
WEIGHT_SOURCES = ("", "resident", "prefetched", "loaded", "mixed", "streamed")
SOURCE_CODE = {s: i for i, s in enumerate(WEIGHT_SOURCES)}

#: Saving per on-chip byte of an activation buffer kept on chip (one write + one read back).
ACT_SAVING = 2.0


def segment_key(phase: str, module: str) -> str | None:
    """Segment of an op class: ``encoder.layers.<i>``, ``search``, or None (stays with the
    segment before it)."""
    if phase == "encoder":
        m = _LAYER.search(module)
        return f"encoder.layers.{m.group(1)}" if m else None
    return "search"


def work_group(module: str) -> str:
    """Work group of a module ('' = floating: no module, or the encoder outside its layers)."""
    m = _DIRECTION.match(module)
    if m:
        return m.group(1)
    if not module:
        return ""
    parts = module.split(".")
    if parts[0] == "rnnt":
        return "" if len(parts) < 2 or parts[1] == "encoder" else f"rnnt.{parts[1]}"
    return parts[0]


@njit(cache=True, nogil=True)
def _segments(key_of, code):
    """Segment of every op from its class's segment key ``key_of[code[i]]`` (-1: none; such an
    op stays with the segment before it, the first ones with the one after): the segment ids
    (a new one at every change of key) and the key of each segment."""
    n = len(code)
    seg = np.zeros(n, dtype=np.int32)
    keys = np.full(n + 1, -1, dtype=np.int64)
    cur = -1
    for i in range(n):
        if key_of[code[i]] >= 0:
            cur = key_of[code[i]]
            break
    s = 0
    nk = 0
    for i in range(n):
        k = key_of[code[i]]
        if k < 0:
            k = cur
        if i == 0:
            keys[0] = k
            nk = 1
        elif k != cur:
            s += 1
            keys[nk] = k
            nk += 1
        cur = k
        seg[i] = s
    return seg, keys[:nk].copy()


def segments_of(code: np.ndarray, phases: list[str], modules: list[str]) -> tuple[np.ndarray, list[str]]:
    """Segment id of every op (contiguous runs in program order) and each segment's label, for
    ops of classes ``code`` whose phase and module are ``phases[c]``, ``modules[c]``."""
    n = len(code)
    if n == 0:
        return np.zeros(0, dtype=np.int32), []
    labels: list[str] = []
    key_of = np.full(len(phases), -1, dtype=np.int64)
    for c, (phase, module) in enumerate(zip(phases, modules)):
        key = segment_key(phase, module)
        if key is not None:
            if key not in labels:
                labels.append(key)
            key_of[c] = labels.index(key)
    if (key_of[np.bincount(code, minlength=len(phases)) > 0] < 0).all():
        return np.zeros(n, dtype=np.int32), ["program"]
    seg, keys = _segments(key_of, np.ascontiguousarray(code))
    return seg, [labels[int(k)] for k in keys]


def segments(table: pd.DataFrame) -> tuple[np.ndarray, list[str]]:
    """``segments_of`` for an op table (categorical ``phase`` and ``module`` columns)."""
    ph, mo = table["phase"].cat, table["module"].cat
    n_mo = max(len(mo.categories), 1)
    combo = ph.codes.to_numpy().astype(np.int64) * n_mo + mo.codes.to_numpy()
    uniq, inv = np.unique(combo, return_inverse=True)
    phases = [str(ph.categories[u // n_mo]) for u in uniq]
    modules = [str(mo.categories[u % n_mo]) for u in uniq]
    return segments_of(inv.reshape(-1), phases, modules)


@dataclass(frozen=True)
class Groups:
    """Work groups: per group its ``seg``, ``label`` and whether it is ``floating`` (label ''
    and no weight read). The group of each cost row is ``hwsim.program.Program.row_group``."""

    seg: np.ndarray
    label: list[str]
    floating: np.ndarray


def allocate_cores(work: np.ndarray, floating: np.ndarray, cores: int,
                   spatial: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cores of the work groups of one segment.

    The cores are apportioned to the groups in proportion to their work by the largest-remainder
    method (``floor(cores * share)`` each, the spare cores to the largest remainders; ties: the
    larger group); groups left without a core share the least loaded core (largest first; a
    dedicated group's load per core is its work over its cores). Floating groups, and every
    group without ``spatial``, may use all cores.

    Args:
        work: single-core seconds of each group. floating: groups that run anywhere.

    Returns:
        (first core, number of cores, share of each core's capacity) per group; the cores of a
        group are ``first .. first + number - 1``.
    """
    G = len(work)
    c0 = np.zeros(G, dtype=np.int64)
    nc = np.full(G, cores, dtype=np.int64)
    share = np.zeros(G)
    fixed = np.flatnonzero(~floating)
    if not spatial or len(fixed) == 0:
        if len(fixed):
            share[fixed] = cores / len(fixed)
        return c0, nc, share
    w = np.maximum(work[fixed], 0.0)
    total = w.sum()
    order = np.argsort(-w, kind="stable")
    n = np.floor(cores * w / total).astype(np.int64) if total > 0 else np.zeros(len(w), dtype=np.int64)
    spare = cores - int(n.sum())
    if spare > 0 and total > 0:       # largest remainders first (ties: the larger group)
        rem = np.round(cores * w / total - n, 12)   # equal quotas tie exactly
        for j in sorted(range(len(w)), key=lambda j: (-rem[j], -w[j], j))[:spare]:
            n[j] += 1
    load = np.zeros(cores)
    groups_on = [[] for _ in range(cores)]
    nxt = 0
    for j in order:
        if n[j] > 0:
            c0[fixed[j]] = nxt
            nc[fixed[j]] = n[j]
            for c in range(nxt, nxt + n[j]):
                load[c] += w[j] / n[j]
                groups_on[c].append(j)
            nxt += n[j]
    for j in order:
        if n[j] == 0:
            c = int(np.argmin(load))
            c0[fixed[j]] = c
            nc[fixed[j]] = 1
            load[c] += w[j]
            groups_on[c].append(j)
    for c in range(cores):
        for j in groups_on[c]:
            share[fixed[j]] += 1.0 / len(groups_on[c])
    return c0, nc, share


@dataclass(frozen=True)
class Pairs:
    """The uses of each (segment, GEMM weight) pair, in (segment, weight code) order.

    ``seg``, ``weight`` (code into the weight names), ``uses`` (ops), ``first_op`` (id of the
    first use), ``group`` (work group of the first use).
    """

    seg: np.ndarray
    weight: np.ndarray
    uses: np.ndarray
    first_op: np.ndarray
    group: np.ndarray

    def index(self, seg: np.ndarray, weight: np.ndarray, n_weights: int) -> np.ndarray:
        """Pair index of (segment, weight code) arguments that name a pair."""
        nW = max(n_weights, 1)
        return np.searchsorted(self.seg * nW + self.weight, np.asarray(seg, dtype=np.int64) * nW + weight)


@dataclass
class MemoryPlan:
    """The plan per (segment, weight) pair and per work group; ``bytes_of`` turns it into bytes.

    Per pair (``Pairs`` order): ``local``, ``shared``, ``remote`` on-chip bytes (own scratchpads,
    shared SRAM, other cores' scratchpads over the ring), ``carried`` (on chip already at the
    end of the previous segment), ``prefetched`` (loaded by prefetch, issued at the previous
    segment's start), ``size`` (the weight's bytes). Per group: ``act_op`` (the op producing
    its largest activation buffer, -1 = none), ``act_bytes`` (its size), ``spilled`` (bytes of it
    that do not fit).
    ``residency``: one row per (segment, weight or activation buffer) (see ``plan_memory``),
    built on first use.
    """

    pairs: Pairs
    size: np.ndarray
    local: np.ndarray
    shared: np.ndarray
    remote: np.ndarray
    carried: np.ndarray
    prefetched: np.ndarray
    act_op: np.ndarray
    act_bytes: np.ndarray
    spilled: np.ndarray
    _residency: Callable[[], pd.DataFrame] | pd.DataFrame | None = None

    @property
    def onchip(self) -> np.ndarray:
        return self.local + self.shared + self.remote

    @property
    def residency(self) -> pd.DataFrame:
        if callable(self._residency):
            self._residency = self._residency()
        return self._residency

    def bytes_of(self, pair: np.ndarray, first_use: np.ndarray, spill_op: np.ndarray) -> dict[str, np.ndarray]:
        """Bytes by source of ops (or cost rows) given their ``pair`` (-1: no planned weight),
        whether they are the ``first_use`` of it, and whether they are a group's ``spill_op``
        (the activation buffer's write and read back, ``ACT_SAVING`` x its spilled bytes;
        ``spill_op`` holds the group index, -1 = not one).

        Returns arrays ``w_local``, ``w_shared``, ``w_remote`` (weight bytes read on chip),
        ``dram_pre`` (prefetched), ``dram_demand`` (read from DRAM when the op runs: weight
        loads and streams, activation spills), ``spill`` (that part of it), ``source`` (codes of
        ``WEIGHT_SOURCES``), ``resident`` (part of the op's weight is resident in its segment).
        """
        n = len(pair)
        has = pair >= 0
        p = np.where(has, pair, 0)
        zero = np.zeros(n)
        loc = np.where(has, self.local[p] if len(self.local) else zero, 0.0)
        sh = np.where(has, self.shared[p] if len(self.local) else zero, 0.0)
        rem = np.where(has, self.remote[p] if len(self.local) else zero, 0.0)
        size = np.where(has, self.size[p] if len(self.local) else zero, 0.0)
        carried = np.where(has, self.carried[p] if len(self.local) else zero, 0.0)
        pre = np.where(has & first_use, self.prefetched[p] if len(self.local) else zero, 0.0)
        res = loc + sh + rem
        streamed = np.maximum(size - res, 0.0)
        frac = np.where(res > 0, carried / np.where(res > 0, res, 1.0), 0.0)
        first = has & first_use
        w_local = np.where(first, loc * frac, loc)
        w_shared = np.where(first, sh * frac, sh)
        w_remote = np.where(first, rem * frac, rem)
        from_dram = np.where(first, size - carried, streamed)
        demand = from_dram - pre
        g = np.where(spill_op >= 0, spill_op, 0)
        spill = np.where(spill_op >= 0, ACT_SAVING * (self.spilled[g] if len(self.spilled) else zero), 0.0)
        source = np.where(~has, SOURCE_CODE[""],
                          np.where(pre > 0, SOURCE_CODE["prefetched"],
                                   np.where(from_dram <= 0, SOURCE_CODE["resident"],
                                            np.where(res > 0, np.where(first & (carried < res), SOURCE_CODE["loaded"],
                                                                       SOURCE_CODE["mixed"]),
                                                     SOURCE_CODE["streamed"])))).astype(np.int64)
        return {"w_local": w_local, "w_shared": w_shared, "w_remote": w_remote, "dram_pre": pre,
                "dram_demand": demand + spill, "spill": spill, "source": source,
                "resident": has & (res > 0)}


def _place(items_of: dict, capacity: dict, shared_bytes: float) -> tuple[dict, dict, dict]:
    """One greedy pass over a segment's items by saving per byte (ties: smaller, then name).

    Each item fills its own group's free capacity first, then the shared SRAM, then (weights
    only) other groups' free capacity, largest first; an item that does not fit is placed in
    part. This is the optimal fractional knapsack when every on-chip byte is worth the same.

    Args:
        items_of: group -> [(saving per byte, bytes, name, key)], key ("w", pair) or ("act", g).
        capacity: group -> its scratchpad bytes.

    Returns:
        (local, shared, remote): key -> bytes placed in each tier.
    """
    free = dict(capacity)
    local: dict = {}
    shared: dict = {}
    remote: dict = {}
    items = [(sv, sz, nm, key, g) for g, lst in items_of.items() for sv, sz, nm, key in lst]
    for saving, size, _, key, g in sorted(items, key=lambda t: (-t[0], t[1], t[2])):
        if saving <= 0:
            break
        take = min(size, max(free.get(g, 0.0), 0.0))
        if take > 0:
            local[key] = take
            free[g] -= take
        left = size - take
        if key[0] != "w" or left <= 0:
            continue
        take = min(left, shared_bytes)
        if take > 0:
            shared[key] = take
            shared_bytes -= take
            left -= take
        for other in sorted(free, key=lambda o: (-free[o], o)):
            if left <= 0:
                break
            if other == g or free[other] <= 0:
                continue
            take = min(left, free[other])
            remote[key] = remote.get(key, 0.0) + take
            free[other] -= take
            left -= take
    return local, shared, remote


def hit_share(curve: tuple[tuple[float, float], ...], nbytes: float) -> float:
    """``mapping.cache_hit_curve`` at a working set of ``nbytes``: linear in log bytes between its
    points, flat beyond them."""
    xs = np.log([b for b, _ in curve])
    return float(np.interp(np.log(max(nbytes, 1.0)), xs, [h for _, h in curve]))


def shared_share(need: float, capacity: float, shared_bytes: float,
                 hit_curve: tuple[tuple[float, float], ...] | None = None) -> float:
    """The share of a working set of ``need`` weight bytes that misses the scratchpads
    (``capacity`` bytes of them) but is served by the shared level, under ``mapping.residency:
    cache``: ``hit_share`` of the curve when there is one, else all of it when it fits the shared
    level and those scratchpads (an exclusive L3), else none (an LRU cache under cyclic reuse
    holds nothing of a working set larger than itself). The one rule of ``_place_cache``, also
    used by ``hwsim.calibrate`` to price a calibration GEMM's weight."""
    if hit_curve is not None:
        return hit_share(hit_curve, need)
    return 1.0 if need <= shared_bytes + capacity else 0.0


def _place_cache(items_of: dict, capacity: dict, shared_bytes: float, pooled: bool = False,
                 hit_curve: tuple[tuple[float, float], ...] | None = None) -> tuple[dict, dict, dict]:
    """``mapping.residency: cache`` (module docstring): every reused weight of a group at one level.

    Args and returns as ``_place``. The working sets are the weights (what every step touches
    again); an activation buffer, written once and read back row by row, stays on chip (in
    ``local``: it does not spill) when it fits beside every weight kept, else spills.
    ``pooled``: the groups take turns on the same cores (``mapping.spatial`` false), so their
    caches see one working set, of all of them, against all of their capacity. ``hit_curve``
    (``mapping.cache_hit_curve``): the groups that miss their scratchpads keep its share at their
    working set of each weight in the shared level, instead of all or nothing."""
    local: dict = {}
    shared: dict = {}
    weights = {g: [(sz, key) for sv, sz, _, key in lst if sv > 0 and key[0] == "w"] for g, lst in items_of.items()}
    acts = [(sz, key) for lst in items_of.values() for sv, sz, _, key in lst if sv > 0 and key[0] == "act"]
    total_cap = sum(capacity.values()) + shared_bytes
    if pooled:
        weights = {"all": [item for items in weights.values() for item in items]}
        capacity = {"all": sum(capacity.values())}
    missed = []
    for g, items in weights.items():
        if sum(sz for sz, _ in items) <= capacity.get(g, 0.0):
            local.update({key: sz for sz, key in items})
        elif items:
            missed.append(g)
    need = sum(sz for g in missed for sz, _ in weights[g])
    h = shared_share(need, sum(capacity.get(g, 0.0) for g in missed), shared_bytes, hit_curve) if missed else 0.0
    if h > 0:
        shared.update({key: h * sz for g in missed for sz, key in weights[g]})
    free = total_cap - sum(local.values()) - sum(shared.values())
    for sz, key in sorted(acts, key=lambda t: (t[0], str(t[1]))):
        if sz <= free:
            local[key] = sz
            free -= sz
    return local, shared, {}


RESIDENCY_COLUMNS = ("segment", "segment_label", "group", "item", "kind", "bytes", "uses",
                     "local_bytes", "shared_bytes", "remote_bytes", "streamed_bytes_per_use",
                     "carried_bytes", "prefetched_bytes", "loaded_bytes", "spilled_bytes",
                     "first_op", "evicted_after_segment")


def plan_memory(*, pairs: Pairs, size: np.ndarray, seg_labels: list[str], groups: Groups,
                share: np.ndarray, weight_names: np.ndarray, act_op: np.ndarray, act_bytes: np.ndarray,
                hw: AcceleratorSpec, preloaded: bool = False) -> MemoryPlan:
    """The memory plan (module docstring).

    Args:
        pairs: the (segment, weight) uses. size: each pair's weight bytes under the policy.
        seg_labels: ``segments``. groups: ``work_groups``. share: each group's share of the
            scratchpads (``allocate_cores``). weight_names: names of the weight codes.
        act_op, act_bytes: per group, the op producing its largest activation buffer (-1 =
            none) and that buffer's bytes.
        preloaded: what the first segment keeps on chip is there before it starts (carried,
            no load): a streaming chip's model, loaded once at start-up. Keeping a byte of a
            weight used ``u`` times then saves ``u`` reads, not ``u - 1``, and a weight used
            once per stream chunk is worth keeping too.
    """
    n_pairs = len(pairs.seg)
    local_b, shared_b, remote_b = np.zeros(n_pairs), np.zeros(n_pairs), np.zeros(n_pairs)
    spilled = np.zeros(len(groups.label))
    plan_on = hw.mapping.residency in ("plan", "cache")
    if hw.mapping.residency == "cache":
        def place(items_of, capacity, shared_bytes):
            return _place_cache(items_of, capacity, shared_bytes, pooled=not hw.mapping.spatial,
                                hit_curve=hw.mapping.cache_hit_curve)
    else:
        place = _place
    pad = float(hw.core.scratchpad_bytes)
    total_cap = hw.cores * pad + hw.shared_sram_bytes
    n_seg = len(seg_labels)
    prev_resident: dict[int, float] = {}     # weight code -> on-chip bytes at the end of a segment
    prev_used = 0.0                          # on-chip bytes used by the previous segment
    pair_pre = np.zeros(n_pairs)
    pair_carried = np.zeros(n_pairs)
    pair_bounds = np.searchsorted(pairs.seg, np.arange(n_seg + 1))
    group_bounds = np.searchsorted(groups.seg, np.arange(n_seg + 1))
    for s in range(n_seg):
        pr = np.arange(pair_bounds[s], pair_bounds[s + 1])
        gids = np.arange(group_bounds[s], group_bounds[s + 1])
        items_of = {int(g): [] for g in gids}
        act_item = {int(g): float(act_bytes[g]) for g in gids if act_op[g] >= 0} if plan_on else {}
        for g, sz in act_item.items():
            items_of[g].append((ACT_SAVING, sz, "~act", ("act", g)))
        # A byte kept on chip saves a DRAM read at every use but the first, which loads it;
        # preloaded, at every use.
        first_load = 0 if (preloaded and s == 0) else 1
        for p in pr:
            if pairs.uses[p] - first_load >= 1 and plan_on:
                items_of[int(pairs.group[p])].append((float(pairs.uses[p] - first_load), float(size[p]),
                                                      str(weight_names[pairs.weight[p]]), ("w", int(p))))
        local, shared, remote = place(items_of, {int(g): (pad * share[g] if plan_on else 0.0)
                                                  for g in gids if not groups.floating[g]},
                                       float(hw.shared_sram_bytes) if plan_on else 0.0)
        used = sum(local.values()) + sum(shared.values()) + sum(remote.values())
        # Loads, carried bytes, prefetch (into what the previous segment leaves free).
        free_prev = max(0.0, total_cap - prev_used) if (hw.mapping.prefetch and s > 0 and plan_on) else 0.0
        now_resident = {}
        for p in pr[np.argsort(pairs.first_op[pr], kind="stable")]:
            kp = ("w", int(p))
            local_b[p], shared_b[p], remote_b[p] = local.get(kp, 0.0), shared.get(kp, 0.0), remote.get(kp, 0.0)
            res = local_b[p] + shared_b[p] + remote_b[p]
            w = int(pairs.weight[p])
            carried = res if (preloaded and s == 0) else min(prev_resident.get(w, 0.0), res)
            pair_carried[p] = carried
            now_resident[w] = res
            # prefetchable: the part that will stay (multi-use) or the whole weight (single use)
            want = (res - carried) if pairs.uses[p] >= 2 else float(size[p])
            take = min(want, free_prev)
            pair_pre[p] = take
            free_prev -= take
        for g, sz in act_item.items():
            spilled[g] = max(sz - local.get(("act", g), 0.0) - shared.get(("act", g), 0.0), 0.0)
        prev_resident = now_resident
        prev_used = used
    mem = MemoryPlan(pairs, np.asarray(size, dtype=np.float64), local_b, shared_b, remote_b, pair_carried,
                     pair_pre, np.asarray(act_op), np.asarray(act_bytes, dtype=np.float64), spilled)
    mem._residency = lambda: _residency_table(mem, seg_labels, groups, weight_names)
    return mem


def _residency_table(mem: MemoryPlan, seg_labels: list[str], groups: Groups,
                     weight_names: np.ndarray) -> pd.DataFrame:
    """``MemoryPlan.residency``: one row per (segment, weight), then per activation buffer."""
    pairs = mem.pairs
    rows = []
    for p in range(len(pairs.seg)):
        loc, sh, rem = float(mem.local[p]), float(mem.shared[p]), float(mem.remote[p])
        size = float(mem.size[p])
        res = loc + sh + rem
        s = int(pairs.seg[p])
        nxt_uses = (pairs.seg == s + 1) & (pairs.weight == pairs.weight[p])
        rows.append({"segment": s, "segment_label": seg_labels[s], "group": groups.label[pairs.group[p]],
                     "item": str(weight_names[pairs.weight[p]]), "kind": "weight", "bytes": size,
                     "uses": int(pairs.uses[p]), "local_bytes": loc, "shared_bytes": sh, "remote_bytes": rem,
                     "streamed_bytes_per_use": max(size - res, 0.0), "carried_bytes": float(mem.carried[p]),
                     "prefetched_bytes": float(mem.prefetched[p]),
                     "loaded_bytes": float(res - mem.carried[p] - mem.prefetched[p]) if pairs.uses[p] >= 2 else 0.0,
                     "spilled_bytes": 0.0, "first_op": int(pairs.first_op[p]),
                     "evicted_after_segment": -1 if nxt_uses.any() and res > 0 else (s if res > 0 else -1)})
    for g in np.flatnonzero(mem.act_op >= 0):
        s = int(groups.seg[g])
        sp = float(mem.spilled[g])
        size = float(mem.act_bytes[g])
        rows.append({"segment": s, "segment_label": seg_labels[s], "group": groups.label[g],
                     "item": f"activations of {groups.label[g]}", "kind": "activation", "bytes": size,
                     "uses": 1, "local_bytes": size - sp, "shared_bytes": 0.0, "remote_bytes": 0.0,
                     "streamed_bytes_per_use": 0.0, "carried_bytes": 0.0, "prefetched_bytes": 0.0,
                     "loaded_bytes": 0.0, "spilled_bytes": sp, "first_op": int(mem.act_op[g]),
                     "evicted_after_segment": s})
    return pd.DataFrame(rows, columns=list(RESIDENCY_COLUMNS))
