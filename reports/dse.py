"""The design-space-exploration section of a report: Pareto plot, best points, sensitivity.

``dse_section(df, out_dir)`` takes a sweep's results (``hwsim.dse.load(DIR)``), writes its figure
into ``out_dir`` and returns the section's Markdown (the figure linked by file name, so the text
belongs in ``out_dir``).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.ticker import NullFormatter  # noqa: E402

from hwsim.dse import aliases, pareto, sensitivity, varied_columns  # noqa: E402
from reports.markdown import md_table  # noqa: E402

PARETO_PNG = "dse_pareto.png"
#: Objectives tried in order when none are given: the first two present in the table.
DEFAULT_OBJECTIVES = (("rtf", "min"), ("onchip_bytes", "min"), ("energy_j", "min"), ("macs", "min"))


def default_objectives(df: pd.DataFrame) -> dict[str, str]:
    """RTF against on-chip memory (or the next figures present) as the two objectives."""
    found = {c: s for c, s in DEFAULT_OBJECTIVES if c in df.columns and df[c].notna().any()}
    if len(found) < 2:
        raise ValueError(f"need two of {[c for c, _ in DEFAULT_OBJECTIVES]} in the results")
    return dict(list(found.items())[:2])


def _label(col: str) -> str:
    return {"rtf": "real-time factor", "onchip_bytes": "on-chip memory (MB)", "energy_j": "energy (mJ)",
            "latency_s": "latency (ms)", "macs": "GMACs"}.get(col, col)


def _scaled(series: pd.Series, col: str) -> pd.Series:
    scale = {"onchip_bytes": 1e-6, "energy_j": 1e3, "latency_s": 1e3, "macs": 1e-9}.get(col, 1.0)
    return series.astype(float) * scale


def pareto_plot(df: pd.DataFrame, front: pd.DataFrame, objectives: dict[str, str], path: Path) -> Path:
    """Scatter of all ok points over the first two objectives, the front highlighted.

    Points are coloured by ``precision`` when it varies, the front drawn as a staircase.
    """
    x, y = list(objectives)[:2]
    ok = df[df["status"] == "ok"] if "status" in df.columns else df
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    groups = ok.groupby("precision") if "precision" in ok and ok["precision"].nunique() > 1 else [("all points", ok)]
    for i, (name, g) in enumerate(groups):
        ax.scatter(_scaled(g[x], x), _scaled(g[y], y), s=12, alpha=0.45, color=f"C{i}", label=str(name))
    f = front.sort_values(x)
    ax.step(_scaled(f[x], x), _scaled(f[y], y), where="post", color="black", lw=1.2)
    ax.scatter(_scaled(f[x], x), _scaled(f[y], y), s=36, facecolors="none", edgecolors="black",
               label=f"Pareto front ({len(front)})")
    for col, setter, axis in ((x, ax.set_xscale, ax.xaxis), (y, ax.set_yscale, ax.yaxis)):
        vals = ok[col].astype(float)
        if len(vals) and vals.min() > 0 and vals.max() / vals.min() > 20:
            setter("log")
            axis.set_minor_formatter(NullFormatter())
    ax.set_xlabel(_label(x))
    ax.set_ylabel(_label(y))
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)
    ax.set_title("Design points and Pareto front", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _short(col: str) -> str:
    return col.removeprefix("hw.")


def _best_table(front: pd.DataFrame, params: list[str], top: int) -> tuple[pd.DataFrame, dict]:
    f = front.sort_values("rtf").head(top) if "rtf" in front else front.head(top)
    table = f[params].copy()
    table.columns = [_short(c) for c in params]
    formats = {_short(c): ".4g" for c in params}
    for col, name, scale, fmt in (("rtf", "RTF", 1.0, ".4f"), ("latency_s", "latency_ms", 1e3, ".2f"),
                                  ("onchip_bytes", "on-chip MB", 1e-6, ".2f"),
                                  ("energy_j", "energy_mJ", 1e3, ".3f"),
                                  ("compression_x", "compression (x)", 1.0, ".2f")):
        if col in f and f[col].notna().any():
            table[name] = f[col].astype(float).to_numpy() * scale
            formats[name] = fmt
    return table, formats


def _sensitivity_table(df: pd.DataFrame, groups: dict[str, list[str]]) -> pd.DataFrame:
    s = sensitivity(df, "rtf", list(groups))
    rows = []
    for p, g in s.groupby("param", sort=False):
        values = ", ".join(f"{_fmt(v)}: {m:.4g}" for v, m in zip(g["value"], g["median"]))
        name = f"`{p}`" + (f" (with {', '.join(f'`{_short(a)}`' for a in groups[p])})" if groups[p] else "")
        rows.append({"parameter": name, "median RTF per value": values,
                     "max/min median (x)": float(g["range_x"].iloc[0])})
    return pd.DataFrame(rows, columns=["parameter", "median RTF per value", "max/min median (x)"])


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def dse_section(df: pd.DataFrame | str | Path, out_dir: str | Path, objectives: dict[str, str] | None = None,
                top: int = 10, title: str = "Design-space exploration",
                where: dict | str | None = "auto") -> str:
    """Markdown for a sweep's results; writes ``dse_pareto.png`` into ``out_dir``.

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
    pareto_plot(sel, front, objectives, out / PARETO_PNG)
    fixed = [c for c in ("model", "hw", "audio_s", "lm_fusion", "method", "precision", "beam")
             if c in ok and c not in params]
    shown = [p for p in params if p in groups and p not in (where or {})]
    table, formats = _best_table(front, shown, top)
    scope = (" among points with " + ", ".join(f"`{c}`={_fmt(v)}" for c, v in where.items())) if where else ""
    lines += [
        f"{len(df)} design points ({len(ok)} ok, {n_err} errors); varied: "
        + (", ".join(f"`{p}`" for p in groups) or "nothing") + "; fixed: "
        + ", ".join(f"`{c}`={_fmt(ok[c].iloc[0])}" for c in fixed) + ".",
        "",
        f"![Pareto front]({PARETO_PNG})",
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
