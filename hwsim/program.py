"""The graph lowered for the simulator, once per graph: segments, work groups and cost rows.

Everything here depends on the graph alone (not on the accelerator or the policy), so a sweep
that simulates one graph on many accelerators lowers it once (``lower(graph)`` is cached on the
graph, ``OpGraph.memo``).

**Cost rows.** The ops of a decode repeat a few hundred distinct records (``OpGraph.templates``)
in a few dozen work groups, and two ops of the same template in the same group cost the same on
any accelerator: same shape and precision, same cores, same weight tier, unless one of them is
special for the memory plan. So the simulator costs *rows*, not ops: one base row per (template,
work group), plus one row per special op of a design point (the first use of each (segment,
weight) pair, which carries the weight's load, and each group's largest activation buffer, which
carries its spill). The scheduler and every per-op table read an op's costs through its row
(``hwsim.schedule.schedule_rows``). A 10 s paper-scale graph has 65,079 ops and about 300 base
rows; per-op state is a row index, the schedule's start and end times and the core.

**Streaming graphs** (``workloads.streaming``, ``meta["streaming"]`` with more than one chunk)
run as one steady-state segment, ``stream``: every layer of the encoder and every network of the
search is used at every chunk, so what stays on chip is decided once for the whole stream, as a
compiler of a streaming pipeline would, and it is on chip before the audio starts (``preloaded``:
a serving chip loads its model once, not per utterance [assumption]). Each chunk's ops are
released when its audio has arrived (``release_op``, ``release_s``). A one-chunk streaming graph
is the offline graph, planned and segmented as such and released at the end of the audio,
unless it is one chunk of a steady stream (``meta["streaming"]["steady"]``: ``hwsim.serve``'s
batches), planned as the stream.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from numba import njit

from workloads.graph import PHASES, OpGraph

from hwsim.optable import template_table
from hwsim.plan import Groups, Pairs, segments_of, work_group

PHASE_INDEX = {p: i for i, p in enumerate(PHASES)}


@njit(cache=True, nogil=True)
def _first_index(key, k):
    """First position of each value 0..k-1 in ``key`` (len(key) where absent)."""
    n = len(key)
    out = np.full(k, n, dtype=np.int64)
    for i in range(n - 1, -1, -1):
        out[key[i]] = i
    return out


@njit(cache=True, nogil=True)
def _rows(seg, code, t_lab, n_seg, L, T):
    """Work groups (present (segment, label) pairs, numbered in sorted order: ``gid_of``) and
    base rows (present (group, template) pairs: ``row_id``, ``count``)."""
    gid_of = np.full(n_seg * L, -1, dtype=np.int64)
    for i in range(len(code)):
        gid_of[seg[i] * L + t_lab[code[i]]] = 0
    g = 0
    for j in range(len(gid_of)):
        if gid_of[j] == 0:
            gid_of[j] = g
            g += 1
    count = np.zeros(max(g, 1) * T, dtype=np.int64)
    for i in range(len(code)):
        count[gid_of[seg[i] * L + t_lab[code[i]]] * T + code[i]] += 1
    row_id = np.full(len(count), -1, dtype=np.int64)
    r = 0
    for j in range(len(count)):
        if count[j] > 0:
            row_id[j] = r
            r += 1
    return gid_of, row_id, count


@njit(cache=True, nogil=True)
def _base_rows(seg, code, t_lab, gid_of, row_id, L, T):
    out = np.empty(len(code), dtype=np.int32)
    for i in range(len(code)):
        out[i] = row_id[gid_of[seg[i] * L + t_lab[code[i]]] * T + code[i]]
    return out


@dataclass(frozen=True)
class Program:
    """A graph lowered for the simulator (see the module docstring).

    Attributes:
        templates: ``hwsim.optable.template_table`` of the graph (one row per template).
        t_counts: ops per template.
        t_phase: ``PHASES`` index per template. t_macs: MACs per template (int64).
        seg_labels: label of each segment (``hwsim.plan.segments``).
        groups: the work groups (``hwsim.plan.Groups``; ``row_group`` indexes them).
        base_row: the base row of every op (int32).
        row_template, row_group, row_count, row_first_op: per base row.
        weight: planned GEMM weight code per template (-1 = none), into ``weight_names``.
        weight_names: the templates' weight names.
        pairs: the (segment, weight) uses (``hwsim.plan.Pairs``).
        code, step: per op, its template and step (``OpGraph.code``, ``OpGraph.step``).
        ptr, deps: producers in CSR form (``OpGraph.edge_arrays``).
        release_op, release_s: streaming graphs: first op of each chunk and its release time
            (the chunk's arrival); empty offline.
        preloaded: the plan's on-chip weights are there before the first op (streaming).
        cache: what callers derive from the program per policy (``hwsim.simulate``).
    """

    templates: pd.DataFrame
    t_counts: np.ndarray
    t_phase: np.ndarray
    t_macs: np.ndarray
    seg_labels: list[str]
    groups: Groups
    base_row: np.ndarray
    row_template: np.ndarray
    row_group: np.ndarray
    row_count: np.ndarray
    row_first_op: np.ndarray
    weight: np.ndarray
    weight_names: np.ndarray
    pairs: Pairs
    code: np.ndarray
    step: np.ndarray
    ptr: np.ndarray
    deps: np.ndarray
    release_op: np.ndarray
    release_s: np.ndarray
    preloaded: bool
    cache: dict = field(default_factory=dict, compare=False, repr=False)

    def templates_of(self, ops: np.ndarray) -> np.ndarray:
        """Template code of the given op ids."""
        return self.row_template[self.base_row[ops]]

    @property
    def n_ops(self) -> int:
        return len(self.base_row)



def lower(graph: OpGraph) -> Program:
    """The graph's ``Program`` (cached on the graph)."""
    return graph.memo("hwsim.program", _lower)


def _lower(graph: OpGraph) -> Program:
    tt = template_table(graph)
    code = graph.code
    n, T = len(code), len(tt)
    t_counts = np.bincount(code, minlength=T).astype(np.int64)
    phases = tt["phase"].astype(str).to_numpy()
    modules = tt["module"].astype(str).to_numpy()
    t_phase = np.array([PHASE_INDEX[p] for p in phases], dtype=np.int64)

    stream = graph.meta.get("streaming") or {}
    release_op = np.asarray(stream.get("first_op", []), dtype=np.int64)
    release_s = np.asarray(stream.get("arrival_s", []), dtype=np.float64)
    if len(release_op) != len(release_s) or (len(release_op) and (release_op[0] != 0 or np.any(
            np.diff(release_op) < 0) or release_op[-1] > n or np.any(np.diff(release_s) < 0))):
        raise ValueError("graph meta 'streaming' needs first_op (non-decreasing, from 0) and arrival_s "
                         "(non-decreasing) of equal length, one per chunk")
    preloaded = len(release_op) > 1 or bool(stream.get("steady"))
    if preloaded:
        seg, seg_labels = np.zeros(n, dtype=np.int32), ["stream"]
    else:
        seg, seg_labels = segments_of(code, list(phases), list(modules))
    n_seg = max(len(seg_labels), 1)

    # Work groups: (segment, label) in sorted order; floating unless the group reads a weight.
    is_gemm = (tt["kind"] == "gemm").to_numpy()
    wcat = tt["weight"].cat
    weight_names = np.asarray(wcat.categories, dtype=object)
    wcode = wcat.codes.to_numpy().astype(np.int64)
    nonempty = np.array([w != "" for w in weight_names], dtype=bool)
    weight = np.where(is_gemm & (nonempty[wcode] if T else np.zeros(0, dtype=bool)), wcode, -1)
    t_label = [work_group(m) for m in modules]
    uniq_labels = sorted(set(t_label)) or [""]
    L = len(uniq_labels)
    t_lab = np.array([uniq_labels.index(x) for x in t_label], dtype=np.int64)
    gid_of, row_id, row_count = _rows(seg, code, t_lab, n_seg, L, max(T, 1))
    gcombo = np.flatnonzero(gid_of >= 0)
    g_seg = gcombo // L
    g_label = [uniq_labels[int(c % L)] for c in gcombo]
    G = len(g_label)
    rows = np.flatnonzero(row_id >= 0)
    base_row = _base_rows(seg, code, t_lab, gid_of, row_id, L, max(T, 1))
    del seg
    row_group = rows // max(T, 1)
    row_template = rows % max(T, 1)
    row_count = row_count[rows]
    row_first_op = _first_index(base_row, len(rows))
    has_w = np.bincount(row_group, weights=(weight[row_template] >= 0).astype(np.float64), minlength=G) > 0
    groups = Groups(g_seg.astype(np.int64), g_label,
                    np.array([x == "" for x in g_label], dtype=bool) & ~has_w)

    # (segment, weight) pairs over the weighted GEMMs.
    nW = max(len(weight_names), 1)
    wrow = np.flatnonzero(weight[row_template] >= 0)
    pkey = g_seg[row_group[wrow]] * nW + weight[row_template[wrow]]
    uniq = np.unique(pkey)
    uses = np.zeros(len(uniq), dtype=np.int64)
    np.add.at(uses, np.searchsorted(uniq, pkey), row_count[wrow])
    first = np.full(len(uniq), n, dtype=np.int64)
    np.minimum.at(first, np.searchsorted(uniq, pkey), row_first_op[wrow])
    pairs = Pairs(uniq // nW, uniq % nW, uses, first, row_group[base_row[first]] if len(first) else first)
    ptr, deps = graph.edge_arrays()
    return Program(tt, t_counts, t_phase, tt["macs"].to_numpy(np.int64), seg_labels, groups, base_row,
                   row_template, row_group, row_count, row_first_op, weight, weight_names, pairs, code,
                   graph.step, ptr, deps, release_op, release_s, preloaded)
