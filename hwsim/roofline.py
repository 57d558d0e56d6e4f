"""A roofline of a run: per (module, phase), arithmetic intensity against the rate achieved.

``points(result)`` has one row per (module, phase) whose ops do MACs (``POINT_COLUMNS``):

- ``ops_per_s`` counts 2 x MACs as operations; the rate achieved is ``2 * macs / busy_s``, with
  ``busy_s`` the sum of the latencies of all the group's ops (its element-wise and nonlinear ops
  included: they are part of what the module takes);
- intensity twice: ``2 * macs / dram_bytes`` (the bytes its ops read and write in DRAM, prefetch
  and spills included; ``inf`` when all its data stays on chip) and ``2 * macs / onchip_bytes``
  (its scratchpad bytes, ``sram_bytes``: every operand enters the engine through its core's
  scratchpad port, wherever it is stored);
- ``precision``: the matrix engine's precision for most of the group's MACs (after fallback);
- the roofs, whole chip: ``peak_ops_per_s`` = 2 x ``AcceleratorSpec.peak_macs_per_s(precision)``,
  the DRAM slope ``dram_bw_bytes_per_s`` and the scratchpad slope ``cores *
  scratchpad_bw_bytes_per_s``; ``roof_ops_per_s`` is the lowest of the three at the group's
  intensities, ``roof`` names it (compute, dram, scratchpad), ``roof_fraction`` = achieved / roof.
  A point may lie above the DRAM roof when its weights were prefetched (``dram_prefetch_bytes``,
  part of ``dram_bytes``: loaded while earlier work ran, so not on its own time).
  An op that runs on one core of ``cores`` reaches at most 1/cores of the chip's roof (the figure
  draws that one-core roof dotted).
- ``time_share``: ``busy_s`` over the busy time of all the run's ops (marker area).

``figure(result, path)`` draws the two rooflines side by side (DRAM, scratchpad), one colour per
precision (``hwsim.timeline.PRECISION_COLOURS``, the one palette of precisions);
``write(result, out_dir)`` writes ``roofline.csv`` and ``roofline.png``. matplotlib is imported
only for the figure.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from hwsim.timeline import PRECISION_COLOURS


#: Columns of ``points``, in order.
POINT_COLUMNS = ("module", "phase", "precision", "ops", "macs", "busy_s", "time_share", "dram_bytes",
                 "dram_prefetch_bytes", "onchip_bytes", "intensity_dram_ops_per_byte", "intensity_onchip_ops_per_byte",
                 "achieved_ops_per_s", "peak_ops_per_s", "roof_ops_per_s", "roof", "roof_fraction")


def slopes(hw) -> dict[str, float]:
    """Bandwidth slopes of the roofline, whole chip (bytes/s): ``dram``, ``scratchpad``."""
    return {"dram": float(hw.dram_bw_bytes_per_s), "scratchpad": float(hw.cores * hw.core.scratchpad_bw_bytes_per_s)}


def _div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(b > 0, a / np.where(b > 0, b, 1.0), np.inf)


def points(result) -> pd.DataFrame:
    """The roofline points of a ``SimResult`` (module docstring), largest ``time_share`` first."""
    ops = result.ops
    hw = result.hw
    if not len(ops):
        return pd.DataFrame(columns=list(POINT_COLUMNS))
    frame = pd.DataFrame({
        "module": ops["module"].astype(str).to_numpy(), "phase": ops["phase"].astype(str).to_numpy(),
        "macs": ops["macs"].to_numpy(dtype=np.int64), "busy_s": ops["latency_s"].to_numpy(dtype=np.float64),
        "dram_bytes": ops["dram_bytes"].to_numpy(dtype=np.float64),
        "dram_prefetch_bytes": ops["prefetch_bytes"].to_numpy(dtype=np.float64),
        "onchip_bytes": ops["sram_bytes"].to_numpy(dtype=np.float64),
        "precision": ops["precision"].astype(str).to_numpy(),
    })
    total_busy = float(frame["busy_s"].sum())
    keys = ["module", "phase"]
    g = frame.groupby(keys, sort=False)
    out = g[["macs", "busy_s", "dram_bytes", "dram_prefetch_bytes", "onchip_bytes"]].sum()
    out["ops"] = g.size()
    mac = frame[frame["macs"] > 0]
    prec = (mac.groupby(keys + ["precision"], sort=False)["macs"].sum().reset_index()
            .sort_values("macs", ascending=False, kind="stable").drop_duplicates(keys).set_index(keys)["precision"])
    out = out[out["macs"] > 0].join(prec).reset_index()
    flops = 2.0 * out["macs"].to_numpy(dtype=np.float64)
    sl = slopes(hw)
    out["time_share"] = out["busy_s"] / total_busy if total_busy > 0 else 0.0
    out["intensity_dram_ops_per_byte"] = _div(flops, out["dram_bytes"].to_numpy())
    out["intensity_onchip_ops_per_byte"] = _div(flops, out["onchip_bytes"].to_numpy())
    out["achieved_ops_per_s"] = _div(flops, out["busy_s"].to_numpy())
    out["peak_ops_per_s"] = [2.0 * hw.peak_macs_per_s(p) for p in out["precision"]]
    roofs = np.stack([out["peak_ops_per_s"].to_numpy(), out["intensity_dram_ops_per_byte"].to_numpy() * sl["dram"],
                      out["intensity_onchip_ops_per_byte"].to_numpy() * sl["scratchpad"]])
    lowest = np.argmin(roofs, axis=0)
    out["roof_ops_per_s"] = roofs[lowest, np.arange(roofs.shape[1])]
    out["roof"] = np.asarray(["compute", "dram", "scratchpad"], dtype=object)[lowest]
    out["roof_fraction"] = out["achieved_ops_per_s"] / out["roof_ops_per_s"]
    out = out.sort_values("time_share", ascending=False, kind="stable").reset_index(drop=True)
    return out[list(POINT_COLUMNS)]


def figure(result, path: str | Path, pts: pd.DataFrame | None = None, labels: int = 5) -> Path:
    """Write the roofline figure (PNG) of ``result``: left against DRAM bytes, right against
    scratchpad bytes; marker area by time share; the ``labels`` largest points named (points at
    the same spot share one label: ``(+k alike)``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    pts = points(result) if pts is None else pts
    hw = result.hw
    sl = slopes(hw)
    precisions = [p for p in PRECISION_COLOURS if p in set(pts["precision"])]
    fig, axes = plt.subplots(1, 2, figsize=(12, 5), sharey=True)
    achieved = pts["achieved_ops_per_s"].to_numpy(dtype=np.float64)
    peaks = {p: 2.0 * hw.peak_macs_per_s(p) for p in precisions}
    y_hi = 3.0 * max(peaks.values(), default=1.0)
    y_lo = min(float(achieved[achieved > 0].min()) if (achieved > 0).any() else y_hi / 1e4, y_hi / 1e3) / 3.0
    for ax, (col, slope_name, what) in zip(axes, (
            ("intensity_dram_ops_per_byte", "dram", "DRAM"),
            ("intensity_onchip_ops_per_byte", "scratchpad", "scratchpad"))):
        x = pts[col].to_numpy(dtype=np.float64)
        finite = np.isfinite(x) & (x > 0)
        x_max = float(x[finite].max()) if finite.any() else 1.0
        x_min = float(x[finite].min()) if finite.any() else 1.0
        ridge = max(peaks.values(), default=1.0) / sl[slope_name]
        x_lo, x_hi = min(x_min, ridge) / 4.0, max(x_max, ridge) * 4.0
        edge = x_hi / 1.5                        # where points with no bytes at this level are drawn
        xs = np.geomspace(x_lo, x_hi, 200)
        bw = sl[slope_name]
        # one core: its share of the scratchpad bandwidth, the whole DRAM channel
        bw_core = bw / hw.cores if slope_name == "scratchpad" else bw
        for p in precisions:
            colour = PRECISION_COLOURS[p]
            ax.plot(xs, np.minimum(bw * xs, peaks[p]), color=colour, lw=1.5)
            ax.plot(xs, np.minimum(bw_core * xs, peaks[p] / hw.cores), color=colour, lw=1, ls=":")
            ax.text(x_lo * 1.2, peaks[p] * 1.1, f"{p} peak {peaks[p] / 1e12:.4g} Top/s", color=colour, fontsize=7)
        x_text = x_lo * 1.5
        ax.annotate(f"{what} {bw / 1e9:.4g} GB/s", (x_text, bw * x_text), xytext=(-2, 6),
                    textcoords="offset points", fontsize=7, color="gray")
        for p in precisions:
            sel = (pts["precision"] == p).to_numpy()
            size = 20 + 800 * pts["time_share"].to_numpy(dtype=np.float64)[sel]
            xp = np.where(finite[sel], x[sel], edge)
            on_edge = ~finite[sel]
            ax.scatter(xp[~on_edge], achieved[sel][~on_edge], s=size[~on_edge], color=PRECISION_COLOURS[p],
                       alpha=0.6, edgecolors="black", linewidths=0.5)
            if on_edge.any():
                ax.scatter(xp[on_edge], achieved[sel][on_edge], s=size[on_edge], color=PRECISION_COLOURS[p],
                           alpha=0.6, marker=">", edgecolors="black", linewidths=0.5)
        placed: list[list] = []                # [x, y, name, points alike]: one label per spot
        for i in range(len(pts)):              # the largest first, until ``labels`` spots are named
            xi = x[i] if finite[i] else edge
            near = [p for p in placed if abs(np.log10(p[0] / xi)) < 0.05 and abs(np.log10(p[1] / achieved[i])) < 0.05]
            if near:
                near[0][3] += 1
            elif len(placed) < labels:
                placed.append([xi, achieved[i], pts["module"].iloc[i] or "(search ops)", 0])
        for xi, yi, name, alike in placed:
            ax.annotate(name + (f" (+{alike} alike)" if alike else ""), (xi, yi), fontsize=6,
                        xytext=(4, 4), textcoords="offset points")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlim(x_lo, x_hi)
        ax.set_ylim(y_lo, y_hi)
        ax.set_xlabel(f"arithmetic intensity (ops per {what} byte; ops = 2 x MACs)")
        ax.grid(True, which="major", lw=0.3)
        ax.set_title(f"against {what} bytes" + (" (>: no DRAM bytes)" if (~finite).any() else ""), fontsize=9)
    axes[0].set_ylabel("achieved rate (ops/s over the group's busy time)")
    handles = [Line2D([], [], color=PRECISION_COLOURS[p], marker="o", ls="-", label=p) for p in precisions]
    handles.append(Line2D([], [], color="gray", ls=":", label=f"one core of {hw.cores}"))
    axes[1].legend(handles=handles, fontsize=7, loc="lower right")
    s = result.summary
    fig.suptitle(f"{s.get('model')} on {hw.name} at {result.policy.name}: one point per (module, phase) "
                 f"with MACs, area by share of busy time", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)


def write(result, out_dir: str | Path) -> pd.DataFrame:
    """Write ``roofline.csv`` (the points) and ``roofline.png`` into ``out_dir``; returns the points."""
    out = Path(out_dir)
    pts = points(result)
    pts.to_csv(out / "roofline.csv", index=False)
    if len(pts):
        figure(result, out / "roofline.png", pts)
    return pts
