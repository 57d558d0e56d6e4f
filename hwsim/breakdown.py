"""Where the time and the energy of a run go: ``breakdown(result) -> Breakdown``.

Tables computed from a ``SimResult`` alone (its per-op table, phases, memory plan and spec):

- **phase**, **module** (per (module, phase); ``""`` is the search's own ops) and **bound** (the
  ``bound_by`` label of each op: compute, fill_drain, sram, shared, ring, dram, dispatch, sfu,
  vector, select): ``latency_s`` is the group's share of the makespan (each instant split evenly
  over the ops running then, idle time to the next op to start: ``hwsim.schedule.phase_latency``,
  so every section sums to the run's ``latency_s``; in a streaming run, less the time the chip
  waits for audio, ``summary["streaming"]["waiting_s"]``); ``busy_s`` the sum of its ops' latencies
  (ops overlap, so these sum to more); ``energy_j`` the dynamic energy of its ops (static energy
  is not split); ``macs``, ``ops``, ``dram_bytes``.
- **precision**: per precision the matrix engine ran MACs at, ``utilization`` = MACs /
  (latency_s x the chip's peak MACs/s at that precision). The **utilization** section has
  ``mac`` (the sum over precisions: the share of the run the chip would need at its peak rates
  to do all its MACs) next to ``matrix_busy`` (``summary["utilization"]["matrix"]``: the matrix
  units' busy time, which includes ops waiting on DRAM and ragged tiles), and the other units'.
- **weight**: one row per (segment, weight) of the residency plan (``SimResult.memory``):
  ``bytes`` under the policy, ``uses``, ``onchip_bytes`` (scratchpad + shared + other cores'),
  ``streamed_bytes_per_use``, ``residency`` (``resident``: all on chip; ``partial``; ``streamed``:
  none, re-read from DRAM at each use, or once for a single-use weight) and ``dram_bytes`` (what
  its ops really read from DRAM, prefetch included).

``Breakdown.frame()`` is the whole as one table (``COLUMNS``, one row per section and name; a
column that does not apply is empty), written as ``breakdown.csv``; ``to_dict()`` as
``breakdown.json``; ``lines()`` the few lines ``hwsim simulate`` prints.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from hwsim.cost import BOUNDS, UNITS
from hwsim.schedule import phase_latency

#: Columns of ``Breakdown.frame()``, in order.
COLUMNS = ("section", "name", "phase", "segment", "ops", "macs", "latency_s", "latency_share", "busy_s",
           "busy_share", "energy_j", "energy_share", "dram_bytes", "peak_macs_per_s", "utilization",
           "bytes", "uses", "onchip_bytes", "streamed_bytes_per_use", "residency")
#: Sections of ``Breakdown.frame()``, in order.
SECTIONS = ("phase", "module", "bound", "precision", "utilization", "weight")
#: ``residency`` labels of the weight section.
RESIDENCY = ("resident", "partial", "streamed")


@dataclass
class Breakdown:
    """The tables of one run (module docstring). Each is a DataFrame with some of ``COLUMNS``.

    Attributes:
        latency_s: the run's makespan. energy_j: total energy incl. static (None without
            energy costs); static_energy_j: its static part.
        phase, module, bound, precision, weight: the sections; utilization: {name: fraction}.
        run: what was simulated (model, hw, precision).
    """

    run: dict
    latency_s: float
    energy_j: float | None
    static_energy_j: float | None
    phase: pd.DataFrame
    module: pd.DataFrame
    bound: pd.DataFrame
    precision: pd.DataFrame
    utilization: dict
    weight: pd.DataFrame

    def frame(self) -> pd.DataFrame:
        """All sections as one table (``COLUMNS``), in ``SECTIONS`` order."""
        util = pd.DataFrame({"name": list(self.utilization), "utilization": list(self.utilization.values())})
        parts = []
        for section, table in (("phase", self.phase), ("module", self.module), ("bound", self.bound),
                               ("precision", self.precision), ("utilization", util), ("weight", self.weight)):
            t = table.copy()
            t.insert(0, "section", section)
            parts.append(t)
        out = pd.concat(parts, ignore_index=True)
        return out.reindex(columns=list(COLUMNS))

    def to_dict(self) -> dict:
        """JSON-ready: run identity, totals, ``utilization`` and each section as a list of
        records (NaN as None)."""
        def records(table: pd.DataFrame) -> list[dict]:
            return [{k: _plain(v) for k, v in row.items()} for row in table.to_dict("records")]

        return {**self.run, "latency_s": self.latency_s, "energy_j": self.energy_j,
                "static_energy_j": self.static_energy_j,
                "utilization": {k: _plain(v) for k, v in self.utilization.items()},
                **{name: records(getattr(self, name)) for name in ("phase", "module", "bound", "precision",
                                                                   "weight")}}

    def lines(self, top: int = 3) -> list[str]:
        """The short version printed by ``hwsim simulate`` (a few lines, two-space indent)."""
        out: list[str] = []
        b = self.bound[self.bound["ops"] > 0]
        if not len(b):
            return out
        out.append("  time by bound    " + ", ".join(
            f"{n} {s:.1%}" for n, s in zip(b["name"], b["latency_share"]) if s >= 0.0005)
            + " (share of latency_s)")
        if self.energy_j is not None and len(b):
            e = b.sort_values("energy_j", ascending=False, kind="stable")
            out.append("  energy by bound  " + ", ".join(
                f"{n} {s:.1%}" for n, s in zip(e["name"], e["energy_share"]) if s >= 0.0005)
                + " (share of dynamic energy_j)")
        u = self.utilization
        if "mac" in u:
            peaks = ", ".join(f"{p} {pk / 1e12:.4g} TMAC/s" for p, pk in zip(self.precision["name"],
                                                                            self.precision["peak_macs_per_s"]))
            out.append(f"  mac_utilization  {u['mac']:.2%} (macs / (latency_s x peak: {peaks})); "
                       f"matrix busy {u['matrix_busy']:.1%} (incl. waiting on DRAM)")
        m = self.module.sort_values("latency_s", ascending=False, kind="stable").head(top)
        out.append("  top modules      " + ", ".join(
            f"{n or '(search ops)'} {s:.1%}" for n, s in zip(m["name"], m["latency_share"]))
            + " (share of latency_s)")
        w = self.weight
        if len(w):
            counts = {r: int((w["residency"] == r).sum()) for r in RESIDENCY}
            once = int(((w["residency"] == "streamed") & (w["uses"] <= 1)).sum())
            moving = w[w["residency"] != "resident"].sort_values("dram_bytes", ascending=False, kind="stable")
            out.append(f"  weights          {counts['resident']} resident, {counts['partial']} partly, "
                       f"{counts['streamed']} streamed ({once} used once); most DRAM: " + (", ".join(
                           f"{n} {_bytes(d)}" for n, d in zip(moving["name"].head(2), moving["dram_bytes"]))
                           or "none"))
        return out


def _bytes(n: float) -> str:
    """``404.3 MB``, ``1.6 kB``, ``320 B`` (decimal units, as the summary's MB)."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n:.0f} B"


def _plain(v):
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        return None if math.isnan(v) else float(v)
    return v


def _share(values: np.ndarray, total: float) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    return values / total if total > 0 else np.zeros(len(values))


def _groups(ops: pd.DataFrame, codes: np.ndarray, n: int, latency: float, has_energy: bool,
            release: dict) -> dict:
    """Per group code (0..n-1): ops, macs, makespan share, busy time, energy, DRAM bytes.
    ``release``: a streaming run's releases (``phase_latency``; waiting for audio is no group's)."""
    busy = ops["latency_s"].to_numpy(dtype=np.float64)
    out = {
        "ops": np.bincount(codes, minlength=n).astype(np.int64),
        "macs": np.bincount(codes, weights=ops["macs"].to_numpy(dtype=np.float64), minlength=n).astype(np.int64),
        "latency_s": phase_latency(ops["start_s"].to_numpy(), ops["end_s"].to_numpy(),
                                   codes.astype(np.int64), n, **release)[:n] if len(ops) else np.zeros(n),
        "busy_s": np.bincount(codes, weights=busy, minlength=n),
        "dram_bytes": np.bincount(codes, weights=ops["dram_bytes"].to_numpy(dtype=np.float64), minlength=n),
    }
    out["latency_share"] = _share(out["latency_s"], latency)
    out["busy_share"] = _share(out["busy_s"], float(busy.sum()))
    if has_energy:
        e = np.bincount(codes, weights=ops["energy_j"].to_numpy(dtype=np.float64), minlength=n)
        out["energy_j"] = e
        out["energy_share"] = _share(e, float(e.sum()))
    return out


def breakdown(result) -> Breakdown:
    """The breakdown of a ``SimResult`` (module docstring)."""
    ops = result.ops
    s = result.summary
    hw = result.hw
    latency = float(s["latency_s"])
    has_energy = "energy_j" in ops.columns
    stream = result.graph_meta.get("streaming") or {}
    release = ({"release_op": np.asarray(stream["first_op"]), "release_s": np.asarray(stream["arrival_s"])}
               if len(stream.get("first_op", ())) > 1 else {})

    # phase: the simulator's own per-phase table, with shares
    ph = result.phases.copy()
    phase = pd.DataFrame({"name": ph["phase"], "ops": ph["ops"], "macs": ph["macs"],
                          "latency_s": ph["latency_s"], "latency_share": _share(ph["latency_s"], latency),
                          "busy_s": ph["busy_s"], "busy_share": _share(ph["busy_s"], float(ph["busy_s"].sum())),
                          "dram_bytes": ph["dram_bytes"]})
    if has_energy:
        phase["energy_j"] = ph["energy_j"].to_numpy()
        phase["energy_share"] = _share(phase["energy_j"], float(phase["energy_j"].sum()))

    # module: per (module, phase), in order of first appearance
    keys = pd.MultiIndex.from_arrays([ops["module"].astype(str), ops["phase"].astype(str)])
    codes, uniq = pd.factorize(keys)
    g = _groups(ops, codes.astype(np.int64), len(uniq), latency, has_energy, release)
    module = pd.DataFrame({"name": uniq.get_level_values(0), "phase": uniq.get_level_values(1), **g})

    # bound: per bound_by label, largest share of the makespan first
    bcodes = ops["bound_by"].cat.codes.to_numpy().astype(np.int64) if len(ops) else np.zeros(0, np.int64)
    cats = list(ops["bound_by"].cat.categories) if len(ops) else list(BOUNDS)
    g = _groups(ops, bcodes, len(cats), latency, has_energy, release)
    bound = pd.DataFrame({"name": cats, **g})
    bound = bound[bound["ops"] > 0].sort_values("latency_s", ascending=False, kind="stable").reset_index(drop=True)

    # precision: MACs per effective matrix precision against the chip's peak at it
    mac_ops = ops[ops["macs"] > 0]
    rows = []
    for p, sel in mac_ops.groupby(mac_ops["precision"].astype(str), sort=False):
        peak = hw.peak_macs_per_s(p)
        macs = int(sel["macs"].sum())
        rows.append({"name": p, "ops": len(sel), "macs": macs, "busy_s": float(sel["latency_s"].sum()),
                     "peak_macs_per_s": peak, "utilization": macs / (latency * peak) if latency > 0 else 0.0})
    precision = pd.DataFrame(rows, columns=["name", "ops", "macs", "busy_s", "peak_macs_per_s", "utilization"])

    busy_util = s.get("utilization", {})
    utilization = {}
    if len(precision):
        utilization["mac"] = float(precision["utilization"].sum())
    for u in UNITS:
        if u in busy_util:
            utilization[f"{u}_busy"] = float(busy_util[u])

    weight = _weights(result, ops)
    energy = s.get("energy_j")
    static = s.get("energy_breakdown_j", {}).get("static") if energy is not None else None
    run = {k: s.get(k) for k in ("model", "hw", "precision")}
    return Breakdown(run, latency, energy, static, phase, module, bound, precision, utilization, weight)


def _weights(result, ops: pd.DataFrame) -> pd.DataFrame:
    """The weight section: the residency plan's weights with the DRAM bytes their ops read."""
    cols = ["name", "phase", "segment", "bytes", "uses", "onchip_bytes", "streamed_bytes_per_use",
            "residency", "dram_bytes"]
    mem = result.memory
    if not len(mem):
        return pd.DataFrame(columns=cols)
    w = mem[mem["kind"] == "weight"]
    onchip = (w["local_bytes"] + w["shared_bytes"] + w["remote_bytes"]).to_numpy(dtype=np.float64)
    size = w["bytes"].to_numpy(dtype=np.float64)
    residency = np.where(onchip >= size * (1 - 1e-12), "resident", np.where(onchip > 0, "partial", "streamed"))
    has_w = ops["weight"].astype(str) != ""
    per = ops[has_w]
    read = (per["dram_bytes"] - per["spill_bytes"]).groupby(
        [per["segment"].to_numpy(), per["weight"].astype(str).to_numpy()]).sum()
    phase = per.groupby(per["weight"].astype(str).to_numpy())["phase"].first().astype(str)
    items = w["item"].astype(str).to_numpy()
    segs = w["segment"].to_numpy()
    return pd.DataFrame({
        "name": items,
        "phase": [phase.get(i, "") for i in items],
        "segment": w["segment_label"].astype(str).to_numpy(),
        "bytes": size, "uses": w["uses"].to_numpy(), "onchip_bytes": onchip,
        "streamed_bytes_per_use": w["streamed_bytes_per_use"].to_numpy(dtype=np.float64),
        "residency": residency,
        "dram_bytes": [float(read.get((s_, i), 0.0)) for s_, i in zip(segs, items)],
    }, columns=cols)


def write(result, out_dir) -> None:
    """Write ``breakdown.csv`` and ``breakdown.json`` of ``result`` into the folder ``out_dir``."""
    import json
    from pathlib import Path

    b = breakdown(result)
    out = Path(out_dir)
    b.frame().to_csv(out / "breakdown.csv", index=False)
    (out / "breakdown.json").write_text(json.dumps(b.to_dict(), indent=2))


__all__ = ["Breakdown", "breakdown", "write", "COLUMNS", "SECTIONS", "RESIDENCY"]
