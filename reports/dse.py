"""The design-space-exploration section of a report: Pareto plot, best points, sensitivity.

``dse_section(df, out_dir)`` takes a sweep's results (``hwsim.dse.load(DIR)``), writes its figure
(``dse_pareto.png``) and the plotted points (``dse_pareto.json``, read by the HTML page's
interactive plot: ``reports.html``) into ``out_dir`` and returns the section's Markdown (the
figure linked by file name, so the text belongs in ``out_dir``).

Sizes in bytes (``*_bytes``: scratchpads, on-chip memory, all powers of two or sums of them) are
shown in binary units (KiB, MiB), rates (``*_bytes_per_s``) in GB/s, as the specs give them.
"""

from __future__ import annotations

import json
import math
import numbers
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator  # noqa: E402

from hwsim.dse import aliases, pareto, sensitivity, varied_columns  # noqa: E402
from reports.figures import log_ticks, precision_colour, precision_order, save_figure, set_log_ticks  # noqa: E402
from reports.markdown import md_table  # noqa: E402

PARETO_PNG = "dse_pareto.png"
#: The points of the Pareto plot, for the HTML page: ``{"x", "y", "x_label", "y_label", "x_log",
#: "y_log", "caption", "fields": [[column, label], ...], "points": [{column: value, "front": bool}]}``
#: (x and y already scaled to the plotted units).
PARETO_JSON = "dse_pareto.json"
#: Objectives tried in order when none are given: the first two present in the table (chip area
#: is the cost axis when the accelerator has area coefficients, ``hwsim.area``; else on-chip bytes).
DEFAULT_OBJECTIVES = (("rtf", "min"), ("area_mm2", "min"), ("onchip_bytes", "min"), ("energy_j", "min"),
                      ("macs", "min"))
#: Figures shown for a design point, with their display name, scale and format.
FIGURES = (("rtf", "RTF", 1.0, ".4f"), ("latency_s", "latency_ms", 1e3, ".2f"),
           ("onchip_bytes", "on-chip MiB", 2.0**-20, ".2f"), ("area_mm2", "area mm²", 1.0, ".2f"),
           ("energy_j", "energy_mJ", 1e3, ".3f"), ("compression_x", "compression (x)", 1.0, ".2f"))
_BINARY = ((2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB"), (1, "B"))


def default_objectives(df: pd.DataFrame) -> dict[str, str]:
    """RTF against chip area, or on-chip memory (or the next figures present), as the two
    objectives."""
    found = {c: s for c, s in DEFAULT_OBJECTIVES if c in df.columns and df[c].notna().any()}
    if len(found) < 2:
        raise ValueError(f"need two of {[c for c, _ in DEFAULT_OBJECTIVES]} in the results")
    return dict(list(found.items())[:2])


def unit(col: str, values: pd.Series | None = None) -> tuple[str, float]:
    """(unit, scale) in which column ``col`` is shown: binary units for ``*_bytes`` (the largest
    that keeps the smallest non-zero value >= 1), GB/s for ``*_bytes_per_s``, ms and mJ for
    seconds and joules, GMACs; ("", 1) for anything else."""
    if col.endswith("_bytes_per_s"):
        return "GB/s", 1e-9
    if col.endswith("_bytes"):
        v = pd.to_numeric(values, errors="coerce").abs() if values is not None else pd.Series(dtype=float)
        v = v[v > 0]
        smallest = float(v.min()) if len(v) else 2.0**20
        for size, name in _BINARY:
            if smallest >= size:
                return name, 1.0 / size
        return "B", 1.0
    return {"latency_s": ("ms", 1e3), "energy_j": ("mJ", 1e3), "macs": ("GMACs", 1e-9),
            "area_mm2": ("mm²", 1.0)}.get(col, ("", 1.0))


def _label(col: str, values: pd.Series | None = None) -> str:
    name = {"rtf": "real-time factor", "onchip_bytes": "on-chip memory", "energy_j": "energy",
            "latency_s": "latency", "macs": "work", "area_mm2": "chip area"}.get(col, col)
    u, _ = unit(col, values)
    return f"{name} ({u})" if u else name


def _scaled(series: pd.Series, col: str, values: pd.Series | None = None) -> pd.Series:
    return series.astype(float) * unit(col, series if values is None else values)[1]


def _is_log(values: pd.Series) -> bool:
    """A logarithmic axis when the (positive) values span more than 20x."""
    v = values.dropna()
    return bool(len(v) and v.min() > 0 and v.max() / v.min() > 20)


def _axis_ticks(values: pd.Series, log: bool) -> list[float] | None:
    """Ticks at the values the points have when there are few of them; else None (matplotlib's)."""
    distinct = sorted(set(float(v) for v in values.dropna()))
    if 1 <= len(distinct) <= 8:
        return distinct
    if log and len(distinct):
        return log_ticks(distinct[0], distinct[-1]) or None
    return None


def pareto_plot(df: pd.DataFrame, front: pd.DataFrame, objectives: dict[str, str], path: Path,
                title: str = "Design points and Pareto front") -> Path:
    """Scatter of all ok points over the first two objectives, the front highlighted.

    Points are coloured by ``precision`` (``reports.figures.precision_colour``) when it varies,
    the front drawn as a staircase. Axes are logarithmic when a range spans more than 20x; an
    axis with at most 8 distinct values has its ticks at those values only.
    """
    x, y = list(objectives)[:2]
    ok = df[df["status"] == "ok"] if "status" in df.columns else df
    fig, ax = plt.subplots(figsize=(6.5, 4.4))
    by_precision = "precision" in ok and ok["precision"].nunique() > 1
    groups = ([(p, ok[ok["precision"].astype(str) == p]) for p in precision_order(ok["precision"])]
              if by_precision else [("all points", ok)])
    for name, g in groups:
        ax.scatter(_scaled(g[x], x, ok[x]), _scaled(g[y], y, ok[y]), s=12, alpha=0.45,
                   color=precision_colour(name) if by_precision else "#7F7F7F", label=str(name))
    f = front.sort_values(x)
    ax.step(_scaled(f[x], x, ok[x]), _scaled(f[y], y, ok[y]), where="post", color="black", lw=1.2)
    ax.scatter(_scaled(f[x], x, ok[x]), _scaled(f[y], y, ok[y]), s=36, facecolors="none", edgecolors="black",
               label=f"Pareto front ({len(front)})")
    for col, setter, axis in ((x, ax.set_xscale, ax.xaxis), (y, ax.set_yscale, ax.yaxis)):
        vals = _scaled(ok[col], col)
        log = _is_log(vals)
        if log:
            setter("log")
        ticks = _axis_ticks(vals, log)
        if ticks is not None:
            if log:
                set_log_ticks(axis, ticks)
            else:
                axis.set_major_locator(FixedLocator(ticks))
                axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.3g}"))
                axis.set_minor_locator(NullLocator())
    ax.set_xlabel(_label(x, ok[x]))
    ax.set_ylabel(_label(y, ok[y]))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    ax.set_title(title, fontsize=9)
    return save_figure(fig, path)


def pareto_points(df: pd.DataFrame, front: pd.DataFrame, objectives: dict[str, str], shown: list[str],
                  caption: str) -> dict:
    """The Pareto plot's points as plain data (``PARETO_JSON``), for the HTML page."""
    x, y = list(objectives)[:2]
    ok = df[df["status"] == "ok"] if "status" in df.columns else df
    on_front = set(front.index)      # hwsim.dse.pareto keeps the rows' index
    fields = []
    for c in ["precision", *[p for p in shown if p != "precision"]]:
        if c in ok.columns:
            name, scale, _ = _column(c, ok[c])
            fields.append([c, name, scale])
    for col, name, scale, _ in FIGURES:
        if col in ok.columns and ok[col].notna().any():
            fields.append([col, name, scale])
    if "key" in ok.columns:
        fields.append(["key", "key", None])
    points = []
    for idx, r in ok.iterrows():
        p = {"x": float(r[x]) * unit(x, ok[x])[1], "y": float(r[y]) * unit(y, ok[y])[1],
             "front": idx in on_front}
        for c, _, scale in fields:
            v = r[c]
            if scale is not None and _is_number(v):
                v = float(v) * scale
                v = None if math.isnan(v) else v
            elif c == "key":
                v = str(v)[:12]
            else:
                v = str(v)
            p[c] = v
        points.append(p)
    return {"x": x, "y": y, "x_label": _label(x, ok[x]), "y_label": _label(y, ok[y]),
            "x_log": _is_log(_scaled(ok[x], x)), "y_log": _is_log(_scaled(ok[y], y)), "caption": caption,
            "fields": [[c, name] for c, name, _ in fields], "points": points}


def _short(col: str) -> str:
    return col.removeprefix("hw.")


def _column(col: str, values: pd.Series) -> tuple[str, float, str]:
    """(table header, scale, format) of a point parameter, in the unit the knob is given in."""
    u, scale = unit(col, values)
    return (f"{_short(col)} ({u})" if u else _short(col)), scale, ".4g"


def _best_table(front: pd.DataFrame, params: list[str], top: int, ok: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    f = front.sort_values("rtf").head(top) if "rtf" in front else front.head(top)
    table, formats = pd.DataFrame(index=f.index), {}
    for c in params:
        name, scale, fmt = _column(c, ok[c])
        numeric = pd.api.types.is_numeric_dtype(f[c]) and not pd.api.types.is_bool_dtype(f[c])
        table[name] = f[c].astype(float) * scale if numeric and scale != 1.0 else f[c]
        formats[name] = fmt
    for col, name, scale, fmt in FIGURES:
        if col in f and f[col].notna().any():
            table[name] = f[col].astype(float).to_numpy() * scale
            formats[name] = fmt
    return table.reset_index(drop=True), formats


def _sensitivity_table(df: pd.DataFrame, groups: dict[str, list[str]]) -> pd.DataFrame:
    s = sensitivity(df, "rtf", list(groups))
    rows = []
    for p, g in s.groupby("param", sort=False):
        values = ", ".join(f"{_value_text(p, v, df[p])}: {m:.4g}" for v, m in zip(g["value"], g["median"]))
        name = f"`{p}`" + (f" (with {', '.join(f'`{_short(a)}`' for a in groups[p])})" if groups[p] else "")
        rows.append({"parameter": name, "median RTF per value": values,
                     "max/min median (x)": float(g["range_x"].iloc[0])})
    return pd.DataFrame(rows, columns=["parameter", "median RTF per value", "max/min median (x)"])


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def _wrap(text: str, width: int) -> str:
    import textwrap

    return "\n".join(textwrap.wrap(text, width))


def _is_number(v) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_))


def _value_text(col: str, v, values: pd.Series) -> str:
    """A parameter's value in its display unit (``2 MiB``, ``51.2 GB/s``, ``int4``)."""
    u, scale = unit(col, values)
    if u and _is_number(v):
        return f"{float(v) * scale:.4g} {u}"
    return _fmt(v)


def dse_section(df: pd.DataFrame | str | Path, out_dir: str | Path, objectives: dict[str, str] | None = None,
                top: int = 10, title: str = "Design-space exploration",
                where: dict | str | None = "auto") -> str:
    """Markdown for a sweep's results; writes ``dse_pareto.png`` and ``dse_pareto.json`` into ``out_dir``.

    Args:
        df: results table (``hwsim.dse.load``): ``status``, point parameters, figures; or a
            sweep directory, loaded here.
        out_dir: where the figure goes (the returned Markdown links it by file name).
        objectives: two (or three; the plot shows the first two) objectives for the front;
            default RTF vs on-chip memory.
        top: rows of the best-points table.
        title: section heading.
        where: column -> value filter for the Pareto front (e.g. ``{"beam": 16}``); ``"auto"``
            (default): the largest beam when the beam varies (a wider beam costs more but decodes
            better, so beams do not compete on cost alone), else no filter; None: no filter. The
            sensitivity table always uses every ok point.

    Returns:
        The section as Markdown: counts, the Pareto figure, the front's best points by RTF, and
        the sensitivity of RTF to each varied parameter (median RTF per value, max/min ratio).
    """
    if not isinstance(df, pd.DataFrame):
        from hwsim.dse import load

        df = load(df)
    out = Path(out_dir)
    ok = df[df["status"] == "ok"] if "status" in df.columns else df
    n_err = len(df) - len(ok)
    params = varied_columns(ok)
    lines = [f"## {title}", ""]
    if ok.empty:
        lines += [f"No design point finished ({n_err} errors).", ""]
        return "\n".join(lines)
    groups = aliases(ok, params)
    if where == "auto":
        where = {"beam": ok["beam"].max()} if "beam" in params else None
    sel = ok
    for col, value in (where or {}).items():
        if col not in ok.columns:
            raise ValueError(f"dse_section: where names unknown column {col!r}")
        sel = sel[sel[col] == value]
    if sel.empty:
        raise ValueError(f"dse_section: no ok point matches where={where}")
    objectives = objectives or default_objectives(sel)
    front = pareto(sel, objectives)
    fixed = [c for c in ("model", "hw", "audio_s", "lm_fusion", "method", "precision", "beam")
             if c in ok and c not in params]
    shown = [p for p in params if p in groups and p not in (where or {})]
    held_text = ", ".join(f"{_short(c)}={_value_text(c, ok[c].iloc[0], ok[c])}" for c in fixed)
    only = ", ".join(f"{_short(c)}={_value_text(c, v, ok[c])}" for c, v in (where or {}).items())
    x, y = list(objectives)[:2]
    plot_title = (f"{len(sel)} design points" + (f" with {only} only" if only else "")
                  + (f"; fixed: {held_text}" if held_text else ""))
    pareto_plot(sel, front, objectives, out / PARETO_PNG, title=_wrap(plot_title, 80))
    caption = (f"Pareto plot: {_label(x, sel[x])} against {_label(y, sel[y])} for the {len(sel)} ok points"
               + (" with " + ", ".join(f"`{c}`={_fmt(v)}" for c, v in where.items()) + " only" if where else "")
               + (f"; held fixed: {held_text}" if held_text else "")
               + (f"; varying: {', '.join(_short(p) for p in shown)}" if shown else "")
               + ("; colour: precision" if "precision" in shown else "")
               + f"; black: the Pareto front ({len(front)} points).")
    (out / PARETO_JSON).write_text(json.dumps(pareto_points(sel, front, objectives, shown, caption), indent=1) + "\n")
    table, formats = _best_table(front, shown, top, ok)
    scope = (" among points with " + ", ".join(f"`{c}`={_fmt(v)}" for c, v in where.items())) if where else ""
    lines += [
        f"{len(df)} design points ({len(ok)} ok, {n_err} errors); varied: "
        + (", ".join(f"`{p}`" for p in groups) or "nothing") + "; fixed: "
        + ", ".join(f"`{c}`={_fmt(ok[c].iloc[0])}" for c in fixed) + ".",
        "",
        f"![Pareto front]({PARETO_PNG})",
        "",
        f"*{caption}*",
        "",
        f"### Pareto front ({' vs '.join(f'{c} ({s})' for c, s in objectives.items())}){scope}: "
        f"{len(front)} points, "
        + (f"best {min(top, len(front))} by RTF" if "rtf" in front else f"first {min(top, len(front))}"),
        "",
        md_table(table, formats),
        "",
    ]
    if groups and "rtf" in ok:
        lines += ["### Sensitivity of RTF to each varied parameter", "",
                  "Median RTF over all ok points with each value (the other parameters varying); "
                  "the ratio says how many times the typical RTF changes across the parameter's range.",
                  "", md_table(_sensitivity_table(ok, groups), {"max/min median (x)": ".2f"}), ""]
    if n_err:
        errs = df.loc[df["status"] != "ok", "error"].value_counts().head(3)
        lines += ["Errors (most frequent): " + "; ".join(f"{c} x `{e[:120]}`" for e, c in errs.items()), ""]
    return "\n".join(lines)
