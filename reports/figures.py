"""Report figures (matplotlib, Agg backend): pure functions from report data to a PNG path."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from hwsim.timeline import PHASE_COLOURS as PHASE_COLORS  # noqa: E402  (one colour per phase everywhere)
from workloads.graph import PHASES as PHASE_ORDER  # noqa: E402


def save_figure(fig, path: str | Path, dpi: int = 120) -> Path:
    """Lay out ``fig``, write it to ``path`` (creating its folder) and close it; returns the path."""
    fig.tight_layout()
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
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def rtf_vs_beam(data, path: Path) -> Path:
    """RTF vs beam, one panel per model, one line per precision (solid: DR fusion, dashed: none)."""
    res = data.results
    models = data.grid.models
    fig, axes = plt.subplots(1, len(models), figsize=(5 * len(models), 3.8), squeeze=False, sharey=True)
    for ax, model in zip(axes[0], models):
        for j, prec in enumerate(data.grid.precisions):
            for fusion, style in (("dr", "-"), ("none", "--")):
                sel = res[(res.model == model) & (res.precision == prec) & (res.lm_fusion == fusion)].sort_values("beam")
                ax.plot(sel.beam, sel.rtf, style, marker="o", color=f"C{j}",
                        label=f"{prec} {'DR' if fusion == 'dr' else 'no LM'}")
        ax.set_xscale("log", base=2)
        ax.set_xticks(list(data.grid.beams), [str(b) for b in data.grid.beams])
        ax.set_xlabel("beam")
        ax.set_title(f"{model} on {data.grid.hw}")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("real-time factor")
    axes[0][-1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def speedup_vs_memory(data, path: Path) -> Path:
    """Two panels: FP16 -> INT4 speed-up (left axis) and INT4 RTF (right axis) of the paper point
    against scratchpad size per core and against DRAM bandwidth (``data.memory_sweep``); the
    report accelerator's own value is marked by a dotted line."""
    sw, hw = data.memory_sweep, data.hw
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.2))
    panels = (("scratchpad", "scratchpad_mib", "scratchpad per core (MiB)", hw.scratchpad_bytes / 2**20),
              ("dram_bw", "dram_bw_gb_s", "DRAM bandwidth (GB/s)", hw.dram_bw_bytes_per_s / 1e9))
    for ax, (axis, col, xlabel, preset) in zip(axes, panels):
        sel = sw[sw.axis == axis].sort_values(col)
        ax.plot(sel[col], sel.speedup_fp16_to_int4_x, "-o", color="C0", label="speed-up FP16 -> INT4")
        ax.set_xscale("log", base=2)
        ax.set_xticks(list(sel[col]), [f"{v:g}" for v in sel[col]], fontsize=7)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("speed-up FP16 -> INT4 (x)", color="C0")
        ax.axvline(preset, color="gray", ls=":", lw=1)
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        twin = ax.twinx()
        twin.plot(sel[col], sel.int4_rtf, "-s", color="C3", label="INT4 RTF")
        twin.set_yscale("log")
        twin.set_ylabel("INT4 real-time factor", color="C3")
        lines = ax.get_lines()[:1] + twin.get_lines()
        ax.legend(lines, [ln.get_label() for ln in lines], fontsize=7, loc="upper center",
                  bbox_to_anchor=(0.5, -0.2), ncol=2, frameon=False)
    g = data.grid
    fig.suptitle(f"{g.models[0]}, beam {max(g.beams)}, DR fusion, {g.audio_s:g} s on {hw.name} "
                 "(dotted: the preset's value)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
