"""Simulate an op graph on an accelerator under a precision policy: ``simulate(...) -> SimResult``.

Stages: op table (``hwsim.optable.op_table``) -> bytes and precisions (``hwsim.cost.prepare_ops``)
-> execution plan (``hwsim.plan``: segments, work groups on cores, what is on chip) -> per-op
time (``hwsim.cost.op_times``) -> list schedule with the DRAM channel (``hwsim.schedule``) ->
energy (``hwsim.energy``) -> tables and summary. Compression comes from ``hwsim.compression``
for the model config.
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
from models.quant.policy import PrecisionPolicy, load_policy
from models.yamlio import ConfigError, to_dict
from workloads.graph import PHASES, OpGraph

from hwsim import energy as energy_model
from hwsim import plan
from hwsim.compression import compression
from hwsim.cost import BOUND_CODE, BOUNDS, PHASE_CODE, UNITS, op_times, prepare_ops
from hwsim.optable import categorical, op_table
from hwsim.precision import PREC_NAMES
from hwsim.schedule import list_schedule, phase_latency
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
    """

    phases: pd.DataFrame
    summary: dict
    hw: AcceleratorSpec
    policy: PrecisionPolicy
    config: ModelConfig | None = None
    graph_meta: dict = field(default_factory=dict)
    memory: pd.DataFrame = field(default_factory=pd.DataFrame)
    mapping: pd.DataFrame = field(default_factory=pd.DataFrame)
    dram_busy_s: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))
    _ops_factory: Callable[[], pd.DataFrame] | None = field(default=None, repr=False)
    _ops: pd.DataFrame | None = field(default=None, repr=False)

    @property
    def ops(self) -> pd.DataFrame:
        """The per-op table (built on first access: a sweep that reads only the summary skips it)."""
        if self._ops is None:
            self._ops = self._ops_factory() if self._ops_factory is not None else pd.DataFrame()
        return self._ops

    @property
    def latency_s(self) -> float:
        return self.summary["latency_s"]

    def save(self, out_dir: str | Path, gantt_window: tuple[float, float] | None = None) -> Path:
        """Write the run folder: ``config.json`` (hw, policy, model, graph meta), ``hw.yaml``,
        ``ops.parquet`` + ``ops.csv``, ``phases.csv``, ``memory.csv``, ``mapping.csv``,
        ``summary.json``, ``trace.json`` (Chrome trace event format) and ``gantt.png`` of
        ``gantt_window`` (seconds; default ``hwsim.timeline.default_window``)."""
        from hwsim.timeline import chrome_trace, gantt

        import yaml

        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        resolved = {"hw": to_dict(self.hw), "policy": to_dict(self.policy),
                    "model": to_dict(self.config) if self.config else None, "graph_meta": self.graph_meta}
        (out / "config.json").write_text(json.dumps(resolved, indent=2, default=str))
        (out / "hw.yaml").write_text(yaml.safe_dump(to_dict(self.hw), sort_keys=False))
        ops = self.ops.reset_index()
        ops.to_parquet(out / "ops.parquet", index=False)
        ops.to_csv(out / "ops.csv", index=False)
        self.phases.to_csv(out / "phases.csv", index=False)
        self.memory.to_csv(out / "memory.csv", index=False)
        self.mapping.to_csv(out / "mapping.csv", index=False)
        (out / "summary.json").write_text(json.dumps(self.summary, indent=2, default=float))
        (out / "trace.json").write_text(json.dumps(chrome_trace(self)))
        if len(self.ops):
            gantt(self, out / "gantt.png", gantt_window)
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
        energy costs; the components sum to ``energy_j``).

    Raises:
        CostError: ops whose kind has no cost function (names and counts); missing energy or
            weight data.
        ValueError: audio_s <= 0.
    """
    if not audio_s > 0:
        raise ValueError(f"audio_s must be > 0, got {audio_s}")
    hw, policy, config = _resolve(graph, hw, policy, config)
    table = graph.memo("hwsim.op_table", op_table)
    ptr, deps = graph.edge_arrays()
    # The compression table sizes every parameter under the policy: the cost model reads the same.
    comp = compression(config, policy) if config is not None else None
    sizes = dict(zip(comp.tensors["name"], comp.tensors["bytes"].astype(int))) if comp is not None else None
    prep = prepare_ops(table, hw, policy, config, weight_sizes=sizes)
    table = prep.table
    n = len(table)

    # Execution plan: segments, work groups on cores (from single-core times with every weight
    # on chip, so that the allocation does not move with memory sizes), memory.
    seg, seg_labels = plan.segments(table)
    groups = plan.work_groups(table, seg, prep.weight >= 0)
    ones = np.ones(n)
    zeros = np.zeros(n)
    proxy = op_times(hw, prep, ones, prep.w_bytes, zeros, zeros).latency_s
    work = np.bincount(groups.group, weights=proxy, minlength=len(groups.label)) if n else np.zeros(0)
    g_c0 = np.zeros(len(groups.label), dtype=np.int64)
    g_nc = np.ones(len(groups.label), dtype=np.int64)
    g_share = np.zeros(len(groups.label))
    for s in range(len(seg_labels)):
        gi = np.flatnonzero(groups.seg == s)
        c0, nc, share = plan.allocate_cores(work[gi], groups.floating[gi], hw.cores, hw.mapping.spatial)
        g_c0[gi], g_nc[gi], g_share[gi] = c0, nc, share
    op_c0 = g_c0[groups.group]
    op_nc = g_nc[groups.group]
    split = prep.is_gemm & (op_nc > 1) & (prep.macs >= hw.mapping.split_min_macs) & ~groups.floating[groups.group]
    g_op = np.where(split, op_nc, 1)
    mem = plan.plan_memory(seg=seg, seg_labels=seg_labels, groups=groups, share=g_share,
                           weight=prep.weight, weight_names=prep.weight_names, is_gemm=prep.is_gemm,
                           w_bytes=prep.w_bytes, act_bytes=prep.act_bytes, hw=hw)
    times = op_times(hw, prep, g_op, mem.w_local, mem.w_shared, mem.w_remote)

    bw = hw.dram_bw_bytes_per_s
    start, end, core, waited, busy_start, busy_end = list_schedule(
        times.unit, times.latency_s, op_c0, op_nc, split, times.xfer_s, mem.dram_pre / bw,
        mem.dram_demand / bw, hw.dram_latency_s, times.dispatch_s, seg, ptr, deps, hw.cores)
    latency = float(end.max()) if n else 0.0

    # Outputs sent to a consumer on another core (after placement).
    ring_bytes = times.ring_bytes.copy()
    if len(deps):
        dst = np.repeat(np.arange(n), np.diff(ptr))
        src = deps
        outside = (core[src] < op_c0[dst]) | (core[src] >= op_c0[dst] + op_nc[dst])
        remote = np.where(split[dst], outside, core[src] != core[dst])
        np.add.at(ring_bytes, src[remote], prep.out_bytes[src[remote]])

    dram_bytes = mem.dram_pre + mem.dram_demand
    bound = np.where(waited, BOUND_CODE["dram"], times.bound)
    unit_names = np.asarray(UNITS, dtype=object)[times.unit]
    per_op_e = energy_model.op_energy(
        hw, macs=prep.macs, precision=np.asarray(PREC_NAMES, dtype=object)[prep.eff], is_gemm=prep.is_gemm,
        sram_bytes=times.sram_bytes, dram_bytes=dram_bytes, shared_bytes=mem.w_shared,
        ring_bytes=ring_bytes, unit=unit_names, work=prep.work)
    op_energy = sum(per_op_e.values()) if per_op_e is not None else None

    def ops_frame() -> pd.DataFrame:
        ops = table.copy()
        group_names = np.array([f"{seg_labels[s]}/{lab or '*'}" for s, lab in zip(groups.seg, groups.label)],
                               dtype=object)
        cols = {
            "segment": seg,
            "group": categorical(group_names[groups.group]) if n else pd.Categorical([]),
            "core": core, "cores": g_op,
            "unit": pd.Categorical.from_codes(times.unit, categories=list(UNITS)),
            "precision": pd.Categorical.from_codes(prep.eff, categories=list(PREC_NAMES)),
            "precision_requested": pd.Categorical.from_codes(prep.req, categories=list(PREC_NAMES)),
            "start_s": start, "end_s": end, "latency_s": end - start,
            "bound_by": pd.Categorical.from_codes(bound, categories=list(BOUNDS)),
            "act_bytes": prep.act_bytes, "weight_bytes": prep.w_bytes,
            "weight_source": pd.Categorical.from_codes(mem.source, categories=list(plan.WEIGHT_SOURCES)),
            "resident": mem.resident, "dram_bytes": dram_bytes, "prefetch_bytes": mem.dram_pre,
            "spill_bytes": mem.spill, "sram_bytes": times.sram_bytes, "shared_bytes": mem.w_shared,
            "ring_bytes": ring_bytes, "bytes": times.sram_bytes + mem.w_shared + mem.w_remote + dram_bytes,
            "folded": times.folded, "compute_s": times.compute_s, "fill_drain_s": times.fill_drain_s,
            "engine_s": times.engine_s, "sram_s": times.sram_s, "shared_s": times.shared_s,
            "ring_s": times.ring_s, "dram_s": np.where(dram_bytes > 0, dram_bytes / bw + hw.dram_latency_s, 0.0),
            "dispatch_s": times.dispatch_s,
        }
        if op_energy is not None:
            cols["energy_j"] = op_energy
        extra = pd.DataFrame(cols, index=table.index)
        return pd.concat([ops[[c for c in OP_COLUMNS if c in ops.columns and c not in cols]], extra],
                         axis=1)[list(OP_COLUMNS) + (["energy_j"] if op_energy is not None else [])]

    phase_codes = table["phase"].map(PHASE_CODE).to_numpy(dtype=np.int64) if n else np.zeros(0, dtype=np.int64)
    share = phase_latency(start, end, phase_codes, len(PHASES))
    lat_op = end - start

    def per_phase(values) -> list[float]:
        return list(np.bincount(phase_codes, weights=values, minlength=len(PHASES)).astype(float)) \
            if n else [0.0] * len(PHASES)

    phases = pd.DataFrame({
        "phase": list(PHASES),
        "latency_s": share,
        "busy_s": per_phase(lat_op),
        "macs": [int(v) for v in per_phase(prep.macs)],
        "ops": [int(v) for v in per_phase(ones)],
        "dram_bytes": per_phase(dram_bytes),
    })
    if op_energy is not None:
        phases["energy_j"] = per_phase(op_energy)

    macs = int(prep.macs.sum())
    busy = {}
    lat_cores = lat_op * g_op
    for u, name in enumerate(UNITS):
        sel = times.unit == u
        busy[name] = float(lat_cores[sel].sum() / (latency * hw.cores)) if latency > 0 else 0.0
    gemm_prec = pd.Series(prep.macs[prep.is_gemm]).groupby(prep.eff[prep.is_gemm]).sum()
    if len(gemm_prec) and latency > 0:
        busy["mac"] = float(macs / (latency * hw.peak_macs_per_s(PREC_NAMES[int(gemm_prec.idxmax())])))
    weights_mem = mem.residency[mem.residency["kind"] == "weight"] if len(mem.residency) else mem.residency
    onchip = (weights_mem["local_bytes"] + weights_mem["shared_bytes"] + weights_mem["remote_bytes"]) \
        if len(weights_mem) else pd.Series(dtype=float)
    first_use = mem.source == plan.SOURCE_CODE["prefetched"]
    by_source = {
        "weight_load": float((mem.dram_demand - mem.spill)[(mem.source == plan.SOURCE_CODE["loaded"])
                                                           | first_use].sum()),
        "weight_prefetch": float(mem.dram_pre.sum()),
        "weight_stream": 0.0,
        "activation_spill": float(mem.spill.sum()),
    }
    by_source["weight_stream"] = float(dram_bytes.sum() - sum(by_source.values()))
    summary = {
        "model": config.name if config else graph.meta.get("model"),
        "hw": hw.name,
        "precision": policy.name,
        "audio_s": float(audio_s),
        "latency_s": latency,
        "rtf": latency / audio_s,
        "macs": macs,
        "ops": int(n),
        "phases": {p: float(v) for p, v in zip(PHASES, share)},
        "precision_fallbacks": prep.fallbacks,
        "resident_weights": int(weights_mem.loc[onchip > 0, "item"].nunique()) if len(weights_mem) else 0,
        "resident_weight_bytes": float(onchip.sum()),
        "dram_bytes": float(dram_bytes.sum()),
        "dram_bytes_by_source": by_source,
        "segments": len(seg_labels),
        "utilization": busy,
        "split_ops": int(split.sum()),
        "bound_by": {BOUNDS[int(c)]: int(k) for c, k in sorted(
            zip(*np.unique(bound, return_counts=True)), key=lambda t: (-t[1], t[0]))},
        "weight_bytes": None, "fp32_weight_bytes": None, "compression_x": None,
    }
    if config is not None:
        summary.update(weight_bytes=comp.weight_bytes, fp32_weight_bytes=comp.fp32_weight_bytes,
                       compression_x=comp.compression_x)
    if per_op_e is not None:
        parts = energy_model.breakdown(hw, per_op_e, latency)
        summary["energy_breakdown_j"] = parts
        summary["energy_j"] = float(sum(parts.values()))
    if prep.fallbacks:
        log.info("precision fallbacks on %s: %s", hw.name, prep.fallbacks)
    mapping = pd.DataFrame({
        "segment": groups.seg, "segment_label": [seg_labels[s] for s in groups.seg],
        "group": [lab or "*" for lab in groups.label], "first_core": g_c0, "cores": g_nc, "work_s": work,
    }, columns=list(MAPPING_COLUMNS))
    return SimResult(phases, summary, hw, policy, config, dict(graph.meta), mem.residency, mapping,
                     np.stack([busy_start, busy_end], axis=1), _ops_factory=ops_frame)
