"""Where the time goes, as a timeline: a Chrome trace (Perfetto, chrome://tracing) and a Gantt chart.

``chrome_trace(result)`` follows the Trace Event Format (Google, "Trace Event Format", the JSON
object form): one complete event (``"ph": "X"``, ``ts``/``dur`` in microseconds) per op and core
it occupies, with the core as the process (``pid``) and the unit (matrix, sfu, vector, select) as
the thread (``tid``); the op's phase is its category and its phase, module, weight, step, what
bounds it and where its weight came from are in ``args``. The DRAM channel is a process of its
own with a counter (``"ph": "C"``) of the bandwidth in use: the channel's busy intervals from the
scheduler, at the full bandwidth while busy (``hwsim.schedule``: transfers fill the channel's
idle time, so the counter is either 0 or the full bandwidth).

``gantt(result, path, window)`` draws the ops of a time window, one lane per (core, unit),
coloured by phase (the colours of ``PHASE_COLOURS``), for reports. matplotlib is imported only
there.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hwsim.cost import UNITS

#: One colour per phase, used by every timeline figure.
PHASE_COLOURS = {"encoder": "#4C72B0", "prediction": "#DD8452", "joint": "#55A868",
                 "lm_ext": "#C44E52", "lm_src": "#8172B3", "search": "#937860"}
#: One colour per precision (``hwsim.precision.PREC_NAMES``), for every figure that colours by
#: precision (``hwsim.roofline``; the reports'): defined here, the lowest layer that draws, as
#: ``PHASE_COLOURS``. FP16 / INT8 / INT4 keep matplotlib's first three cycle colours.
PRECISION_COLOURS = {"fp32": "#4D4D4D", "fp16": "#1F77B4", "bf16": "#17BECF", "fp8": "#9467BD",
                     "int8": "#FF7F0E", "int4": "#2CA02C", "int2": "#D62728"}


def chrome_trace(result) -> dict:
    """The Chrome trace of a ``SimResult`` (see the module docstring)."""
    ops = result.ops
    cores = result.hw.cores
    events: list[dict] = []
    for c in range(cores):
        events.append({"name": "process_name", "ph": "M", "pid": c, "args": {"name": f"core {c}"}})
        for u, unit in enumerate(UNITS):
            events.append({"name": "thread_name", "ph": "M", "pid": c, "tid": u, "args": {"name": unit}})
    dram_pid = cores
    events.append({"name": "process_name", "ph": "M", "pid": dram_pid, "args": {"name": "DRAM channel"}})
    unit_code = {u: i for i, u in enumerate(UNITS)}
    cols = [ops[c].to_numpy() for c in ("op", "phase", "module", "weight", "step", "bound_by",
                                         "weight_source", "unit", "core", "cores", "start_s", "end_s")]
    for i, (op, phase, module, weight, step, bound, source, unit, core, ncores, t0, t1) in enumerate(zip(*cols)):
        args = {"id": i, "phase": phase, "module": module, "step": int(step), "bound_by": bound}
        if weight:
            args["weight"] = weight
            args["weight_source"] = source
        for c in range(int(core), int(core) + int(ncores)):
            events.append({"name": op, "cat": phase, "ph": "X", "ts": float(t0) * 1e6,
                           "dur": float(t1 - t0) * 1e6, "pid": c, "tid": unit_code[unit], "args": args})
    bw_gb = result.hw.dram_bw_bytes_per_s / 1e9
    for t0, t1 in result.dram_busy_s:
        events.append({"name": "DRAM bandwidth in use", "ph": "C", "pid": dram_pid, "ts": float(t0) * 1e6,
                       "args": {"GB/s": bw_gb}})
        events.append({"name": "DRAM bandwidth in use", "ph": "C", "pid": dram_pid, "ts": float(t1) * 1e6,
                       "args": {"GB/s": 0.0}})
    return {"traceEvents": events, "displayTimeUnit": "ns",
            "otherData": {"hw": result.hw.name, "precision": result.policy.name,
                          "latency_s": result.summary["latency_s"]}}


def default_window(result) -> tuple[float, float]:
    """A readable window: the first 1% of the makespan after the search starts (or of the run)."""
    ops = result.ops
    search = ops[ops["phase"] != "encoder"]
    t0 = float(search["start_s"].min()) if len(search) else 0.0
    return t0, t0 + 0.01 * result.summary["latency_s"]


def gantt(result, path: str | Path, window: tuple[float, float] | None = None) -> int:
    """Write a Gantt chart (PNG) of the ops running in ``window`` (seconds; default
    ``default_window``). Returns the number of op bars drawn."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    t0, t1 = window or default_window(result)
    if not t1 > t0:
        raise ValueError(f"gantt window must have end > start, got {t0}..{t1}")
    ops = result.ops
    inside = ops[(ops["end_s"] > t0) & (ops["start_s"] < t1)]
    lanes = [(c, u) for c in range(result.hw.cores) for u in UNITS]
    lane_of = {lane: i for i, lane in enumerate(lanes)}
    fig, ax = plt.subplots(figsize=(10, 0.3 * len(lanes) + 1.2))
    drawn = 0
    scale = 1e6
    for phase, colour in PHASE_COLOURS.items():
        sel = inside[inside["phase"] == phase]
        for core, ncores, unit, s, e in zip(sel["core"], sel["cores"], sel["unit"], sel["start_s"], sel["end_s"]):
            for c in range(int(core), int(core) + int(ncores)):
                y = lane_of[(c, unit)]
                ax.broken_barh([((max(s, t0)) * scale, (min(e, t1) - max(s, t0)) * scale)], (y - 0.4, 0.8),
                               facecolors=colour, linewidth=0)
            drawn += 1
    ax.set_yticks(range(len(lanes)))
    ax.set_yticklabels([f"core {c} {u}" for c, u in lanes], fontsize=7)
    ax.set_ylim(-0.6, len(lanes) - 0.4)
    ax.set_xlim(t0 * scale, t1 * scale)
    ax.set_xlabel("time (us)")
    ax.set_title(f"{result.summary.get('model')} on {result.hw.name} at {result.policy.name}: "
                 f"{t0 * 1e3:.3f}-{t1 * 1e3:.3f} ms", fontsize=9)
    ax.legend(handles=[Patch(color=c, label=p) for p, c in PHASE_COLOURS.items()], fontsize=7,
              loc="upper right", ncol=6)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return drawn
