"""Simulate an op graph on an accelerator under a precision policy: ``simulate(...) -> SimResult``.

Stages: the graph lowered once (``hwsim.program``: segments, work groups, cost rows; cached on
the graph) -> bytes and precisions of its templates (``hwsim.cost.prepare_ops``; cached per
policy and precision support) -> execution plan (``hwsim.plan``: work groups on cores, what is
on chip) -> time of every cost row (``hwsim.cost.op_times``) -> list schedule of every op with the
DRAM channel (``hwsim.schedule``) -> energy (``hwsim.energy``) -> summary. Per-op and per-phase
tables are built when first read. Compression comes from ``hwsim.compression`` for the model
config.

What a design point costs grows with the distinct rows (a few hundred) except for the schedule
and its phase attribution, one Numba pass over the ops each: about 3-4 ms for the 10 s
paper-scale graph (65k ops; ``benchmarks/bench_dse.py``).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from models.config import ModelConfig, load_config
from models.quant.policy import PrecisionPolicy, check_overrides, load_policy
from models.yamlio import ConfigError, to_dict
from workloads.graph import PHASES, OpGraph

from hwsim import energy as energy_model
from hwsim import plan, streaming
from hwsim.area import area_summary
from hwsim.compression import cached_compression
from hwsim.cost import BOUND_CODE, BOUNDS, UNITS, PreparedOps, op_times, prepare_ops
from hwsim.limits import MAX_RUN_FOLDER_OPS
from hwsim.optable import categorical, expand_templates
from hwsim.program import Program, lower
from hwsim.precision import PREC_NAMES
from hwsim.schedule import N_UNITS, op_rows, phase_latency, remote_outputs, schedule_rows
from hwsim.spec import AcceleratorSpec, load_spec

log = logging.getLogger(__name__)

#: Columns of ``SimResult.ops``, in order.
OP_COLUMNS = ("op", "kind", "phase", "step", "module", "weight", "segment", "group", "core", "cores",
              "unit", "precision", "precision_requested", "start_s", "end_s", "latency_s", "bound_by",
              "macs", "m", "k", "n", "elems", "bytes", "act_bytes", "weight_bytes", "weight_source",
              "resident", "dram_bytes", "prefetch_bytes", "spill_bytes", "sram_bytes", "shared_bytes",
              "ring_bytes", "folded", "compute_s", "fill_drain_s", "engine_s", "sram_s", "shared_s",
              "ring_s", "dram_s", "dispatch_s")

#: Columns of ``SimResult.mapping`` (one row per work group of each segment).
MAPPING_COLUMNS = ("segment", "segment_label", "group", "first_core", "cores", "work_s")


@dataclass
class SimResult:
    """Result of one simulation.

    Attributes:
        ops: one row per op (index ``id``): segment and work group, placement (``core``: the
            first core, ``cores``: how many it runs on), ``unit``, precisions, ``start_s``,
            ``end_s``, ``latency_s``, ``bound_by``, MACs, bytes per memory level at the policy's
            widths, where the weight came from (``weight_source``: resident, prefetched,
            loaded, mixed, streamed), time terms, ``energy_j`` (dynamic) if known.
        phases: one row per phase of ``workloads.graph.PHASES``: ``latency_s`` (share of the
            makespan, see ``hwsim.schedule.phase_latency``; sums to the total), ``busy_s`` (sum
            of op latencies), ``macs``, ``ops``, ``dram_bytes``, ``energy_j``.
        memory: the residency plan, one row per (segment, weight or activation buffer)
            (``hwsim.plan.RESIDENCY_COLUMNS``).
        mapping: the work groups of each segment and their cores (``MAPPING_COLUMNS``).
        dram_busy_s: the DRAM channel's busy intervals, (k, 2) array of [start, end) seconds.
        summary: scalars and small dicts (see ``simulate``).
        hw, policy, config: what was simulated.
        chunks: streaming graphs: one row per chunk (``hwsim.streaming.CHUNK_COLUMNS``); else None.

    The tables are built on first access: a sweep that reads only the summary skips them.
    """

    summary: dict
    hw: AcceleratorSpec
    policy: PrecisionPolicy
    config: ModelConfig | None = None
    graph_meta: dict = field(default_factory=dict)
    dram_busy_s: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))
    chunks: pd.DataFrame | None = None
    _phases: Callable[[], pd.DataFrame] | None = field(default=None, repr=False)
    _memory: Callable[[], pd.DataFrame] | None = field(default=None, repr=False)
    _mapping: Callable[[], pd.DataFrame] | None = field(default=None, repr=False)
    _ops: Callable[[], pd.DataFrame] | None = field(default=None, repr=False)
    _built: dict = field(default_factory=dict, repr=False)

    def _table(self, name: str) -> pd.DataFrame:
        if name not in self._built:
            factory = getattr(self, f"_{name}")
            self._built[name] = factory() if factory is not None else pd.DataFrame()
        return self._built[name]

    @property
    def ops(self) -> pd.DataFrame:
        return self._table("ops")

    @property
    def phases(self) -> pd.DataFrame:
        return self._table("phases")

    @property
    def memory(self) -> pd.DataFrame:
        return self._table("memory")

    @property
    def mapping(self) -> pd.DataFrame:
        return self._table("mapping")

    @property
    def latency_s(self) -> float:
        return self.summary["latency_s"]

    def save(self, out_dir: str | Path, gantt_window: tuple[float, float] | None = None,
             provenance: dict | None = None) -> Path:
        """Write the run folder: ``config.json`` (hw, policy, model, graph meta), ``hw.yaml``,
        ``ops.parquet`` + ``ops.csv``, ``phases.csv``, ``memory.csv``, ``mapping.csv``,
        ``summary.json``, ``trace.json`` (Chrome trace event format), ``gantt.png`` of
        ``gantt_window`` (seconds; default ``hwsim.timeline.default_window``),
        ``breakdown.csv`` + ``breakdown.json`` (``hwsim.breakdown``), ``roofline.csv`` +
        ``roofline.png`` (``hwsim.roofline``), ``provenance.json`` and, streaming, ``chunks.csv``
        (``hwsim.streaming``). The per-op files (all but
        config, hw, phases, memory, mapping, summary and provenance) are written for graphs of
        up to ``hwsim.limits.MAX_RUN_FOLDER_OPS`` ops; ``provenance.json`` says when they were
        left out (``per_op_files``).

        Args:
            provenance: what only the caller knows, written into ``provenance.json`` as given:
                ``hwsim simulate`` passes ``argv`` (the process's command line), ``args`` (its
                parsed arguments), ``version`` and ``git_commit``. ``argv``, ``version`` and
                ``git_commit`` are null when not given. ``provenance.json`` adds ``inputs``
                (model, hw and policy names, ``audio_s``, the graph's meta; their resolved
                contents are ``config.json``), ``config_sha256`` (of ``config.json``) and
                ``created_utc``.
        """
        import hashlib

        import yaml

        from hwsim import breakdown, roofline
        from hwsim.provenance import utc_iso
        from hwsim.timeline import chrome_trace, gantt

        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        resolved = {"hw": to_dict(self.hw), "policy": to_dict(self.policy),
                    "model": to_dict(self.config) if self.config else None, "graph_meta": self.graph_meta}
        config_text = json.dumps(resolved, indent=2, default=str)
        (out / "config.json").write_text(config_text)
        (out / "hw.yaml").write_text(yaml.safe_dump(to_dict(self.hw), sort_keys=False))
        self.phases.to_csv(out / "phases.csv", index=False)
        self.memory.to_csv(out / "memory.csv", index=False)
        self.mapping.to_csv(out / "mapping.csv", index=False)
        (out / "summary.json").write_text(json.dumps(self.summary, indent=2, default=float))
        if self.chunks is not None:
            streaming.write(self.chunks, out)
        n_ops = int(self.summary.get("ops", 0))
        if n_ops <= MAX_RUN_FOLDER_OPS:
            ops = self.ops.reset_index()
            ops.to_parquet(out / "ops.parquet", index=False)
            ops.to_csv(out / "ops.csv", index=False)
            (out / "trace.json").write_text(json.dumps(chrome_trace(self)))
            if len(ops):
                gantt(self, out / "gantt.png", gantt_window)
            breakdown.write(self, out)
            roofline.write(self, out)
            per_op = "written"
        else:
            per_op = (f"left out: {n_ops:,} ops > hwsim.limits.MAX_RUN_FOLDER_OPS ({MAX_RUN_FOLDER_OPS:,}); "
                      "SimResult.ops has them in Python")
            log.warning("%s: per-op files (ops, trace, gantt, breakdown, roofline) %s", out, per_op)
        record = {"argv": None, "version": None, "git_commit": None, **(provenance or {}),
                  "per_op_files": per_op,
                  "inputs": {"model": self.config.name if self.config else self.summary.get("model"),
                             "hw": self.hw.name, "precision": self.policy.name,
                             "audio_s": self.summary.get("audio_s"), "graph_meta": self.graph_meta},
                  "config_sha256": hashlib.sha256(config_text.encode()).hexdigest(),
                  "created_utc": utc_iso()}
        (out / "provenance.json").write_text(json.dumps(record, indent=2, default=str))
        return out


def _resolve(graph: OpGraph, hw, policy, config):
    hw = load_spec(hw)
    if not isinstance(policy, PrecisionPolicy):
        policy = load_policy(policy)
    if config is not None and not isinstance(config, ModelConfig):
        config = load_config(config)
    if config is None and graph.meta.get("model"):
        try:
            config = load_config(graph.meta["model"])
        except ConfigError as exc:
            log.warning("graph meta names model %r but it cannot be loaded (%s); compression and "
                        "exact weight sizes unavailable", graph.meta["model"], exc)
    if config is not None:
        check_overrides(policy, config)
    return hw, policy, config


def simulate(graph: OpGraph, hw: AcceleratorSpec | str | Path, policy: PrecisionPolicy | str | Path,
             audio_s: float, config: ModelConfig | str | Path | None = None) -> SimResult:
    """Cost and schedule ``graph`` on ``hw`` under ``policy``.

    Args:
        graph: the op graph (traced or analytic).
        hw: AcceleratorSpec, preset name or YAML path.
        policy: PrecisionPolicy, policy name or YAML path.
        audio_s: seconds of audio the graph processes (for the RTF).
        config: ModelConfig (or name/path) for exact weight sizes and compression; default: the
            preset named by ``graph.meta["model"]`` if any.

    Returns:
        SimResult whose ``summary`` has ``latency_s``, ``rtf`` (= latency_s / audio_s),
        ``audio_s``, ``macs``, ``ops``, ``weight_bytes``, ``fp32_weight_bytes``,
        ``compression_x`` (None without a config), ``phases`` {phase: latency_s} (all six),
        ``precision_fallbacks`` {"unit:requested->effective": ops}, ``resident_weights``
        (weights at least partly on chip in some segment), ``resident_weight_bytes`` (their
        on-chip bytes, summed over segments), ``dram_bytes`` and ``dram_bytes_by_source``
        {weight_load, weight_prefetch, weight_stream, activation_spill}, ``segments``,
        ``utilization`` {matrix, sfu, vector, select: busy time / (latency * cores); mac: macs /
        (latency * peak MACs/s at the most used precision)}, ``split_ops``, ``bound_by``
        {label: ops}, ``energy_j`` and ``energy_breakdown_j`` {component: J} (when the spec has
        energy costs; the components sum to ``energy_j``), ``area_mm2`` and
        ``area_breakdown_mm2`` {component: mm²} (when it has area coefficients: ``hwsim.area``),
        and for a streaming graph ``streaming`` (``hwsim.streaming``: per-chunk delays, final
        latency, whether it keeps up; ``latency_s`` is then the end of the last op counted from
        the start of the audio, and ``phases`` sum to it less ``streaming["waiting_s"]``, the
        idle time waiting for audio).

    Raises:
        CostError: ops whose kind has no cost function (names and counts); missing energy or
            weight data.
        ValueError: audio_s <= 0.
    """
    if not audio_s > 0:
        raise ValueError(f"audio_s must be > 0, got {audio_s}")
    hw, policy, config = _resolve(graph, hw, policy, config)
    prog = lower(graph)
    # The compression table sizes every parameter under the policy: the cost model reads the same.
    comp = cached_compression(config, policy) if config is not None else None
    tprep, rows = _prepared(prog, hw, policy, config, comp)
    return _run(prog, tprep, rows, hw, policy, config, comp, float(audio_s), dict(graph.meta))


def _precision_support(hw: AcceleratorSpec) -> tuple:
    """What of the spec ``prepare_ops`` reads (``hwsim.precision.op_precision``): which precisions
    each unit supports and where select ops run."""
    c = hw.core
    return (tuple(c.matrix.macs_per_pe_per_cycle), tuple(c.sfu.elems_per_cycle),
            tuple(c.vector.elems_per_cycle), c.select.unit)


#: Plans and core allocations remembered per policy (a sweep's accelerators repeat them).
_CACHED_PLANS = 512


@dataclass(frozen=True)
class _Rows:
    """The cost rows of a program under one policy (``hwsim.program``): what does not depend
    on the accelerator beyond its precision support. Base rows, then one row per special op
    (``special``: the first use of every (segment, weight) pair, and each non-floating group's
    largest activation buffer, ``act_op``/``act_bytes`` per group, ties to the earliest op)."""

    base: PreparedOps
    prep: PreparedOps
    act_op: np.ndarray
    act_bytes: np.ndarray
    special: np.ndarray
    special_rows: np.ndarray
    row_t: np.ndarray
    row_g: np.ndarray
    count: np.ndarray
    pair: np.ndarray
    first_use: np.ndarray
    spill_of: np.ndarray
    plans: dict = field(default_factory=dict, compare=False, repr=False)         # _memory_plan
    allocations: dict = field(default_factory=dict, compare=False, repr=False)   # _allocation


def _rows(prog: Program, tprep: PreparedOps) -> _Rows:
    groups = prog.groups
    G = len(groups.label)
    rt, rg, rc = prog.row_template, prog.row_group, prog.row_count
    R0 = len(rt)
    base = tprep.take(rt)
    act_op = np.full(G, -1, dtype=np.int64)
    act_size = np.zeros(G)
    if R0:
        order = np.lexsort((prog.row_first_op, -base.act_bytes, rg))
        firsts = order[np.concatenate([[True], rg[order][1:] != rg[order][:-1]])]
        for r in firsts:
            g = int(rg[r])
            if not groups.floating[g] and base.act_bytes[r] > 0:
                act_op[g], act_size[g] = prog.row_first_op[r], base.act_bytes[r]
    pairs = prog.pairs
    special = np.union1d(pairs.first_op, act_op[act_op >= 0]).astype(np.int64)
    sp_base = prog.base_row[special].astype(np.int64)
    row_t = np.concatenate([rt, rt[sp_base]])
    row_g = np.concatenate([rg, rg[sp_base]])
    count = np.concatenate([rc - np.bincount(sp_base, minlength=R0), np.ones(len(special), dtype=np.int64)])
    row_seg = groups.seg[row_g]
    w_t = prog.weight[row_t]
    pair = np.where(w_t >= 0, pairs.index(row_seg, np.maximum(w_t, 0), len(prog.weight_names)), -1) \
        if len(pairs.seg) else np.full(len(row_t), -1)
    first_use = np.concatenate([np.zeros(R0, dtype=bool), np.isin(special, pairs.first_op)])
    spill_of = np.full(len(row_t), -1, dtype=np.int64)
    for g in np.flatnonzero(act_op >= 0):
        spill_of[R0 + np.searchsorted(special, act_op[g])] = g
    return _Rows(base, tprep.take(row_t), act_op, act_size, special, R0 + np.arange(len(special), dtype=np.int64),
                 row_t, row_g, count, pair, first_use, spill_of)


def _prepared(prog: Program, hw: AcceleratorSpec, policy: PrecisionPolicy, config: ModelConfig | None,
              comp) -> tuple[PreparedOps, _Rows]:
    """``prepare_ops`` of the program's templates and the cost rows, remembered per (policy,
    config, precision support): the accelerators of a sweep mostly share them."""
    key = _precision_support(hw)
    cache = prog.cache.setdefault("prepared", [])
    for k, p, c, prep, rows in cache:
        if k == key and (p is policy or p == policy) and (c is config or c == config):
            return prep, rows
    prep = prepare_ops(prog.templates, hw, policy, config, weight_sizes=comp.sizes if comp else None,
                       counts=prog.t_counts)
    rows = _rows(prog, prep)
    cache.insert(0, (key, policy, config, prep, rows))
    del cache[8:]
    return prep, rows


def _allocation(prog: Program, rows: _Rows, hw: AcceleratorSpec):
    """Work per group (single-core seconds with every weight on chip, so that the allocation
    does not move with memory sizes or DRAM bandwidth) and its cores (``hwsim.plan.allocate_cores``
    per segment): (work, first core, cores, scratchpad share) per group. Remembered per policy
    for the last few (core, clock, cores, spatial) settings: all it reads of the accelerator."""
    key = (repr(hw.core), hw.frequency_hz, hw.cores, hw.mapping.spatial)
    hit = rows.allocations.get(key)
    if hit is None:
        groups = prog.groups
        G = len(groups.label)
        base = rows.base
        R0 = len(prog.row_group)
        ones, zeros = np.ones(R0), np.zeros(R0)
        proxy = op_times(hw, base, ones, base.w_bytes, zeros, zeros).latency_s
        work = np.bincount(prog.row_group, weights=proxy * prog.row_count, minlength=G) if R0 else np.zeros(G)
        g_c0 = np.zeros(G, dtype=np.int64)
        g_nc = np.ones(G, dtype=np.int64)
        g_share = np.zeros(G)
        bounds = np.searchsorted(groups.seg, np.arange(len(prog.seg_labels) + 1))
        for s in range(len(prog.seg_labels)):
            gi = np.arange(bounds[s], bounds[s + 1])
            c0, nc, share = plan.allocate_cores(work[gi], groups.floating[gi], hw.cores, hw.mapping.spatial)
            g_c0[gi], g_nc[gi], g_share[gi] = c0, nc, share
        hit = rows.allocations[key] = (work, g_c0, g_nc, g_share)
        while len(rows.allocations) > _CACHED_PLANS:
            rows.allocations.pop(next(iter(rows.allocations)))
    return hit


def _memory_plan(prog: Program, tprep: PreparedOps, rows: _Rows, share: np.ndarray, hw: AcceleratorSpec):
    """``hwsim.plan.plan_memory`` and the rows' bytes by source, remembered per policy for the
    last few (scratchpad shares, capacities, residency and prefetch settings): all the plan
    reads of the accelerator, so a sweep over DRAM bandwidth or dispatch cost plans once."""
    key = (share.tobytes(), hw.mapping.residency, hw.mapping.prefetch, hw.cores, hw.core.scratchpad_bytes,
           hw.shared_sram_bytes)
    hit = rows.plans.get(key)
    if hit is None:
        pairs = prog.pairs
        mem = plan.plan_memory(pairs=pairs, size=tprep.w_bytes[prog.templates_of(pairs.first_op)],
                               seg_labels=prog.seg_labels, groups=prog.groups, share=share,
                               weight_names=prog.weight_names, act_op=rows.act_op, act_bytes=rows.act_bytes,
                               hw=hw, preloaded=prog.preloaded)
        hit = rows.plans[key] = (mem, mem.bytes_of(rows.pair, rows.first_use, rows.spill_of))
        while len(rows.plans) > _CACHED_PLANS:
            rows.plans.pop(next(iter(rows.plans)))
    return hit


def _hyp_extra_s(hw: AcceleratorSpec, meta: dict, row_phase: np.ndarray, count: np.ndarray) -> float:
    """Seconds added to each search-phase op: ``core.hyp_overhead_cycles`` x the hypotheses the
    search expanded (``meta["search"]["hyps"]``, summed over its steps) over the search ops."""
    if not hw.core.hyp_overhead_cycles:
        return 0.0
    hyps = float((meta.get("search") or {}).get("hyps", 0))
    ops = float(np.sum(count[row_phase == PHASES.index("search")]))
    if hyps <= 0 or ops <= 0:
        return 0.0
    return hw.core.hyp_overhead_cycles / hw.frequency_hz * hyps / ops


def _run(prog: Program, tprep: PreparedOps, rows: _Rows, hw: AcceleratorSpec, policy: PrecisionPolicy,
         config: ModelConfig | None, comp, audio_s: float, meta: dict) -> SimResult:
    """One design point of a lowered graph (``hwsim.program``): everything per cost row, then
    the schedule per op."""
    n = prog.n_ops
    groups = prog.groups
    seg_labels = prog.seg_labels

    # Execution plan: work groups on cores, then memory.
    work, g_c0, g_nc, g_share = _allocation(prog, rows, hw)
    pairs = prog.pairs
    mem, mb = _memory_plan(prog, tprep, rows, g_share, hw)
    special, special_rows = rows.special, rows.special_rows
    row_t, row_g, count, prep = rows.row_t, rows.row_g, rows.count, rows.prep
    row_seg = groups.seg[row_g]
    r_c0, r_nc = g_c0[row_g], g_nc[row_g]
    split = prep.is_gemm & (r_nc > 1) & (prep.macs >= hw.mapping.split_min_macs) & ~groups.floating[row_g]
    g_op = np.where(split, r_nc, 1)
    row_phase = prog.t_phase[row_t]
    times = op_times(hw, prep, g_op, mb["w_local"], mb["w_shared"], mb["w_remote"], phase=row_phase,
                     search_extra_s=_hyp_extra_s(hw, meta, row_phase, count))

    bw = hw.dram_bw_bytes_per_s
    start, end, core, waited, busy_start, busy_end, busy_ph, unit_s, ring_ph = schedule_rows(
        prog.base_row, special, special_rows, times.unit, times.latency_s, r_c0, r_nc, split, times.xfer_s,
        mb["dram_pre"] / bw, mb["dram_demand"] / bw, hw.dram_latency_s, times.dispatch_s, row_seg, prog.ptr,
        prog.deps, hw.cores, count, row_phase, g_op, prep.out_bytes, len(PHASES), prog.release_op, prog.release_s,
        lane=None if hw.core.concurrent_units else np.zeros_like(times.unit))
    latency = float(end.max()) if n else 0.0
    bound_counts = np.bincount(times.bound, weights=count - waited, minlength=len(BOUNDS)).astype(np.int64)
    bound_counts[BOUND_CODE["dram"]] += int(waited.sum())
    dram_bytes = mb["dram_pre"] + mb["dram_demand"]
    unit_names = np.asarray(UNITS, dtype=object)[times.unit]
    row_e = energy_model.op_energy(
        hw, macs=prep.macs, precision=np.asarray(PREC_NAMES, dtype=object)[prep.eff], is_gemm=prep.is_gemm,
        sram_bytes=times.sram_bytes, dram_bytes=dram_bytes, shared_bytes=mb["w_shared"],
        ring_bytes=times.ring_bytes, unit=unit_names, work=prep.work)

    def per_phase_rows(values) -> np.ndarray:
        return np.bincount(row_phase, weights=values * count, minlength=len(PHASES))

    share = phase_latency(start, end, row_phase, len(PHASES), base_row=prog.base_row,
                          concurrency=hw.cores * N_UNITS, release_op=prog.release_op, release_s=prog.release_s)
    waiting_s = float(share[len(PHASES)]) if len(share) > len(PHASES) else 0.0
    share = share[:len(PHASES)]
    phase_data = {
        "phase": list(PHASES),
        "latency_s": share,
        "busy_s": busy_ph,
        "macs": [int(v) for v in per_phase_rows(prep.macs)],
        "ops": [int(v) for v in np.bincount(row_phase, weights=count, minlength=len(PHASES))],
        "dram_bytes": per_phase_rows(dram_bytes),
    }
    if row_e is not None:
        row_total = sum(row_e.values())
        phase_data["energy_j"] = per_phase_rows(row_total) + ring_ph * hw.energy.inter_core_byte_j

    macs = int(prog.t_macs[row_t] @ count)
    busy = {name: float(unit_s[u] / (latency * hw.cores)) if latency > 0 else 0.0
            for u, name in enumerate(UNITS)}
    gemm_macs = np.bincount(prep.eff[prep.is_gemm], weights=(prep.macs * count)[prep.is_gemm],
                            minlength=len(PREC_NAMES))
    gemm_ops = np.bincount(prep.eff[prep.is_gemm], weights=count[prep.is_gemm], minlength=len(PREC_NAMES))
    if gemm_ops.any() and latency > 0:
        most = int(np.argmax(np.where(gemm_ops > 0, gemm_macs, -1.0)))
        busy["mac"] = float(macs / (latency * hw.peak_macs_per_s(PREC_NAMES[most])))
    onchip = mem.onchip
    src = mb["source"]
    loaded = (src == plan.SOURCE_CODE["loaded"]) | (src == plan.SOURCE_CODE["prefetched"])
    by_source = {
        "weight_load": float(((mb["dram_demand"] - mb["spill"]) * count)[loaded].sum()),
        "weight_prefetch": float(mb["dram_pre"] @ count),
        "weight_stream": 0.0,
        "activation_spill": float(mb["spill"] @ count),
    }
    total_dram = float(dram_bytes @ count)
    by_source["weight_stream"] = float(total_dram - sum(by_source.values()))
    summary = {
        "model": config.name if config else meta.get("model"),
        "hw": hw.name,
        "precision": policy.name,
        "audio_s": audio_s,
        "latency_s": latency,
        "rtf": latency / audio_s,
        "macs": macs,
        "ops": int(n),
        "phases": {p: float(v) for p, v in zip(PHASES, share)},
        "precision_fallbacks": tprep.fallbacks,
        "resident_weights": int(len(np.unique(pairs.weight[onchip > 0]))),
        "resident_weight_bytes": float(onchip.sum()),
        "dram_bytes": total_dram,
        "dram_bytes_by_source": by_source,
        "segments": len(seg_labels),
        "utilization": busy,
        "split_ops": int(split.astype(np.int64) @ count),
        "bound_by": {BOUNDS[int(c)]: int(bound_counts[c]) for c in sorted(
            np.flatnonzero(bound_counts), key=lambda c: (-bound_counts[c], c))},
        "weight_bytes": None, "fp32_weight_bytes": None, "compression_x": None,
    }
    if comp is not None:
        summary.update(weight_bytes=comp.weight_bytes, fp32_weight_bytes=comp.fp32_weight_bytes,
                       compression_x=comp.compression_x)
    if row_e is not None:
        parts = {c: float(v @ count) for c, v in row_e.items()}
        parts["inter_core"] += float(ring_ph.sum() * hw.energy.inter_core_byte_j)
        parts = {c: parts[c] for c in energy_model.COMPONENTS if c != "static"}
        parts["static"] = float(hw.energy.static_w * latency)
        summary["energy_breakdown_j"] = parts
        summary["energy_j"] = float(sum(parts.values()))
    summary.update(area_summary(hw))
    chunks = None
    if len(prog.release_op):
        chunks = streaming.chunk_table(start, end, prog.release_op, prog.release_s)
        summary["streaming"] = streaming.summary(chunks, float(meta.get("streaming", {}).get("chunk_s", 0.0)),
                                                 latency, audio_s)
        summary["streaming"]["waiting_s"] = waiting_s
    if tprep.fallbacks:
        log.info("precision fallbacks on %s: %s", hw.name, tprep.fallbacks)

    def ops_frame() -> pd.DataFrame:
        table = expand_templates(prog.templates, prog.code, prog.step)
        group_names = np.array([f"{seg_labels[s]}/{lab or '*'}" for s, lab in zip(groups.seg, groups.label)],
                               dtype=object)
        take = op_rows(prog.base_row, special, special_rows)
        r_dram = dram_bytes[take]
        ring_out = remote_outputs(prog.base_row, r_c0, r_nc, split, core, prog.ptr, prog.deps) \
            * prep.out_bytes[take]
        waited_op = end > start + times.latency_s[take]
        ring = times.ring_bytes[take] + ring_out
        cols = {
            "segment": row_seg[take],
            "group": categorical(group_names[row_g[take]]) if n else pd.Categorical([]),
            "core": core.astype(np.int64), "cores": g_op[take],
            "unit": pd.Categorical.from_codes(times.unit[take], categories=list(UNITS)),
            "precision": pd.Categorical.from_codes(prep.eff[take], categories=list(PREC_NAMES)),
            "precision_requested": pd.Categorical.from_codes(prep.req[take], categories=list(PREC_NAMES)),
            "start_s": start, "end_s": end, "latency_s": end - start,
            "bound_by": pd.Categorical.from_codes(np.where(waited_op, BOUND_CODE["dram"], times.bound[take]),
                                                  categories=list(BOUNDS)),
            "act_bytes": prep.act_bytes[take], "weight_bytes": prep.w_bytes[take],
            "weight_source": pd.Categorical.from_codes(src[take], categories=list(plan.WEIGHT_SOURCES)),
            "resident": mb["resident"][take], "dram_bytes": r_dram, "prefetch_bytes": mb["dram_pre"][take],
            "spill_bytes": mb["spill"][take], "sram_bytes": times.sram_bytes[take],
            "shared_bytes": mb["w_shared"][take], "ring_bytes": ring,
            "bytes": (times.sram_bytes + mb["w_shared"] + mb["w_remote"])[take] + r_dram,
            "folded": times.folded[take], "compute_s": times.compute_s[take],
            "fill_drain_s": times.fill_drain_s[take], "engine_s": times.engine_s[take],
            "sram_s": times.sram_s[take], "shared_s": times.shared_s[take], "ring_s": times.ring_s[take],
            "dram_s": np.where(r_dram > 0, r_dram / bw + hw.dram_latency_s, 0.0),
            "dispatch_s": times.dispatch_s[take],
        }
        if row_e is not None:
            cols["energy_j"] = row_total[take] + ring_out * hw.energy.inter_core_byte_j
        extra = pd.DataFrame(cols, index=table.index)
        return pd.concat([table[[c for c in OP_COLUMNS if c in table.columns and c not in cols]], extra],
                         axis=1)[list(OP_COLUMNS) + (["energy_j"] if row_e is not None else [])]

    def mapping_frame() -> pd.DataFrame:
        return pd.DataFrame({
            "segment": groups.seg, "segment_label": [seg_labels[s] for s in groups.seg],
            "group": [lab or "*" for lab in groups.label], "first_core": g_c0, "cores": g_nc, "work_s": work,
        }, columns=list(MAPPING_COLUMNS))

    return SimResult(summary, hw, policy, config, meta, np.stack([busy_start, busy_end], axis=1), chunks,
                     _phases=lambda: pd.DataFrame(phase_data), _memory=lambda: mem.residency.copy(),
                     _mapping=mapping_frame, _ops=ops_frame)
