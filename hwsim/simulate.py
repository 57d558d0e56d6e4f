"""Simulate an op graph on an accelerator under a precision policy: ``simulate(...) -> SimResult``.

Stages: op table (``hwsim.optable.op_table``) -> per-op cost (``hwsim.cost.cost_ops``) -> list
schedule (``hwsim.schedule.list_schedule``) -> tables and summary. Compression comes from
``hwsim.compression`` for the model config.
"""

from __future__ import annotations

import gc
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from models.config import ModelConfig, load_config
from models.quant.policy import PrecisionPolicy, load_policy
from models.yamlio import ConfigError, to_dict
from workloads.graph import PHASES, OpGraph

from hwsim.compression import compression
from hwsim.cost import PHASE_CODE, UNITS, cost_ops, energy_j
from hwsim.optable import edge_arrays, op_table
from hwsim.schedule import list_schedule, phase_latency
from hwsim.spec import AcceleratorSpec, load_spec

log = logging.getLogger(__name__)

#: Columns of ``SimResult.ops``, in order.
OP_COLUMNS = ("op", "kind", "phase", "step", "module", "weight", "core", "unit", "precision",
              "precision_requested", "start_s", "end_s", "latency_s", "bound_by", "macs", "m", "k",
              "n", "elems", "bytes", "act_bytes", "weight_bytes", "dram_bytes", "sram_bytes",
              "shared_bytes", "resident", "folded", "compute_s", "fill_drain_s", "engine_s", "sram_s",
              "shared_s", "dram_s", "dispatch_s")


@dataclass
class SimResult:
    """Result of one simulation.

    Attributes:
        ops: one row per op (index ``id``): placement (``core``: -1 = split over all cores;
            ``unit``), precisions, ``start_s``, ``end_s``, ``latency_s``, ``bound_by``, MACs,
            bytes at the policy's widths per memory level, time terms, ``energy_j`` if known.
        phases: one row per phase of ``workloads.graph.PHASES``: ``latency_s`` (share of the
            makespan, see ``hwsim.schedule.phase_latency``; sums to the total), ``busy_s`` (sum
            of op latencies), ``macs``, ``ops``.
        summary: scalars and small dicts (see ``simulate``).
        hw, policy, config: what was simulated.
    """

    ops: pd.DataFrame
    phases: pd.DataFrame
    summary: dict
    hw: AcceleratorSpec
    policy: PrecisionPolicy
    config: ModelConfig | None = None
    graph_meta: dict = field(default_factory=dict)

    @property
    def latency_s(self) -> float:
        return self.summary["latency_s"]

    def save(self, out_dir: str | Path) -> Path:
        """Write the run folder: ``config.json`` (hw, policy, model, graph meta), ``hw.yaml``,
        ``ops.parquet`` + ``ops.csv``, ``phases.csv``, ``summary.json``."""
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
        (out / "summary.json").write_text(json.dumps(self.summary, indent=2, default=float))
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
        ``precision_fallbacks`` {"unit:requested->effective": ops}, ``resident_weights``,
        ``resident_weight_bytes``, ``dram_bytes``, ``utilization`` {matrix, sfu, vector, select:
        busy time / (latency * cores); mac: macs / (latency * peak MACs/s at the most used
        precision)}, ``split_ops``, ``energy_j`` (when the spec has energy costs).

    Raises:
        CostError: ops whose kind has no cost function (names and counts).
        ValueError: audio_s <= 0.
    """
    if not audio_s > 0:
        raise ValueError(f"audio_s must be > 0, got {audio_s}")
    hw, policy, config = _resolve(graph, hw, policy, config)
    # Extraction builds ~1e5 small tuples; the cyclic GC would rescan the graph's dicts each time.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        table = graph.memo("hwsim.op_table", op_table)
        ptr, deps = graph.memo("hwsim.edge_arrays", edge_arrays)
    finally:
        if gc_was_enabled:
            gc.enable()
    costed = cost_ops(table, hw, policy, config)
    start, end, core = list_schedule(costed.unit, costed.latency_s, costed.split_s, costed.out_xfer_s,
                                     costed.table["dram_s"].to_numpy(), costed.table["dispatch_s"].to_numpy(),
                                     ptr, deps, hw.cores)
    ops = costed.table
    ops["core"] = core
    ops["start_s"] = start
    ops["end_s"] = end
    ops["latency_s"] = end - start
    energy = energy_j(ops, hw)
    ops = ops[list(OP_COLUMNS)].copy()
    if energy is not None:
        ops["energy_j"] = energy
    latency = float(end.max()) if len(end) else 0.0

    phase_codes = ops["phase"].map(PHASE_CODE).to_numpy(dtype=np.int64)
    share = phase_latency(start, end, phase_codes, len(PHASES))
    grouped = ops.groupby("phase", observed=True)
    phases = pd.DataFrame({
        "phase": list(PHASES),
        "latency_s": share,
        "busy_s": [float(grouped["latency_s"].sum().get(p, 0.0)) for p in PHASES],
        "macs": [int(grouped["macs"].sum().get(p, 0)) for p in PHASES],
        "ops": [int(grouped.size().get(p, 0)) for p in PHASES],
    })

    macs = int(ops["macs"].sum())
    busy = {}
    lat_split = ops["latency_s"] * np.where(ops["core"] < 0, hw.cores, 1)
    for u in UNITS:
        sel = (ops["unit"] == u).to_numpy()
        busy[u] = float(lat_split[sel].sum() / (latency * hw.cores)) if latency > 0 else 0.0
    gemm_prec = ops.loc[ops["kind"] == "gemm"].groupby("precision", observed=True)["macs"].sum()
    if len(gemm_prec) and latency > 0:
        busy["mac"] = float(macs / (latency * hw.peak_macs_per_s(str(gemm_prec.idxmax()))))
    summary = {
        "model": config.name if config else graph.meta.get("model"),
        "hw": hw.name,
        "precision": policy.name,
        "audio_s": float(audio_s),
        "latency_s": latency,
        "rtf": latency / audio_s,
        "macs": macs,
        "ops": int(len(ops)),
        "phases": {p: float(v) for p, v in zip(PHASES, share)},
        "precision_fallbacks": costed.fallbacks,
        "resident_weights": len(costed.resident),
        "resident_weight_bytes": float(ops.loc[ops["resident"], ["weight", "weight_bytes"]]
                                       .drop_duplicates("weight")["weight_bytes"].sum()),
        "dram_bytes": float(ops["dram_bytes"].sum()),
        "utilization": busy,
        "split_ops": int((ops["core"] < 0).sum()),
        "bound_by": {str(k): int(v) for k, v in ops["bound_by"].value_counts().items()},
        "weight_bytes": None, "fp32_weight_bytes": None, "compression_x": None,
    }
    if config is not None:
        comp = compression(config, policy)
        summary.update(weight_bytes=comp.weight_bytes, fp32_weight_bytes=comp.fp32_weight_bytes,
                       compression_x=comp.compression_x)
    if energy is not None:
        summary["energy_j"] = float(energy.sum())
    if costed.fallbacks:
        log.info("precision fallbacks on %s: %s", hw.name, costed.fallbacks)
    return SimResult(ops, phases, summary, hw, policy, config, dict(graph.meta))
