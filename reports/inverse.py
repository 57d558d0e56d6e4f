"""Inverse search: which values of rapid4's unpublished parameters reproduce the paper's figures.

The paper (Fasoli et al., Interspeech 2022; ``reports.paper.PAPER``) reports a 3.4x FP16 -> INT4
speed-up and an INT4 RTF of 0.06 from a hardware simulator whose parameters it does not publish.
``workloads/sweeps/paper_inverse.yaml`` sweeps the assumption-labelled fields of
``hwsim/presets/rapid4.yaml`` on a grid, each configuration at FP16 and at INT4; this module pairs
the two points of every configuration, computes its speed-up and RTF, and reports the region of
configurations consistent with the paper within a stated tolerance (ranges per parameter, a count,
a figure), or the nearest configurations when none is.

The result says what the paper's unpublished simulator would have had to assume *for our model to
agree with it*; it is never used to change a preset.

Run (resumable; writes ``computed.json`` with the date, machine and command beside the parts)::

    python -m reports.inverse --out reports/paper/inverse
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import platform
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from hwsim.calibrate import cpu_model
from hwsim.outputs import atomic_file
from hwsim.provenance import PROJECT_ROOT, git_commit, utc_stamp

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[1]
SWEEP = ROOT / "workloads" / "sweeps" / "paper_inverse.yaml"
DEFAULT_DIR = Path(__file__).with_name("paper") / "inverse"
#: Written beside the sweep's parts by ``run_inverse``: when, where and how the results were made.
RUN_RECORD = "computed.json"
LOW, HIGH = "fp16", "int4"
#: Figures carried per precision into the paired table (when the results have them).
EXTRA_FIGURES = ("dram_bytes", "ops")


@dataclass(frozen=True)
class Tolerance:
    """What counts as consistent with the paper.

    A configuration is consistent when its speed-up is within ``speedup_x +- speedup_abs`` and its
    INT4 RTF within ``rtf`` times or divided by ``rtf_factor``. ``distance`` puts both on one scale
    (1 = at the edge of the tolerance), so that "consistent" is ``distance <= 1``.

    Attributes:
        speedup_x: target FP16 -> INT4 speed-up (the paper's).
        speedup_abs: allowed absolute deviation of the speed-up.
        rtf: target INT4 real-time factor (the paper's).
        rtf_factor: allowed multiplicative deviation of the RTF (> 1).
    """

    speedup_x: float
    rtf: float
    speedup_abs: float = 0.3
    rtf_factor: float = 1.25

    def __post_init__(self) -> None:
        if not (self.speedup_abs > 0 and self.rtf > 0 and self.rtf_factor > 1):
            raise ValueError(f"Tolerance needs speedup_abs > 0, rtf > 0, rtf_factor > 1: {self}")

    def distance(self, speedup_x, rtf) -> np.ndarray:
        """Largest of the two deviations, each in units of its tolerance (<= 1: consistent)."""
        s = np.abs(np.asarray(speedup_x, dtype=float) - self.speedup_x) / self.speedup_abs
        r = np.abs(np.log(np.asarray(rtf, dtype=float) / self.rtf)) / math.log(self.rtf_factor)
        return np.maximum(s, r)

    def describe(self) -> str:
        return (f"speed-up within {self.speedup_x:g} ± {self.speedup_abs:g}x "
                f"({self.speedup_x - self.speedup_abs:g}-{self.speedup_x + self.speedup_abs:g}x) and INT4 "
                f"RTF within {self.rtf:g} ×/÷ {self.rtf_factor:g} "
                f"({self.rtf / self.rtf_factor:.3g}-{self.rtf * self.rtf_factor:.3g})")


def paper_tolerance(speedup_abs: float = 0.3, rtf_factor: float = 1.25) -> Tolerance:
    """The tolerance around the paper's figures (``reports.paper.PAPER``)."""
    from reports.paper import PAPER  # here, not at the top: reports.paper may import this module

    return Tolerance(PAPER["speedup_fp16_to_int4_x"], PAPER["rtf"], speedup_abs, rtf_factor)


def pair_precisions(df: pd.DataFrame, low: str = LOW, high: str = HIGH) -> pd.DataFrame:
    """One row per hardware configuration from a sweep's results (``hwsim.dse.load``).

    Args:
        df: results with ``status``, ``precision``, ``latency_s``, ``rtf`` and the point parameters.
        low, high: the two precisions of the speed-up (``low`` latency / ``high`` latency).

    Returns:
        The point parameters other than ``precision`` (one column each), then
        ``latency_<low>_s``, ``latency_<high>_s``, ``speedup_x``, ``rtf_<high>``, and
        ``<figure>_<precision>`` for each of ``EXTRA_FIGURES`` the results hold. Configurations
        without an ok point at both precisions are left out (``attrs["unpaired"]`` counts them).
    """
    from hwsim.dse import param_columns

    ok = df[df["status"] == "ok"] if "status" in df.columns else df
    ok = ok[ok["precision"].isin([low, high])]
    params = [c for c in param_columns(ok) if c != "precision"]
    extra = [c for c in EXTRA_FIGURES if c in ok.columns]
    wide = ok.pivot_table(index=params, columns="precision", values=["latency_s", "rtf", *extra], aggfunc="first")
    n_all = len(wide)
    cols = {(m, p) for m, p in wide.columns}
    if not {("latency_s", low), ("latency_s", high)} <= cols:
        out = pd.DataFrame(columns=params + [f"latency_{low}_s", f"latency_{high}_s", "speedup_x", f"rtf_{high}"])
        out.attrs["unpaired"] = n_all
        return out
    wide = wide.dropna(subset=[("latency_s", low), ("latency_s", high)])
    out = wide.index.to_frame(index=False)
    out[f"latency_{low}_s"] = wide[("latency_s", low)].to_numpy(float)
    out[f"latency_{high}_s"] = wide[("latency_s", high)].to_numpy(float)
    out["speedup_x"] = out[f"latency_{low}_s"] / out[f"latency_{high}_s"]
    out[f"rtf_{high}"] = wide[("rtf", high)].to_numpy(float)
    for c in extra:
        for prec in (low, high):
            if (c, prec) in cols:
                out[f"{c}_{prec}"] = wide[(c, prec)].to_numpy(float)
    out.attrs["unpaired"] = n_all - len(out)
    return out


def varied_params(paired: pd.DataFrame) -> list[str]:
    """Hardware parameters (``hw.*``) that take more than one value among the configurations."""
    return [c for c in paired.columns if c.startswith("hw.") and paired[c].nunique() > 1]


def preset_values(hw: str, params: list[str]) -> dict[str, object]:
    """The value of each ``hw.<path>`` parameter in hardware preset ``hw``."""
    from hwsim.dse.sweep import flatten_fields
    from hwsim.spec import load_spec
    from models.yamlio import to_dict

    flat = flatten_fields(to_dict(load_spec(hw)), "hw", {})
    return {p: flat.get(p) for p in params}


def consistent_region(paired: pd.DataFrame, mask: np.ndarray, params: list[str],
                      preset: dict | None = None) -> pd.DataFrame:
    """Per parameter: the values swept and those taken by the consistent configurations.

    Returns:
        Columns ``parameter``, ``swept`` (sorted values), ``preset``, ``consistent`` (sorted values
        found among consistent configurations), ``min`` and ``max`` of those (NaN when none), and
        ``configurations`` (consistent configurations per value, in the order of ``consistent``).
    """
    mask = np.asarray(mask, dtype=bool)
    sel = paired[mask]
    rows = []
    for p in params:
        counts = sel[p].value_counts().sort_index()
        rows.append({
            "parameter": p,
            "swept": sorted(paired[p].unique().tolist()),
            "preset": (preset or {}).get(p),
            "consistent": counts.index.tolist(),
            "min": counts.index.min() if len(counts) else float("nan"),
            "max": counts.index.max() if len(counts) else float("nan"),
            "configurations": counts.tolist(),
        })
    return pd.DataFrame(rows, columns=["parameter", "swept", "preset", "consistent", "min", "max",
                                       "configurations"])


@dataclass(frozen=True)
class InverseResult:
    """The inverse search's answer.

    Attributes:
        paired: one row per configuration (``pair_precisions``) plus ``distance`` (in tolerance
            units) and ``consistent`` (bool).
        tol: the tolerance used.
        params: the varied hardware parameters.
        region: ``consistent_region`` of the consistent configurations.
        preset: the preset's value of each varied parameter.
        preset_row: the configuration equal to the preset in every varied parameter, or None.
        unpaired: configurations left out for lacking an ok point at one precision.
        errors: design points with ``status != ok``.
        record: ``computed.json`` of the results folder, or None.
        hw: the hardware preset the sweep varies.
    """

    paired: pd.DataFrame
    tol: Tolerance
    params: list[str]
    region: pd.DataFrame
    preset: dict
    preset_row: pd.Series | None
    unpaired: int
    errors: int
    record: dict | None
    hw: str = "rapid4"

    @property
    def n_configs(self) -> int:
        return len(self.paired)

    @property
    def n_consistent(self) -> int:
        return int(self.paired["consistent"].sum())

    def nearest(self, n: int = 5) -> pd.DataFrame:
        """The ``n`` configurations closest to the paper (smallest ``distance``)."""
        return self.paired.sort_values("distance", kind="stable").head(n)


def analyse(results: pd.DataFrame | str | Path, tol: Tolerance | None = None, hw: str | None = None) -> InverseResult:
    """Pair, score and summarize an inverse-search sweep.

    Args:
        results: the sweep's results table, or its folder (``hwsim.dse.load``; its
            ``computed.json`` is read when present).
        tol: default ``paper_tolerance()``.
        hw: the preset the sweep varies (default: the results' ``hw`` column, which must hold one).
    """
    record = None
    if not isinstance(results, pd.DataFrame):
        from hwsim.dse import load

        folder = Path(results)
        path = folder / RUN_RECORD
        record = json.loads(path.read_text()) if path.exists() else None
        results = load(folder)
    tol = tol or paper_tolerance()
    errors = int((results["status"] != "ok").sum()) if "status" in results.columns else 0
    paired = pair_precisions(results)
    if hw is None:
        hws = results["hw"].unique().tolist()
        if len(hws) != 1:
            raise ValueError(f"analyse: the results hold several hardware presets {hws}; name one with hw=")
        hw = hws[0]
    params = varied_params(paired)
    paired = paired.copy()
    paired["distance"] = tol.distance(paired["speedup_x"], paired[f"rtf_{HIGH}"]) if len(paired) else []
    paired["consistent"] = paired["distance"] <= 1.0
    preset = preset_values(hw, params)
    at_preset = np.ones(len(paired), dtype=bool)
    for p in params:
        at_preset &= np.isclose(paired[p].to_numpy(float), float(preset[p]), rtol=1e-9, atol=0)
    preset_row = paired[at_preset].iloc[0] if at_preset.any() else None
    region = consistent_region(paired, paired["consistent"].to_numpy(), params, preset)
    return InverseResult(paired, tol, params, region, preset, preset_row, int(paired.attrs.get("unpaired", 0)),
                         errors, record, hw)


# ----------------------------------------------------------------------------------------------
# Report pieces


def _short(param: str) -> str:
    return param.removeprefix("hw.")


def fmt_value(v) -> str:
    """A parameter value for text: integers with thousands separators, floats to 4 digits."""
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v))
    if isinstance(v, (int, np.integer)) or (isinstance(v, (float, np.floating)) and float(v).is_integer()
                                            and abs(v) < 1e8):
        return f"{int(v):,}"
    if isinstance(v, (float, np.floating)):
        return f"{v:.4g}"
    return str(v)


def plane_params(result: InverseResult) -> list[str]:
    """The two varied parameters with the most values (the plane of the figure's right panel)."""
    return sorted(result.params, key=lambda p: -result.paired[p].nunique())[:2]


def inverse_figure(result: InverseResult, path: str | Path) -> Path:
    """Left: speed-up vs INT4 RTF of every configuration, the consistent ones highlighted, the
    paper's point with its tolerance box, and the preset. Right (when two or more parameters vary):
    over the plane of the two parameters with the most values, the smallest distance to the paper
    among the configurations at each cell (the other parameters free), consistent cells outlined."""
    from matplotlib.patches import Rectangle

    from reports.figures import plt, save_figure     # the Agg backend

    p, t = result.paired, result.tol
    rtf = f"rtf_{HIGH}"
    plane = plane_params(result) if len(result.params) >= 2 else []
    fig, axes = plt.subplots(1, 2 if plane else 1, figsize=(12.5 if plane else 7, 4.8), squeeze=False)
    ax = axes[0, 0]
    rest = p[~p["consistent"]]
    ax.scatter(rest["speedup_x"], rest[rtf], s=9, c="0.65", label=f"configurations ({len(rest)})")
    lo_r, hi_r = t.rtf / t.rtf_factor, t.rtf * t.rtf_factor
    ax.add_patch(Rectangle((t.speedup_x - t.speedup_abs, lo_r), 2 * t.speedup_abs, hi_r - lo_r,
                           fill=False, ec="tab:red", ls="--", lw=1, label="tolerance"))
    ax.scatter([t.speedup_x], [t.rtf], marker="*", s=220, facecolors="none", edgecolors="tab:red",
               zorder=4, label="paper")
    hit = p[p["consistent"]]
    if len(hit):
        ax.scatter(hit["speedup_x"], hit[rtf], s=22, c="tab:green", zorder=5, label=f"consistent ({len(hit)})")
    if result.preset_row is not None:
        ax.scatter([result.preset_row["speedup_x"]], [result.preset_row[rtf]], marker="D", s=40,
                   c="tab:blue", zorder=5, label="rapid4 preset")
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

    ax.set_xscale("log")
    ax.set_yscale("log")
    lo, hi = ax.get_xlim()
    ax.xaxis.set_major_locator(FixedLocator([v for v in (1, 1.5, 2, 3, 4, 5, 7, 10, 15, 20, 30, 50, 100)
                                             if lo <= v <= hi]))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("FP16 -> INT4 speed-up (x)")
    ax.set_ylabel("INT4 real-time factor")
    ax.set_title("Every configuration of the inverse search")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    if plane:
        _plane_panel(axes[0, 1], result, plane)
    return save_figure(fig, path, dpi=110)


def _plane_panel(ax, result: InverseResult, plane: list[str]) -> None:
    from matplotlib.patches import Rectangle

    x, y = plane
    grid = result.paired.pivot_table(index=y, columns=x, values="distance", aggfunc="min").sort_index()
    grid = grid[sorted(grid.columns)]
    im = ax.imshow(np.log10(grid.to_numpy(float)), origin="lower", aspect="auto", cmap="viridis_r")
    ax.set_xticks(range(grid.shape[1]), [fmt_value(v) for v in grid.columns], rotation=45, ha="right", fontsize=7)
    ax.set_yticks(range(grid.shape[0]), [fmt_value(v) for v in grid.index], fontsize=7)
    ax.set_xlabel(_short(x))
    ax.set_ylabel(_short(y))
    for (i, j), d in np.ndenumerate(grid.to_numpy(float)):
        if np.isfinite(d) and d <= 1.0:
            ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, ec="red", lw=1.5))
    px = [k for k, v in enumerate(grid.columns) if _same(v, result.preset.get(x))]
    py = [k for k, v in enumerate(grid.index) if _same(v, result.preset.get(y))]
    if px and py:
        ax.scatter(px, py, marker="D", s=40, c="tab:blue", label="rapid4 preset")
        ax.legend(fontsize=8, loc="upper right")
    ax.set_title("closest distance to the paper per cell (red: consistent)", fontsize=9)
    ax.figure.colorbar(im, ax=ax, label="log10 distance (tolerance units; 0 = edge)")


def readable(param: str, value: float, frequency_hz: float | None = None) -> str:
    """A parameter value in the unit a reader thinks in: GB/s, KiB/MiB, microseconds per op."""
    v = float(value)
    if param.endswith("_bytes_per_s"):
        return f"{v / 1e9:.3g} GB/s"
    if param.endswith("_bytes"):
        return f"{v / 2**20:.3g} MiB" if v >= 2**20 else f"{v / 2**10:.3g} KiB"
    if param.endswith("_cycles") and frequency_hz:
        return f"{v / frequency_hz * 1e6:.3g} us"
    if param.endswith("_s"):
        return f"{v * 1e6:.3g} us"
    return fmt_value(value)


def region_table(result: InverseResult, frequency_hz: float | None = None) -> pd.DataFrame:
    """The consistent region for Markdown: one row per parameter.

    ``frequency_hz``: the clock that turns ``*_cycles`` parameters into time (the preset's).
    """
    rows = []
    for r in result.region.itertuples(index=False):
        found = [f"{fmt_value(v)} ({c})" for v, c in zip(r.consistent, r.configurations)]
        pre = float(r.preset) if isinstance(r.preset, (int, float, np.number)) and r.preset else None
        rows.append({
            "parameter": f"`{_short(r.parameter)}`",
            "swept": ", ".join(fmt_value(v) for v in r.swept),
            "preset": fmt_value(r.preset),
            "consistent range": (f"{fmt_value(r.min)} - {fmt_value(r.max)}" if found else "none"),
            "in other units": (f"{readable(r.parameter, r.min, frequency_hz)} - "
                               f"{readable(r.parameter, r.max, frequency_hz)}" if found else ""),
            "vs preset (x)": (f"{r.min / pre:.3g} - {r.max / pre:.3g}" if found and pre else ""),
            "consistent values (configurations)": ", ".join(found) or "none",
        })
    return pd.DataFrame(rows)


def config_table(result: InverseResult, rows: pd.DataFrame) -> pd.DataFrame:
    """Configurations for Markdown: the varied parameters, both latencies, speed-up, RTF, distance."""
    out = pd.DataFrame({_short(p): [fmt_value(v) for v in rows[p]] for p in result.params})
    out[f"{LOW.upper()} latency (ms)"] = [f"{v * 1e3:.1f}" for v in rows[f"latency_{LOW}_s"]]
    out[f"{HIGH.upper()} latency (ms)"] = [f"{v * 1e3:.1f}" for v in rows[f"latency_{HIGH}_s"]]
    out["speed-up (x)"] = [f"{v:.2f}" for v in rows["speedup_x"]]
    out["INT4 RTF"] = [f"{v:.4f}" for v in rows[f"rtf_{HIGH}"]]
    out["distance"] = [f"{v:.2f}" for v in rows["distance"]]
    return out


def record_sentence(record: dict | None, folder: str) -> str:
    """When, where and how the results were computed, from ``computed.json``."""
    if not record:
        return (f"The results in `{folder}` carry no record of when or where they were computed "
                f"(no `{RUN_RECORD}`; `python -m reports.inverse --out {folder}` writes one).")
    dirty = record.get("uncommitted_changes") or []
    return (f"Computed on {record.get('date', '?')} on {record.get('machine', '?')} "
            f"({record.get('cpu', '?')}) by `{record.get('command', '?')}` at commit "
            f"{str(record.get('git_commit', '?'))[:10]}"
            + (f" with uncommitted changes to {', '.join(f'`{d}`' for d in dirty)}" if dirty else "")
            + f", {record.get('points', '?')} points (sweep results are keyed by preset names, not by the "
            "simulator's code: after a change to the simulator they are stale until recomputed into an "
            "empty folder).")


def inverse_lines(result: InverseResult, figure: str | None, folder: str, top: int = 10) -> list[str]:
    """Markdown lines: what was swept, the tolerance, the count, the ranges, the figure, the rows."""
    t, n, k = result.tol, result.n_configs, result.n_consistent
    rtf = f"rtf_{HIGH}"
    lines = [
        f"Configurations swept: {n} (each at {LOW.upper()} and {HIGH.upper()}"
        + (f"; {result.unpaired} left out for lacking a finished point at one precision" if result.unpaired else "")
        + (f"; {result.errors} design point{'s' if result.errors != 1 else ''} failed" if result.errors else "")
        + "), varying " + ", ".join(f"`{_short(p)}`" for p in result.params)
        + "; every other field keeps its rapid4 value. " + record_sentence(result.record, folder),
        "",
        f"Consistent with the paper means {t.describe()}.",
        "",
    ]
    s, r = result.paired["speedup_x"], result.paired[rtf]
    if n:
        lines += [f"Over the grid the speed-up ranges from {s.min():.2f}x to {s.max():.2f}x and the INT4 "
                  f"RTF from {r.min():.4g} to {r.max():.4g}."]
    if result.preset_row is not None:
        pr = result.preset_row
        lines += [f"The preset's configuration gives {pr['speedup_x']:.2f}x and RTF {pr[rtf]:.4g} "
                  f"({pr['distance']:.1f} tolerance units from the paper)."]
    lines += [""]
    if k == 0:
        lines += [f"**No configuration** of the {n} is consistent with the paper. The nearest "
                  "(distance: the larger deviation, in units of its tolerance; 1 = at the edge):", "",
                  _md(config_table(result, result.nearest(5))), ""]
    else:
        lines += [f"**{k} of {n} configurations ({100 * k / n:.1f}%) are consistent** with the paper. "
                  "Ranges of the consistent configurations per parameter (the value's count of consistent "
                  "configurations in parentheses; cycles at the preset's clock):", "",
                  _md(region_table(result, _frequency(result))), ""]
        fixed = [r for r in result.region.itertuples(index=False) if len(r.consistent) == 1]
        if fixed:
            lines += ["Every consistent configuration has " + ", ".join(
                f"`{_short(r.parameter)}` = {fmt_value(r.consistent[0])}" for r in fixed)
                + (" (the preset's value)" if len(fixed) == 1 and _same(fixed[0].consistent[0], fixed[0].preset)
                   else "") + ".", ""]
        edges = []
        for r in result.region.itertuples(index=False):
            ends = [w for w, hit in (("lowest", _same(r.min, r.swept[0])), ("highest", _same(r.max, r.swept[-1])))
                    if hit and len(r.swept) > 1]
            if ends:
                edges.append(f"`{_short(r.parameter)}` ({' and '.join(ends)})")
        if edges:
            lines += ["The consistent range reaches the end of the swept values for " + ", ".join(edges)
                      + ": the region may extend beyond the grid there.", ""]
        plane = plane_params(result) if len(result.params) >= 2 else []
        if plane:
            combos = (result.paired.loc[result.paired["consistent"], plane].drop_duplicates()
                      .sort_values(plane).itertuples(index=False))
            combos = list(combos)
            lines += [f"The consistent configurations take {len(combos)} combination"
                      + ("s" if len(combos) != 1 else "") + f" of `{_short(plane[0])}` and `{_short(plane[1])}`: "
                      + ", ".join(f"({fmt_value(a)}, {fmt_value(b)})" for a, b in combos)
                      + " (the figure's right panel).", ""]
        lines += mechanism_lines(result)
        off = [r for r in result.region.itertuples(index=False)
               if r.preset is not None and not any(_same(v, r.preset) for v in r.consistent)]
        if off:
            lines += ["No consistent configuration keeps the preset's value of " + ", ".join(
                f"`{_short(r.parameter)}` ({fmt_value(r.preset)})" for r in off) + ".", ""]
        shown = result.paired[result.paired["consistent"]].sort_values("distance", kind="stable").head(top)
        lines += [f"The {len(shown)} consistent configurations closest to the paper:", "",
                  _md(config_table(result, shown)), ""]
    if figure:
        lines += [f"![Inverse search: speed-up vs INT4 RTF]({figure})", ""]
    return lines


def _span(values: pd.Series, scale: float = 100.0, fmt: str = ".0f", unit: str = "%") -> str:
    lo, hi = float(values.min()) * scale, float(values.max()) * scale
    return f"{lo:{fmt}}{unit}" if format(lo, fmt) == format(hi, fmt) else f"{lo:{fmt}}-{hi:{fmt}}{unit}"


def mechanism_lines(result: InverseResult) -> list[str]:
    """What the consistent configurations spend their time on: the share of each precision's
    latency that its DRAM bytes take at full bandwidth, and the per-op dispatch time summed over
    the INT4 run's ops (spread over the cores, so it may exceed the latency)."""
    p = result.paired[result.paired["consistent"]]
    bw, disp = "hw.dram_bw_bytes_per_s", "hw.core.dispatch_overhead_cycles"
    need = [f"dram_bytes_{LOW}", f"dram_bytes_{HIGH}", f"ops_{HIGH}"]
    if p.empty or any(c not in p.columns for c in need):
        return []
    fixed = preset_values(result.hw, [bw, disp, "hw.frequency_hz", "hw.cores"])
    dram_bw = p[bw] if bw in p.columns else fixed[bw]
    dispatch = p[disp] if disp in p.columns else fixed[disp]
    f_hz = p["hw.frequency_hz"] if "hw.frequency_hz" in p.columns else fixed["hw.frequency_hz"]
    cores = p["hw.cores"] if "hw.cores" in p.columns else fixed["hw.cores"]
    share = {prec: p[f"dram_bytes_{prec}"] / dram_bw / p[f"latency_{prec}_s"] for prec in (LOW, HIGH)}
    summed = p[f"ops_{HIGH}"] * dispatch / f_hz / p[f"latency_{HIGH}_s"]
    cores_text = _span(pd.Series(cores, index=p.index) if np.isscalar(cores) else cores, 1, "g", "")
    return [f"In the consistent configurations, moving their DRAM bytes at full DRAM bandwidth takes "
            f"{_span(share[LOW])} of the {LOW.upper()} latency ({_span(p[f'dram_bytes_{LOW}'], 1e-9, '.1f', ' GB')}) "
            f"and {_span(share[HIGH])} of the {HIGH.upper()} latency "
            f"({_span(p[f'dram_bytes_{HIGH}'], 1e-9, '.2f', ' GB')}); the per-op dispatch overhead summed over "
            f"the {HIGH.upper()} run's {_span(p[f'ops_{HIGH}'], 1, ',.0f', '')} ops is "
            f"{_span(summed, 1, '.2f', 'x')} its latency (spread over {cores_text} cores).", ""]


def _frequency(result: InverseResult) -> float | None:
    """The preset's clock (the sweep does not vary it), for ``*_cycles`` parameters."""
    if "hw.frequency_hz" in result.params:
        return None
    return preset_values(result.hw, ["hw.frequency_hz"])["hw.frequency_hz"]


def _same(a, b) -> bool:
    try:
        return bool(np.isclose(float(a), float(b), rtol=1e-9, atol=0))
    except (TypeError, ValueError):
        return a == b


def _md(frame: pd.DataFrame) -> str:
    from reports.markdown import md_table

    return md_table(frame)


# ----------------------------------------------------------------------------------------------
# Running the sweep


def _uncommitted(paths: tuple[str, ...] = ("hwsim", "models", "workloads")) -> list[str]:
    """Tracked files under ``paths`` with uncommitted changes (the results depend on them)."""
    try:
        out = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", *paths], cwd=ROOT,
                             capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return []
    return sorted(line[3:] for line in out.splitlines() if line.strip())


def run_inverse(out_dir: str | Path = DEFAULT_DIR, sweep: str | Path = SWEEP, workers: int | None = None,
                progress: bool = True):
    """Run (or resume) the inverse-search sweep into ``out_dir`` and record when and where.

    ``computed.json`` is (re)written when this call evaluated points or when it is missing; a
    resumed run with nothing left to do keeps the earlier record.

    Returns:
        The ``hwsim.dse.SweepSummary``.
    """
    from hwsim.dse import run_sweep

    out = Path(out_dir)
    start = time.perf_counter()
    summary = run_sweep(sweep, out, workers=workers, progress=progress)
    path = out / RUN_RECORD
    if summary.done or not path.exists():
        record = {
            "date": utc_stamp(),
            "machine": platform.node(),
            "cpu": cpu_model(),
            "cpus": __import__("os").cpu_count(),
            "command": f"python -m reports.inverse --out {out_dir}",
            "sweep": str(Path(sweep).resolve().relative_to(ROOT)) if Path(sweep).resolve().is_relative_to(ROOT)
            else str(sweep),
            "git_commit": git_commit(PROJECT_ROOT) or "unknown",
            "uncommitted_changes": _uncommitted(),
            "points": summary.planned,
            "evaluated_now": summary.done,
            "elapsed_s": round(time.perf_counter() - start, 1),
        }
        with atomic_file(path) as tmp:
            tmp.write_text(json.dumps(record, indent=2) + "\n")
    return summary


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=str(DEFAULT_DIR.relative_to(ROOT)), help="results folder")
    ap.add_argument("--sweep", default=str(SWEEP.relative_to(ROOT)), help="sweep file")
    ap.add_argument("--workers", type=int, default=None, help="worker processes (default: CPU count)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    summary = run_inverse(args.out, args.sweep, workers=args.workers)
    result = analyse(args.out)
    print(f"{summary.planned} points ({summary.done} evaluated now) in {summary.elapsed_s:.0f} s; "
          f"{result.n_consistent} of {result.n_configs} configurations consistent with the paper "
          f"({result.tol.describe()})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
