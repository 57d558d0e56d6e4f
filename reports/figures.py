"""Report figures (matplotlib, Agg backend): pure functions from report data to a PNG path.

Conventions every figure of ``reports/`` follows: a precision has one colour everywhere
(``PRECISION_COLOURS``, through ``precision_colour``), a phase too (``hwsim.timeline.PHASE_COLOURS``);
sizes that are powers of two are in MiB, rates in decimal units as the specs give them (GB/s);
ticks sit at the values the data has (no minor ticks between them on log axes); each title says
what is held fixed.
"""

from __future__ import annotations

import math
import zlib
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator  # noqa: E402

from hwsim.timeline import PHASE_COLOURS as PHASE_COLORS  # noqa: E402  (one colour per phase everywhere)
from workloads.graph import PHASES as PHASE_ORDER  # noqa: E402

#: One colour per precision, used by every figure of the reports (matplotlib PNGs and the HTML
#: page's SVG). FP16 / INT8 / INT4 keep matplotlib's first three cycle colours, which the
#: committed figures used for them.
PRECISION_COLOURS = {"fp32": "#4D4D4D", "fp16": "#1F77B4", "bf16": "#17BECF", "fp8": "#9467BD",
                     "int8": "#FF7F0E", "int4": "#2CA02C", "int2": "#D62728"}
#: For other policy names (``int8-encoder``, YAML files): picked by a hash of the name, so that a
#: name gets the same colour in every figure whatever else the figure shows.
_EXTRA_COLOURS = ("#8C564B", "#E377C2", "#BCBD22", "#7F7F7F", "#AEC7E8", "#FFBB78")


def precision_colour(name: str) -> str:
    """The colour of a precision or policy name in every report figure."""
    key = str(name).lower()
    if key in PRECISION_COLOURS:
        return PRECISION_COLOURS[key]
    return _EXTRA_COLOURS[zlib.crc32(key.encode()) % len(_EXTRA_COLOURS)]


def precision_order(names) -> list[str]:
    """Precision names in the order of ``PRECISION_COLOURS`` (widest first), others after, sorted."""
    known = list(PRECISION_COLOURS)
    return sorted(set(map(str, names)), key=lambda n: (known.index(n.lower()) if n.lower() in known else len(known), n))


def log_ticks(lo: float, hi: float) -> list[float]:
    """Tick values of a log axis spanning [lo, hi]: the 1-2-5 values inside it, or only the
    powers of ten when that gives more than 7 ticks; empty when none lies inside (a narrow range)."""
    if not (lo > 0 and hi >= lo):
        return []
    ticks = [m * 10.0 ** e for e in range(math.floor(math.log10(lo)), math.floor(math.log10(hi)) + 1)
             for m in (1, 2, 5)]
    ticks = [t for t in ticks if lo * (1 - 1e-9) <= t <= hi * (1 + 1e-9)]
    if len(ticks) > 7:
        ticks = [t for t in ticks if round(t / 10.0 ** math.floor(math.log10(t))) == 1]
    return ticks


def tick_label(value: float) -> str:
    """A plain tick label: ``0.002``, ``16``, ``1e-05`` (``:g``)."""
    return f"{value:g}"


def set_log_ticks(axis, values: list[float]) -> None:
    """Major ticks of a log ``axis`` exactly at ``values`` with plain labels, and no minor ticks."""
    axis.set_major_locator(FixedLocator(values))
    axis.set_major_formatter(FuncFormatter(lambda v, _: tick_label(v)))
    axis.set_minor_locator(NullLocator())


def save_figure(fig, path: str | Path, dpi: int = 120, rect: tuple | None = None) -> Path:
    """Lay out ``fig`` (within ``rect``, figure fractions, when given: room for a figure legend),
    write it to ``path`` (creating its folder) and close it; returns the path."""
    fig.tight_layout(rect=rect)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path


def phase_breakdown(data, path: Path, precisions: tuple[str, ...] = ("fp16", "int4")) -> Path:
    """Stacked bars of per-phase latency (ms) per model, FP16 vs INT4, largest beam, DR fusion."""
    beam = max(data.grid.beams)
    ph = data.phases[(data.phases.beam == beam) & (data.phases.lm_fusion == "dr")
                     & data.phases.precision.isin(precisions)]
    fig, ax = plt.subplots(figsize=(7, 4))
    labels = []
    for i, (model, prec) in enumerate((m, p) for m in data.grid.models for p in precisions):
        sel = ph[(ph.model == model) & (ph.precision == prec)].set_index("phase")["latency_s"]
        bottom = 0.0
        for phase in PHASE_ORDER:
            ms = 1e3 * float(sel.get(phase, 0.0))
            ax.bar(i, ms, bottom=bottom, color=PHASE_COLORS[phase], label=phase if i == 0 else None)
            bottom += ms
        labels.append(f"{model}\n{prec}")
    ax.set_xticks(range(len(labels)), labels, fontsize=8)
    ax.set_ylabel("latency per utterance (ms)")
    ax.set_title(f"Where the time goes: {data.grid.hw}, beam {beam}, DR fusion, {data.grid.audio_s:g} s audio")
    ax.legend(fontsize=8, ncol=3)
    return save_figure(fig, path)


def rtf_vs_beam(data, path: Path) -> Path:
    """RTF vs beam, one panel per model, one line per precision (solid, filled: DR fusion; dashed,
    open: no LM); RTF on a log axis when it spans more than 20x."""
    res = data.results
    g = data.grid
    models = g.models
    fig, axes = plt.subplots(1, len(models), figsize=(5 * len(models), 3.8), squeeze=False, sharey=True)
    beams = sorted(set(g.beams))
    shown = res[res.model.isin(models) & res.precision.isin(g.precisions)]["rtf"].astype(float)
    log_y = bool(len(shown) and shown.min() > 0 and shown.max() / shown.min() > 20)
    for ax, model in zip(axes[0], models):
        for prec in g.precisions:
            colour = precision_colour(prec)
            for fusion, style, face in (("dr", "-", colour), ("none", "--", "white")):
                sel = res[(res.model == model) & (res.precision == prec) & (res.lm_fusion == fusion)].sort_values("beam")
                if len(sel):
                    ax.plot(sel.beam, sel.rtf, style, marker="o", color=colour, markerfacecolor=face,
                            label=f"{prec} {'DR' if fusion == 'dr' else 'no LM'}")
        if len(beams) > 1:
            ax.set_xscale("log", base=2)
        ax.xaxis.set_major_locator(FixedLocator(beams))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_locator(NullLocator())
        ax.set_xlabel("beam")
        ax.set_title(f"{model}", fontsize=10)
        ax.grid(alpha=0.3)
    if log_y:
        lo, hi = float(shown.min()) / 1.3, float(shown.max()) * 1.3
        axes[0][0].set_yscale("log")
        axes[0][0].set_ylim(lo, hi)
        set_log_ticks(axes[0][0].yaxis, log_ticks(lo, hi))
    axes[0][0].set_ylabel("real-time factor")
    handles, labels = axes[0][-1].get_legend_handles_labels()
    fig.legend(handles, labels, fontsize=7, ncol=2 * len(g.precisions), loc="lower center", frameon=False)
    fig.suptitle(f"RTF vs beam on {g.hw}, {g.audio_s:g} s audio, {g.method.upper()} "
                 "(solid: DR fusion, dashed: no LM)", fontsize=9)
    return save_figure(fig, path, rect=(0, 0.06, 1, 1))


def speedup_vs_memory(data, path: Path) -> Path:
    """Two panels: FP16 -> INT4 speed-up (left axis) and INT4 RTF (right axis) of the paper point
    against scratchpad size per core and against DRAM bandwidth (``data.memory_sweep``); the
    report accelerator's own value is marked by a dotted line."""
    sw, hw = data.memory_sweep, data.hw
    spad_mib, dram_gb_s = hw.scratchpad_bytes / 2**20, hw.dram_bw_bytes_per_s / 1e9
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.2))
    # Each panel varies one field; the other stays at the preset's value (reports.paper.memory_sweep).
    panels = (("scratchpad", "scratchpad_mib", "scratchpad per core (MiB)", spad_mib,
               f"DRAM bandwidth fixed at {dram_gb_s:g} GB/s"),
              ("dram_bw", "dram_bw_gb_s", "DRAM bandwidth (GB/s)", dram_gb_s,
               f"scratchpad fixed at {spad_mib:g} MiB per core"))
    # The INT4 RTF in INT4's colour; the speed-up, a ratio of two precisions, in black.
    speedup_colour, rtf_colour = "black", precision_colour("int4")
    for ax, (axis, col, xlabel, preset, held) in zip(axes, panels):
        sel = sw[sw.axis == axis].sort_values(col)
        ax.plot(sel[col], sel.speedup_fp16_to_int4_x, "-o", color=speedup_colour, label="speed-up FP16 -> INT4")
        if sel[col].nunique() > 1:
            ax.set_xscale("log", base=2)
        ax.xaxis.set_major_locator(FixedLocator(list(sel[col])))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_locator(NullLocator())
        ax.tick_params(axis="x", labelsize=7)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("speed-up FP16 -> INT4 (x)", color=speedup_colour)
        ax.set_title(held, fontsize=8)
        ax.axvline(preset, color="gray", ls=":", lw=1)
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        twin = ax.twinx()
        twin.plot(sel[col], sel.int4_rtf, "-s", color=rtf_colour, label="INT4 RTF")
        rtf = sel.int4_rtf.astype(float)
        if len(rtf) and rtf.min() > 0:
            twin.set_yscale("log")
            lo, hi = float(rtf.min()) / 1.15, float(rtf.max()) * 1.15
            twin.set_ylim(lo, hi)
            set_log_ticks(twin.yaxis, log_ticks(lo, hi) or [float(rtf.min()), float(rtf.max())])
        twin.set_ylabel("INT4 real-time factor", color=rtf_colour)
        lines = ax.get_lines()[:1] + twin.get_lines()
        ax.legend(lines, [ln.get_label() for ln in lines], fontsize=7, loc="upper center",
                  bbox_to_anchor=(0.5, -0.2), ncol=2, frameon=False)
    g = data.grid
    fig.suptitle(f"{g.models[0]}, beam {max(g.beams)}, DR fusion, {g.audio_s:g} s on {hw.name} "
                 "(dotted: the preset's value)", fontsize=9)
    return save_figure(fig, path)
