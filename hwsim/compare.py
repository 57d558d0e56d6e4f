"""Side by side: simulation runs and sweep points, with ratios to the first. ``compare(sources)``.

A source is either

- a run folder written by ``hwsim simulate --out DIR`` (``hwsim.simulate.SimResult.save``):
  ``summary.json`` (required), ``phases.csv`` (per-phase latency and energy; without it the
  phase latencies of the summary), ``ops.parquet`` (the per-module breakdown), ``config.json``
  (beam, LM fusion and search method of the graph); or
- a design point of a sweep, ``SWEEP_DIR@KEY`` (``hwsim sweep --out SWEEP_DIR``; ``KEY`` is the
  point's ``key`` column, ``hwsim.dse.load(SWEEP_DIR)``, or a prefix of it that names one point):
  the summary and the phase latencies only, since a sweep stores no per-op table.

What is compared, each as ``value`` and ``ratio`` = value / the first source's value:

- ``summary``: :data:`SUMMARY_METRICS`, in that order (``energy_j`` includes static energy);
- ``phase``: ``latency_s`` (the phase's share of the makespan: the phases sum to ``latency_s``)
  and ``energy_j`` (the dynamic energy of the phase's ops; static energy is not split by phase);
- ``module``: ``busy_s`` (the sum of the module's op latencies; ops of different modules overlap,
  so these add up to more than ``latency_s``) and ``energy_j`` (dynamic), grouped by the
  ``module`` column of ``ops.parquet`` (``""``: the search's own ops). Only when every source is
  a run folder with ``ops.parquet``. A module missing from a run ran no op there: 0.

Phases and modules are ordered by the largest absolute difference from the first source (over
all sources), largest first. A ratio is undefined (NaN; ``null`` in JSON) where the first
source's value is 0 or unknown. No torch is needed here.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from models.yamlio import ConfigError, UserError
from workloads.graph import PHASES

#: Summary figures compared, in display order.
SUMMARY_METRICS = ("latency_s", "rtf", "energy_j", "dram_bytes", "weight_bytes", "fp32_weight_bytes",
                   "compression_x", "macs", "ops")
#: Summary figures that are counts (integers in JSON).
COUNT_METRICS = ("weight_bytes", "fp32_weight_bytes", "macs", "ops")
#: What identifies a run (shown, not compared).
IDENTITY = ("model", "hw", "precision", "beam", "lm_fusion", "method", "audio_s")
PHASE_METRICS = ("latency_s", "energy_j")
MODULE_METRICS = ("busy_s", "energy_j")
#: Columns of ``Comparison.table``: one row per (section, item, metric, run).
COLUMNS = ("section", "item", "metric", "run", "source", "value", "ratio")

SUMMARY_FILE = "summary.json"
PHASES_FILE = "phases.csv"
OPS_FILE = "ops.parquet"
CONFIG_FILE = "config.json"


class RunInputError(UserError):
    """A source of ``compare`` is missing, unreadable, or neither a run folder nor a sweep point."""


@dataclass(frozen=True)
class Source:
    """One run or sweep point (:func:`load_source`, :func:`source_from_result`).

    Attributes:
        label: the source as given (a folder, or ``SWEEP_DIR@KEY``).
        kind: ``run`` or ``sweep point``.
        identity: :data:`IDENTITY` fields known for it (a sweep point adds its ``hw.*`` fields
            and its full ``key``).
        summary: :data:`SUMMARY_METRICS` (NaN where unknown, e.g. ``energy_j`` without energy costs).
        phases: index ``PHASES``, columns :data:`PHASE_METRICS` (NaN where unknown).
        modules: index module name, columns :data:`MODULE_METRICS`; None without a per-op table.
        no_modules: why ``modules`` is None ("" otherwise).
    """

    label: str
    kind: str
    identity: dict
    summary: dict[str, float]
    phases: pd.DataFrame
    modules: pd.DataFrame | None = None
    no_modules: str = ""


@dataclass(frozen=True)
class Comparison:
    """Sources side by side.

    Attributes:
        sources: in the order given; the first is the reference of every ratio.
        table: :data:`COLUMNS`; sections ``summary``, ``phase``, ``module`` in that order, then
            metric by metric, items largest difference first, then the runs ``0 .. n-1``.
        notes: what could not be compared and why (e.g. no per-module table for a sweep point).
    """

    sources: tuple[Source, ...]
    table: pd.DataFrame
    notes: tuple[str, ...] = ()

    def block(self, section: str, metric: str) -> pd.DataFrame:
        """One section's metric as a wide frame, in the table's order: index item, columns
        ``value_<i>`` and ``ratio_<i>`` for each run ``i``."""
        t = self.table[(self.table["section"] == section) & (self.table["metric"] == metric)]
        wide = t.pivot(index="item", columns="run", values=["value", "ratio"])
        wide.columns = [f"{kind}_{run}" for kind, run in wide.columns]
        return wide.loc[list(dict.fromkeys(t["item"]))]

    def to_json(self) -> dict:
        """One JSON-ready object: ``runs`` (label, kind, identity), ``summary`` {metric: {values,
        ratios}}, ``phases`` and ``modules`` {metric: [{phase|module, values, ratios}, ...] largest
        difference first} (``modules`` null when not compared), ``notes``. Unknown values and
        undefined ratios are null."""
        out: dict = {"runs": [{"label": s.label, "kind": s.kind, **s.identity} for s in self.sources],
                     "summary": {}, "phases": {}, "modules": None, "notes": list(self.notes)}
        for (section, item, metric), g in self.table.groupby(["section", "item", "metric"], sort=False):
            entry = {"values": [_json_number(v, metric) for v in g["value"]],
                     "ratios": [_json_number(r) for r in g["ratio"]]}
            if section == "summary":
                out["summary"][metric] = entry
                continue
            key = "phases" if section == "phase" else "modules"
            out[key] = out[key] or {}
            out[key].setdefault(metric, []).append({section: item, **entry})
        return out


def _json_number(value: float, metric: str = "") -> float | int | None:
    if not math.isfinite(value):
        return None
    return int(value) if metric in COUNT_METRICS and float(value).is_integer() else float(value)


# --------------------------------------------------------------------------------------------
# Reading sources


def load_source(text: str) -> Source:
    """A run folder or ``SWEEP_DIR@KEY`` (see the module docstring).

    Raises:
        RunInputError: missing path, a folder without ``summary.json``, unreadable files, an unknown
            or ambiguous key; the message names the path.
    """
    path = Path(text)
    if not path.exists() and "@" in text:
        folder, key = text.rsplit("@", 1)
        return _load_point(text, Path(folder), key)
    if not path.exists():
        raise RunInputError(f"{text}: no such directory; expected a run folder (`hwsim simulate --out DIR`) "
                            "or a sweep point SWEEP_DIR@KEY")
    if not path.is_dir():
        raise RunInputError(f"{text}: is a file; expected a run folder (`hwsim simulate --out DIR`)")
    if not (path / SUMMARY_FILE).is_file():
        from hwsim.dse.store import DEFINITION, PARTS

        if (path / DEFINITION).is_file() or (path / PARTS).is_dir():
            raise RunInputError(f"{text}: is a sweep folder; name one of its design points as {text}@KEY "
                                "(KEY: the point's key, or a prefix of it, from hwsim.dse.load)")
        raise RunInputError(f"{text}: no {SUMMARY_FILE}; not a run folder of `hwsim simulate --out DIR`")
    return _load_run(text, path)


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        raise RunInputError(f"{path}: cannot read ({exc.strerror})") from exc
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RunInputError(f"{path}: not a JSON file ({exc})") from exc
    if not isinstance(data, dict):
        raise RunInputError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


def _number(value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        return math.nan
    return float(value)


def _load_run(label: str, folder: Path) -> Source:
    summary = _read_json(folder / SUMMARY_FILE)
    if not isinstance(summary.get("latency_s"), (int, float)):
        raise RunInputError(f"{folder / SUMMARY_FILE}: no latency_s; not the summary of `hwsim simulate --out`")
    meta = {}
    if (folder / CONFIG_FILE).is_file():
        meta = _read_json(folder / CONFIG_FILE).get("graph_meta") or {}
    phases = None
    if (folder / PHASES_FILE).is_file():
        phases = _read_table(folder / PHASES_FILE, pd.read_csv, ("phase", "latency_s"))
    ops = _read_ops(folder / OPS_FILE) if (folder / OPS_FILE).is_file() else None
    return _run_source(label, summary, meta, phases, ops, f"{label}: no {OPS_FILE}")


def source_from_result(result, label: str) -> Source:
    """A :class:`Source` from a ``hwsim.simulate.SimResult`` in memory (what its run folder
    would give, without writing one)."""
    return _run_source(label, result.summary, result.graph_meta, result.phases, result.ops, "")


def _run_source(label: str, summary: dict, graph_meta: dict, phases: pd.DataFrame | None,
                ops: pd.DataFrame | None, why_no_ops: str) -> Source:
    identity = {**{k: summary[k] for k in ("model", "hw", "precision", "audio_s") if k in summary},
                **{k: graph_meta[k] for k in ("beam", "lm_fusion", "method") if k in graph_meta}}
    identity = {k: _plain(identity[k]) for k in IDENTITY if k in identity}
    if phases is not None:
        phases = phases.set_index("phase").reindex(PHASES)
    else:
        phases = pd.DataFrame({"latency_s": pd.Series(summary.get("phases") or {}, dtype=float)}).reindex(PHASES)
    for m in PHASE_METRICS:
        if m not in phases:
            phases[m] = math.nan
    modules = _modules_of(ops) if ops is not None else None
    return Source(label, "run", identity, {m: _number(summary.get(m)) for m in SUMMARY_METRICS},
                  phases[list(PHASE_METRICS)].astype(float), modules, "" if ops is not None else why_no_ops)


def _read_table(path: Path, reader, required: Sequence[str], **kwargs) -> pd.DataFrame:
    try:
        frame = reader(path, **kwargs)
    except Exception as exc:  # noqa: BLE001 - pandas / pyarrow raise many types for a bad file
        raise RunInputError(f"{path}: cannot read it as a table ({type(exc).__name__}: "
                            f"{' '.join(str(exc).split())[:200]})") from exc
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise RunInputError(f"{path}: missing column(s) {', '.join(missing)}")
    return frame


def _read_ops(path: Path) -> pd.DataFrame:
    import pyarrow.parquet as pq

    try:
        names = set(pq.read_schema(path).names)
    except Exception as exc:  # noqa: BLE001 - pyarrow's errors for a file that is not Parquet
        raise RunInputError(f"{path}: not a Parquet file ({' '.join(str(exc).split())[:200]})") from exc
    columns = [c for c in ("module", "latency_s", "energy_j") if c in names]
    return _read_table(path, pd.read_parquet, ("module", "latency_s"), columns=columns)


def _modules_of(ops: pd.DataFrame) -> pd.DataFrame:
    """Per module (in order of first appearance): ``busy_s`` (sum of op latencies), ``energy_j``."""
    module = ops["module"].astype(str).to_numpy()
    frame = pd.DataFrame({"module": module, "busy_s": ops["latency_s"].to_numpy(dtype=float),
                          "energy_j": ops["energy_j"].to_numpy(dtype=float) if "energy_j" in ops else math.nan})
    table = frame.groupby("module", sort=False)[list(MODULE_METRICS)].sum(min_count=1)
    return table.astype(float)


def _load_point(label: str, folder: Path, key: str) -> Source:
    from hwsim.dse.store import check_sweep_dir, load

    try:
        check_sweep_dir(folder)
    except ConfigError as exc:
        raise RunInputError(f"{label}: {exc}") from None
    if not key:
        raise RunInputError(f"{label}: empty point key after '@'; expected {folder}@KEY (a key or a prefix of one)")
    points = load(folder)
    match = points[points["key"].astype(str).str.startswith(key)]
    if len(match) == 0:
        raise RunInputError(f"{label}: no design point of {folder} has a key starting with {key!r} "
                            f"({len(points)} points; keys: hwsim.dse.load({str(folder)!r})['key'])")
    if len(match) > 1:
        raise RunInputError(f"{label}: {len(match)} design points of {folder} have keys starting with {key!r}; "
                            "give more characters of the key")
    row = match.iloc[0]
    if row["status"] != "ok":
        raise RunInputError(f"{label}: this design point failed in the sweep ({row.get('error')!s})")
    identity = {k: _plain(row[k]) for k in IDENTITY if k in row.index}
    identity.update({c: _plain(row[c]) for c in row.index if str(c).startswith("hw.")})
    identity["key"] = str(row["key"])
    phases = pd.DataFrame({"latency_s": [_number(row.get(f"phase_{p}_s")) for p in PHASES],
                           "energy_j": math.nan}, index=pd.Index(PHASES, name="phase"))
    return Source(label, "sweep point", identity, {m: _number(row.get(m)) for m in SUMMARY_METRICS},
                  phases, None, f"{label}: a sweep point (a sweep stores no per-op table)")


def _plain(value):
    return value.item() if isinstance(value, np.generic) else value


# --------------------------------------------------------------------------------------------
# Comparing


def compare(sources: Sequence[str | Source]) -> Comparison:
    """Compare runs and sweep points (see the module docstring); the first is the reference.

    Args:
        sources: run folders, ``SWEEP_DIR@KEY`` strings, or loaded :class:`Source` objects (at
            least two).

    Raises:
        RunInputError: fewer than two sources, or a source that cannot be read (:func:`load_source`).
    """
    if len(sources) < 2:
        given = f": {sources[0] if isinstance(sources[0], str) else sources[0].label}" if sources else ""
        raise RunInputError(f"compare needs at least two runs to compare, got {len(sources)}{given}")
    loaded = tuple(s if isinstance(s, Source) else load_source(s) for s in sources)
    blocks = [("summary", m, pd.DataFrame({i: [s.summary[m]] for i, s in enumerate(loaded)}, index=[m]))
              for m in SUMMARY_METRICS]
    notes = []

    def add(section: str, metric: str, frame: pd.DataFrame) -> None:
        unknown = [s.label for i, s in enumerate(loaded) if not frame[i].notna().any()]
        if unknown:  # e.g. phase energy of a sweep point, energy of a spec without energy costs
            notes.append(f"per-{section} {metric} not compared: unknown for {', '.join(unknown)}")
        else:
            blocks.append((section, metric, _ranked(frame)))

    for m in PHASE_METRICS:
        add("phase", m, pd.DataFrame({i: s.phases[m] for i, s in enumerate(loaded)}))
    missing = [s.no_modules for s in loaded if s.modules is None]
    if missing:
        notes.append("per-module breakdown not compared: " + "; ".join(missing))
    else:
        # the union of modules in order of first appearance; absent from a run: it ran no op there
        names = list(dict.fromkeys(name for s in loaded for name in s.modules.index))
        for m in MODULE_METRICS:
            frame = pd.DataFrame({i: s.modules[m].reindex(names) for i, s in enumerate(loaded)})
            known = [i for i, s in enumerate(loaded) if s.modules[m].notna().any()]
            frame[known] = frame[known].fillna(0.0)
            add("module", m, frame)
    rows = []
    for section, metric, frame in blocks:
        for item, values in zip(frame.index, frame.to_numpy(dtype=float)):
            base = values[0]
            for run, v in enumerate(values):
                ratio = v / base if (math.isfinite(base) and base != 0 and math.isfinite(v)) else math.nan
                rows.append((section, str(item), metric, run, loaded[run].label, v, ratio))
    table = pd.DataFrame(rows, columns=list(COLUMNS))
    return Comparison(loaded, table, tuple(notes))


def _ranked(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows ordered by the largest |value - first run's value| over the runs, largest first
    (stable: ties keep their order; unknown values count as no difference)."""
    values = frame.to_numpy(dtype=float)
    diff = np.nan_to_num(np.abs(values - values[:, :1]), nan=0.0).max(axis=1) if len(frame) else np.zeros(0)
    order = np.argsort(-diff, kind="stable")
    return frame.iloc[order]
