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
alternate per chunk, would get one segment per run of a layer under this rule, and every chunk
would reload every layer that is not carried from the segment just before: such graphs need
segments per chunk (all layers of a chunk together), which this rule does not make yet.

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

import numpy as np
import pandas as pd

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


def _codes(table: pd.DataFrame, col: str) -> tuple[np.ndarray, np.ndarray]:
    cat = table[col].cat
    return cat.codes.to_numpy().astype(np.int64), np.asarray(cat.categories, dtype=object)


def segments(table: pd.DataFrame) -> tuple[np.ndarray, list[str]]:
    """Segment id of every op (contiguous runs in program order) and each segment's label."""
    n = len(table)
    if n == 0:
        return np.zeros(0, dtype=np.int64), []
    ph, ph_names = _codes(table, "phase")
    mo, mo_names = _codes(table, "module")
    combo = ph * max(len(mo_names), 1) + mo
    uniq, inv = np.unique(combo, return_inverse=True)
    labels: list[str] = []
    key_of = np.empty(len(uniq), dtype=np.int64)
    for j, c in enumerate(uniq):
        key = segment_key(ph_names[c // max(len(mo_names), 1)], mo_names[c % max(len(mo_names), 1)])
        if key is None:
            key_of[j] = -1
        else:
            if key not in labels:
                labels.append(key)
            key_of[j] = labels.index(key)
    key = key_of[inv.reshape(-1)]
    if (key < 0).all():
        return np.zeros(n, dtype=np.int64), ["program"]
    # Ops without a key stay with the segment before them (the first ones with the one after).
    idx = np.where(key >= 0, np.arange(n), -1)
    idx = np.maximum.accumulate(idx)
    first = int(np.flatnonzero(key >= 0)[0])
    idx[idx < 0] = first
    key = key[idx]
    change = np.concatenate([[0], (key[1:] != key[:-1]).astype(np.int64)])
    seg = np.cumsum(change)
    seg_labels = [labels[int(key[i])] for i in np.concatenate([[0], np.flatnonzero(change) ])]
    return seg, seg_labels


@dataclass(frozen=True)
class Groups:
    """Work groups: per op ``group`` (index into the group arrays); per group its ``seg``,
    ``label`` and whether it is ``floating`` (label '')."""

    group: np.ndarray
    seg: np.ndarray
    label: list[str]
    floating: np.ndarray


def work_groups(table: pd.DataFrame, seg: np.ndarray, weighted: np.ndarray) -> Groups:
    """Work groups of every op. ``weighted``: ops that read a planned weight (GEMMs with one);
    a group of ops outside modules that reads weights is not floating (it needs capacity)."""
    mo, mo_names = _codes(table, "module")
    lab_names = [work_group(m) for m in mo_names]
    uniq_labels = sorted(set(lab_names))
    lab_code = np.array([uniq_labels.index(x) for x in lab_names], dtype=np.int64)
    lab = lab_code[mo] if len(mo) else np.zeros(0, dtype=np.int64)
    key = seg * max(len(uniq_labels), 1) + lab
    uniq, inv = np.unique(key, return_inverse=True)
    gseg = uniq // max(len(uniq_labels), 1)
    glab = [uniq_labels[int(u % max(len(uniq_labels), 1))] for u in uniq]
    group = inv.reshape(-1).astype(np.int64)
    has_w = np.bincount(group, weights=weighted.astype(np.float64), minlength=len(glab)) > 0
    return Groups(group, gseg.astype(np.int64), glab,
                  np.array([x == "" for x in glab], dtype=bool) & ~has_w)


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


@dataclass
class MemoryPlan:
    """Per-op bytes by source, and the residency table.

    Per op (arrays of length n_ops): ``w_local``, ``w_shared``, ``w_remote`` weight bytes read
    on chip (own scratchpads, shared SRAM, other cores' scratchpads over the ring);
    ``dram_pre`` bytes loaded by prefetch (issued at the previous segment's start);
    ``dram_demand`` bytes read from DRAM when the op runs (weight loads and streams, activation
    spills); ``spill`` the activation-spill part of it; ``source`` codes of ``WEIGHT_SOURCES``;
    ``resident`` whether (part of) the op's weight is resident in its segment.
    ``residency``: one row per (segment, weight or activation buffer) (see ``plan_memory``).
    """

    w_local: np.ndarray
    w_shared: np.ndarray
    w_remote: np.ndarray
    dram_pre: np.ndarray
    dram_demand: np.ndarray
    spill: np.ndarray
    source: np.ndarray
    resident: np.ndarray
    residency: pd.DataFrame


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


def _source(onchip: float, from_dram: float, prefetched: float, first_use: bool) -> int:
    """``WEIGHT_SOURCES`` code of one use of a weight with ``onchip`` bytes resident in its segment
    and ``from_dram`` bytes read from DRAM at this use (``prefetched`` of them ahead of it)."""
    if prefetched > 0:
        return SOURCE_CODE["prefetched"]
    if from_dram <= 0:
        return SOURCE_CODE["resident"]
    if onchip > 0:
        return SOURCE_CODE["loaded" if first_use else "mixed"]
    return SOURCE_CODE["streamed"]


RESIDENCY_COLUMNS = ("segment", "segment_label", "group", "item", "kind", "bytes", "uses",
                     "local_bytes", "shared_bytes", "remote_bytes", "streamed_bytes_per_use",
                     "carried_bytes", "prefetched_bytes", "loaded_bytes", "spilled_bytes",
                     "first_op", "evicted_after_segment")


def plan_memory(*, seg: np.ndarray, seg_labels: list[str], groups: Groups, share: np.ndarray,
                weight: np.ndarray, weight_names: np.ndarray, is_gemm: np.ndarray,
                w_bytes: np.ndarray, act_bytes: np.ndarray, hw: AcceleratorSpec) -> MemoryPlan:
    """The memory plan (module docstring) for ops with the given per-op data.

    Args:
        seg, seg_labels: ``segments``. groups: ``work_groups``. share: each group's share of the
            scratchpads (``allocate_cores``).
        weight: weight code per op (-1 = none), names in ``weight_names``. is_gemm: GEMM ops
            (only GEMM weights are planned; embedding lookups read rows).
        w_bytes: bytes of the op's weight under the policy. act_bytes: the op's activation bytes.
    """
    n = len(seg)
    w_local = np.zeros(n)
    w_shared = np.zeros(n)
    w_remote = np.zeros(n)
    dram_pre = np.zeros(n)
    dram_demand = np.zeros(n)
    spill = np.zeros(n)
    source = np.zeros(n, dtype=np.int64)
    resident = np.zeros(n, dtype=bool)
    rows: list[dict] = []
    plan_on = hw.mapping.residency == "plan"
    pad = float(hw.core.scratchpad_bytes)
    total_cap = hw.cores * pad + hw.shared_sram_bytes
    wops = np.flatnonzero(is_gemm & (weight >= 0))
    n_seg = int(seg.max()) + 1 if n else 0

    # Uses and first use of each (segment, weight).
    nW = max(len(weight_names), 1)
    key = seg[wops] * nW + weight[wops]
    uniq, first_pos, inv, uses = np.unique(key, return_index=True, return_inverse=True, return_counts=True)
    first_op = wops[first_pos]
    inv = inv.reshape(-1)
    pair_seg = uniq // nW
    pair_w = uniq % nW
    pair_size = w_bytes[first_op]
    pair_group = groups.group[first_op]

    # Each non-floating group's largest activation buffer: (op, bytes).
    largest_act: dict[int, tuple[int, float]] = {}
    if n:
        order = np.lexsort((-act_bytes, groups.group))           # by group, largest first
        firsts = order[np.concatenate([[True], groups.group[order][1:] != groups.group[order][:-1]])]
        for j in firsts:
            g = int(groups.group[j])
            if not groups.floating[g] and act_bytes[j] > 0:
                largest_act[g] = (int(j), float(act_bytes[j]))

    prev_resident: dict[int, float] = {}     # weight code -> on-chip bytes at the end of a segment
    prev_used = 0.0                          # on-chip bytes used by the previous segment
    pair_frac = {}                           # pair index -> (local, shared, remote) bytes
    pair_pre = np.zeros(len(uniq))
    pair_carried = np.zeros(len(uniq))
    spill_rows = {}
    for s in range(n_seg):
        pairs = np.flatnonzero(pair_seg == s)
        gids = np.flatnonzero(groups.seg == s)
        items_of = {int(g): [] for g in gids}
        act_item = {int(g): largest_act[int(g)] for g in gids if int(g) in largest_act} if plan_on else {}
        for g, (_, size) in act_item.items():
            items_of[g].append((ACT_SAVING, size, "~act", ("act", g)))
        for p in pairs:
            if uses[p] >= 2 and plan_on:
                items_of[int(pair_group[p])].append((float(uses[p] - 1), float(pair_size[p]),
                                                     str(weight_names[pair_w[p]]), ("w", int(p))))
        local, shared, remote = _place(items_of, {int(g): (pad * share[g] if plan_on else 0.0)
                                                  for g in gids if not groups.floating[g]},
                                       float(hw.shared_sram_bytes) if plan_on else 0.0)
        used = sum(local.values()) + sum(shared.values()) + sum(remote.values())
        # Loads, carried bytes, prefetch (into what the previous segment leaves free).
        free_prev = max(0.0, total_cap - prev_used) if (hw.mapping.prefetch and s > 0 and plan_on) else 0.0
        now_resident = {}
        for p in pairs[np.argsort(first_op[pairs], kind="stable")]:
            kp = ("w", int(p))
            on = (local.get(kp, 0.0), shared.get(kp, 0.0), remote.get(kp, 0.0))
            pair_frac[int(p)] = on
            res = sum(on)
            carried = min(prev_resident.get(int(pair_w[p]), 0.0), res)
            pair_carried[p] = carried
            now_resident[int(pair_w[p])] = res
            # prefetchable: the part that will stay (multi-use) or the whole weight (single use)
            want = (res - carried) if uses[p] >= 2 else float(pair_size[p])
            take = min(want, free_prev)
            pair_pre[p] = take
            free_prev -= take
        for g, (j, size) in act_item.items():
            on_chip = local.get(("act", g), 0.0)
            spilled = size - on_chip
            if spilled > 0:
                spill[j] += ACT_SAVING * spilled
                spill_rows[g] = spilled
        prev_resident = now_resident
        prev_used = used

    # Per-op bytes from the per-(segment, weight) plan; the uses of pair p, in program order, are
    # wops[by_pair[bounds[p]:bounds[p + 1]]].
    by_pair = np.argsort(inv, kind="stable")
    bounds = np.searchsorted(inv[by_pair], np.arange(len(uniq) + 1))
    for p in range(len(uniq)):
        loc, sh, rem = pair_frac.get(p, (0.0, 0.0, 0.0))
        size = float(pair_size[p])
        res = loc + sh + rem
        streamed = max(size - res, 0.0)
        ops_p = wops[by_pair[bounds[p]:bounds[p + 1]]]
        first = ops_p[0]
        later = ops_p[1:]
        # later uses: on-chip parts at their tiers, the rest streamed
        w_local[later] = loc
        w_shared[later] = sh
        w_remote[later] = rem
        dram_demand[later] += streamed
        resident[ops_p] = res > 0
        source[later] = _source(res, streamed, 0.0, first_use=False)
        # first use: the carried part is on chip; everything else comes from DRAM
        carried = pair_carried[p]
        frac = carried / res if res > 0 else 0.0
        w_local[first] = loc * frac
        w_shared[first] = sh * frac
        w_remote[first] = rem * frac
        from_dram = size - carried
        dram_pre[first] = pair_pre[p]
        dram_demand[first] += from_dram - pair_pre[p]
        source[first] = _source(res, from_dram, pair_pre[p], first_use=True)
        s = int(pair_seg[p])
        nxt_uses = (pair_seg == s + 1) & (pair_w == pair_w[p])
        rows.append({"segment": s, "segment_label": seg_labels[s], "group": groups.label[pair_group[p]],
                     "item": str(weight_names[pair_w[p]]), "kind": "weight", "bytes": size,
                     "uses": int(uses[p]), "local_bytes": loc, "shared_bytes": sh, "remote_bytes": rem,
                     "streamed_bytes_per_use": streamed, "carried_bytes": float(carried),
                     "prefetched_bytes": float(pair_pre[p]), "loaded_bytes": float(res - carried - pair_pre[p])
                     if uses[p] >= 2 else 0.0, "spilled_bytes": 0.0, "first_op": int(first),
                     "evicted_after_segment": -1 if nxt_uses.any() and res > 0 else (s if res > 0 else -1)})
    for g, (j, size) in sorted(largest_act.items()):
        s = int(groups.seg[g])
        sp = float(spill_rows.get(g, 0.0))
        rows.append({"segment": s, "segment_label": seg_labels[s], "group": groups.label[g],
                     "item": f"activations of {groups.label[g]}", "kind": "activation", "bytes": size,
                     "uses": 1, "local_bytes": size - sp, "shared_bytes": 0.0, "remote_bytes": 0.0,
                     "streamed_bytes_per_use": 0.0, "carried_bytes": 0.0, "prefetched_bytes": 0.0,
                     "loaded_bytes": 0.0, "spilled_bytes": sp, "first_op": j, "evicted_after_segment": s})
    dram_demand += spill
    table = pd.DataFrame(rows, columns=list(RESIDENCY_COLUMNS))
    return MemoryPlan(w_local, w_shared, w_remote, dram_pre, dram_demand, spill, source, resident, table)
