"""The streaming and serving section of the reference report: latency as a user hears it, and how
many live streams one chip carries at a latency target.

Computed when the section is built (about half a minute on two cores):

- one stream, op level (``hwsim.streaming.simulate_streaming``): per hardware and precision, the
  delay after each chunk's arrival (mean, p95, max), the final-result latency after the end of
  speech, and whether the decoder keeps up;
- streams per chip (``hwsim.serve.max_streams``) at a p95 chunk-delay target, per hardware,
  precision, beam and LM fusion, with the one-stream p95 and the batch service times;
- a figure of the worst stream's p95 delay against the number of streams.

Entry point: ``serving_section(out_dir, grid) -> str`` (Markdown; the figure and CSVs go to
``out_dir``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

STREAMING_CSV = "streaming_one_stream.csv"
CAPACITY_CSV = "serving_capacity.csv"
CURVE_CSV = "serving_p95_vs_streams.csv"
CURVE_PNG = "serving_p95_vs_streams.png"
CHECK_CSV = "serving_op_level_check.csv"


@dataclass(frozen=True)
class ServingGrid:
    """What the section computes. ``p95_ms``: the target [our choice: one default chunk, 40 ms,
    i.e. each chunk's words are out before the next chunk is in]. ``limit``: most streams tried."""

    model: str = "swb300-stream"
    audio_s: float = 20.0
    hws: tuple[str, ...] = ("rapid4", "edge")
    precisions: tuple[str, ...] = ("fp16", "int8", "int4")
    beams: tuple[int, ...] = (4, 8)
    fusions: tuple[str, ...] = ("none", "dr")
    p95_ms: float = 40.0
    limit: int = 4096
    max_batch: int = 16
    curve_streams: tuple[int, ...] = tuple(sorted({2 ** k for k in range(13)} | {3 * 2 ** k for k in range(11)}))
    #: The check of the batch model against op-level interleaved streams (no batching).
    check_audio_s: float = 4.0
    check_streams: tuple[int, ...] = (1, 2, 4, 8, 16)


def one_stream_table(grid: ServingGrid) -> pd.DataFrame:
    """Op-level streaming of one stream, beam ``max(grid.beams)``, DR fusion, per hw and precision."""
    from hwsim.streaming import simulate_streaming

    beam = max(grid.beams)
    rows = []
    for hw in grid.hws:
        for p in grid.precisions:
            st = simulate_streaming(grid.model, hw, p, grid.audio_s, beam, "dr").summary["streaming"]
            rows.append({"hw": hw, "precision": p, "beam": beam, "lm_fusion": "dr", "chunk_ms": st["chunk_s"] * 1000,
                         "delay_mean_ms": st["delay_s"]["mean"] * 1000, "delay_p95_ms": st["delay_s"]["p95"] * 1000,
                         "delay_max_ms": st["delay_s"]["max"] * 1000,
                         "final_latency_ms": st["final_latency_s"] * 1000, "keeps_up": st["keeps_up"],
                         "drift_s_per_s": st["drift_s_per_s"]})
    return pd.DataFrame(rows)


def capacity_and_curves(grid: ServingGrid) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """(streams per chip per configuration, worst p95 against streams for beam ``max(beams)``
    with DR fusion, the ``hwsim.serve.Workload`` of each (hw, precision) of that curve)."""
    from hwsim import serve

    rows, curve, works = [], [], {}
    batching = serve.BatchPolicy(max_batch=grid.max_batch)
    target = grid.p95_ms / 1000
    for hw in grid.hws:
        for p in grid.precisions:
            for beam in grid.beams:
                for fusion in grid.fusions:
                    work = serve.workload(grid.model, hw, p, grid.audio_s, beam, fusion, max_batch=grid.max_batch)
                    best, tried = serve.max_streams(work, target, batching, limit=grid.limit)
                    rows.append({"hw": hw, "precision": p, "beam": beam, "lm_fusion": fusion, "max_streams": best,
                                 "at_limit": best == grid.limit,
                                 "p95_at_max_ms": tried[best].summary["p95_s"] * 1000 if best else np.nan,
                                 "p95_one_stream_ms": tried[1].summary["p95_s"] * 1000,
                                 **{f"{name}_b{b}_ms": getattr(work, f"{name}_s")[b] * 1000
                                    for b in (1, grid.max_batch) for name in ("encoder", "first", "step")}})
                    if beam == max(grid.beams) and fusion == "dr":
                        works[hw, p] = work
                        for s in grid.curve_streams:
                            r = tried.get(s) or serve.serve(work, s, batching)
                            curve.append({"hw": hw, "precision": p, "streams": s, "p95_ms": r.summary["p95_s"] * 1000,
                                          "keeps_up": r.summary["keeps_up"], "mean_batch": r.summary["mean_batch"]})
    return pd.DataFrame(rows), pd.DataFrame(curve), works


def op_level_check(grid: ServingGrid) -> pd.DataFrame:
    """Batches of one against the op-level simulator running S interleaved streams
    (``workloads.streaming.interleave``), for the curves' configurations: per (hw, precision,
    streams) the largest |model / op-level - 1| of a stream's p95 delay."""
    from hwsim import serve
    from hwsim.simulate import simulate
    from models.config import load_config
    from workloads.streaming import interleave, paper_streaming_graph

    cfg = load_config(grid.model)
    beam = max(grid.beams)
    graph = paper_streaming_graph(cfg, grid.check_audio_s, beam, "dr")
    rows = []
    for hw in grid.hws:
        for p in grid.precisions:
            work = serve.workload(cfg, hw, p, grid.check_audio_s, beam, "dr", max_batch=1)
            for s in grid.check_streams:
                many = interleave(graph, serve.offsets(s, work.chunk_s))
                r = simulate(many, hw, p, grid.check_audio_s, config=cfg)
                op = r.chunks.assign(stream=many.meta["streaming"]["stream"]).groupby("stream")["delay_s"] \
                    .quantile(0.95).to_numpy()
                model = serve.serve(work, s, serve.BatchPolicy(max_batch=1)).streams["delay_p95_s"].to_numpy()
                rows.append({"hw": hw, "precision": p, "streams": s, "op_level_p95_ms": op.max() * 1000,
                             "model_p95_ms": model.max() * 1000, "max_abs_err": float(np.abs(model / op - 1).max())})
    return pd.DataFrame(rows)


def anomalies(works: dict, grid: ServingGrid, streams: int = 40) -> dict:
    """How far batching breaks monotonicity in the number of streams, summed over the workloads
    (``hwsim.serve.stream_monotonicity``)."""
    from hwsim import serve

    batching = serve.BatchPolicy(max_batch=grid.max_batch)
    parts = [serve.stream_monotonicity(work, streams, batching) for work in works.values()]
    return {"configurations": len(works), "steps": sum(p["steps"] for p in parts),
            "fell": sum(p["fell"] for p in parts), "worst_drop": max((p["worst_drop"] for p in parts), default=0.0),
            "streams": streams}


def curve_figure(curve: pd.DataFrame, grid: ServingGrid, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from hwsim.timeline import PRECISION_COLOURS

    hws = list(dict.fromkeys(curve["hw"]))
    fig, axes = plt.subplots(1, len(hws), figsize=(5.2 * len(hws), 3.8), sharey=True, squeeze=False)
    for ax, hw in zip(axes[0], hws):
        for p in grid.precisions:
            c = curve[(curve["hw"] == hw) & (curve["precision"] == p)]
            colour = PRECISION_COLOURS.get(p)
            ax.plot(c["streams"], c["p95_ms"], "-", color=colour, label=p.upper(), lw=1.2)
            up = c[c["keeps_up"]]
            down = c[~c["keeps_up"]]
            ax.plot(up["streams"], up["p95_ms"], "o", color=colour, ms=4)
            ax.plot(down["streams"], down["p95_ms"], "o", mfc="none", color=colour, ms=5)
        ax.axhline(grid.p95_ms, color="0.4", ls="--", lw=0.8)
        ax.text(1, grid.p95_ms * 1.12, f"target {grid.p95_ms:g} ms", fontsize=8, color="0.3")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xticks([x for x in grid.curve_streams if x & (x - 1) == 0 and (x.bit_length() - 1) % 2 == 0])
        ax.get_xaxis().set_major_formatter(matplotlib.ticker.ScalarFormatter())
        ax.set_xlabel("live streams")
        ax.set_title(f"{hw}: {grid.model}, beam {max(grid.beams)}, DR fusion", fontsize=9)
        ax.grid(True, which="major", alpha=0.3)
    axes[0][0].set_ylabel("worst stream's p95 chunk delay (ms)")
    axes[0][0].legend(fontsize=8, title="hollow: falls behind", title_fontsize=7)
    fig.suptitle(f"{grid.audio_s:g} s per stream, 40 ms chunks, batches of up to {grid.max_batch}, no wait",
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return path


def _count(row) -> str:
    if row is None:
        return "n/a"
    n = int(row["max_streams"])
    return f">= {n}" if row["at_limit"] else str(n)


def serving_section(out_dir: str | Path, grid: ServingGrid | None = None) -> str:
    """The section as Markdown; writes its CSVs and figure into ``out_dir``."""
    from reports.markdown import md_table

    grid = grid or ServingGrid()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    one = one_stream_table(grid)
    one.to_csv(out / STREAMING_CSV, index=False)
    cap, curve, works = capacity_and_curves(grid)
    anom = anomalies(works, grid, streams=min(40, grid.limit))
    check = op_level_check(grid)
    check.to_csv(out / CHECK_CSV, index=False)
    cap.to_csv(out / CAPACITY_CSV, index=False)
    curve.to_csv(out / CURVE_CSV, index=False)
    curve_figure(curve, grid, out / CURVE_PNG)
    beam = max(grid.beams)

    def row(hw, p, b=beam, f="dr"):
        m = cap[(cap["hw"] == hw) & (cap["precision"] == p) & (cap["beam"] == b) & (cap["lm_fusion"] == f)]
        return None if m.empty else m.iloc[0]

    lines = ["## Streaming and serving", "",
             f"`{grid.model}` (the unidirectional variant of the paper's model, an assumption of ours) with audio "
             "arriving in real time: 40 ms chunks (one encoder output frame), each chunk's encoder work and the "
             "search steps its frames allow released when its audio is there (`hwsim simulate --streaming`; "
             "`workloads.streaming`, `hwsim.streaming`). Weights are on chip before the audio starts as far as "
             "capacity allows (a serving chip loads its model once), the rest streams from DRAM at every use.", "",
             f"### One stream ({grid.audio_s:g} s, beam {beam}, DR fusion)", "",
             md_table(pd.DataFrame({
                 "hw": one["hw"], "precision": one["precision"],
                 "delay mean (ms)": one["delay_mean_ms"].map("{:.3g}".format),
                 "delay p95 (ms)": one["delay_p95_ms"].map("{:.3g}".format),
                 "delay max (ms)": one["delay_max_ms"].map("{:.3g}".format),
                 "final latency (ms)": one["final_latency_ms"].map("{:.3g}".format),
                 "keeps up": one["keeps_up"].map({True: "yes", False: "no"})})), "",
             "Delay: from a chunk's arrival to the end of its last op (its words are out); final latency: from the "
             "end of speech to the final result. Keeping up: the delay does not drift (least-squares slope over the "
             "second half of the chunks at most 0.01 s per s).", ""]
    shown = cap.copy()
    lines += [f"### Streams per chip at a p95 chunk delay of {grid.p95_ms:g} ms", "",
              f"`hwsim serve --max-streams --p95-ms {grid.p95_ms:g}` (`hwsim.serve`): S streams of {grid.audio_s:g} s "
              "each, started at staggered times within a chunk period; the chip batches the ready streams' chunks "
              f"(up to {grid.max_batch}, oldest first, no waiting), a batch's time from the op-level simulator "
              "(one steady chunk of b streams batched: every GEMM's rows times b, each weight read once per batch). "
              f"The count is the largest S (at most {grid.limit}) whose worst stream's p95 meets the target with "
              "every stream keeping up; `>=` marks the limit.", "",
              md_table(pd.DataFrame({
                  "hw": shown["hw"], "precision": shown["precision"], "beam": shown["beam"],
                  "LM fusion": shown["lm_fusion"],
                  "streams": [_count(r) for _, r in shown.iterrows()],
                  "p95 at that count (ms)": shown["p95_at_max_ms"].map(lambda v: "-" if np.isnan(v) else f"{v:.3g}"),
                  "p95 of one stream (ms)": shown["p95_one_stream_ms"].map("{:.3g}".format),
                  **{f"batch of {b}: encoder / with a step / + a step (ms)": [
                      f"{e:.3g} / {f:.3g} / {m:.3g}" for e, f, m in zip(
                          shown[f"encoder_b{b}_ms"], shown[f"first_b{b}_ms"], shown[f"step_b{b}_ms"])]
                     for b in (1, grid.max_batch)}})), ""]
    sentences = []
    for hw in grid.hws:
        a, b = row(hw, "int4"), row(hw, "fp16")
        if a is None or b is None:
            continue
        ratio = (f", {int(a['max_streams']) / int(b['max_streams']):.3g}x" if int(b["max_streams"]) and not
                 (a["at_limit"] or b["at_limit"]) else "")
        sentences.append(f"on `{hw}` INT4 serves {_count(a)} streams and FP16 {_count(b)}{ratio}")
    if sentences:
        lines += [f"At beam {beam} with DR fusion, " + "; ".join(sentences) + ". "
                  "Where weights stream from DRAM at every use (on `edge`, whose on-chip memory holds a small "
                  "part of the model), a batch reads each weight once, so the time per batch grows slowly "
                  "with its size: compare the two service-time columns (a chunk's encoder alone, with its first "
                  "search step, and what each further step adds).", ""]
    inverted = []
    for (hw, p, f), g in cap.groupby(["hw", "precision", "lm_fusion"], sort=False):
        g = g.sort_values("beam")
        n = g["max_streams"].to_numpy()
        if len(n) > 1 and (np.diff(n) > 0).any():
            inverted.append(f"`{hw}` {p.upper()} {'with' if f == 'dr' else 'without'} fusion")
    if inverted:
        lines += ["A larger beam serving more streams (" + "; ".join(inverted) + ") is the mapping, not the search: "
                  "with `mapping.spatial` the stream's work groups get cores in proportion to their work "
                  "(`hwsim.plan.allocate_cores`), and a larger beam moves cores from the encoder, which runs "
                  "alone at the start of each chunk, to the search; `mapping.spatial: false` (every group on "
                  "every core) is the other choice a streaming compiler could make.", ""]
    err = check["max_abs_err"]
    worst = check.loc[err.idxmax()]
    lines += [f"Check of the batch model: with batches of one, against the op-level simulator running S interleaved "
              f"streams, each with its own ops ({grid.check_audio_s:g} s, beam {beam}, DR fusion, S in "
              f"{', '.join(map(str, grid.check_streams))}; `{CHECK_CSV}`): each stream's p95 delay agrees within "
              f"{err.median():.1%} in the median case and {err.max():.1%} at worst (`{worst['hw']}` "
              f"{worst['precision'].upper()}, {int(worst['streams'])} stream{'s' if int(worst['streams']) > 1 else ''}: "
              f"{worst['model_p95_ms']:.3g} ms against "
              f"{worst['op_level_p95_ms']:.3g} ms). The op-level schedule overlaps consecutive chunks of different "
              "streams; the batch model does not.", ""]
    lines += [f"![p95 delay against streams]({CURVE_PNG})", "",
              "Limits of this model (labelled assumptions): batches run one after another on the whole chip "
              "(a pipelined schedule could overlap them; capacity is a lower bound in that respect); a batch's "
              "search step is the decode's average step for every member (parametric statistics); a batch's "
              "selection is one op over its members' candidates; stream start times are a fixed "
              "low-discrepancy sequence over one chunk period. With batching the delays are not monotone in "
              "the number of streams or in bandwidth: an added stream can close a batch that lets another "
              f"stream through sooner (measured here, the {anom['configurations']} curves above, 1 to "
              f"{anom['streams']} streams: some stream's p95 fell in {anom['fell']} of {anom['steps']} steps "
              f"from S to S + 1 streams, the worst stream's p95 by at most {anom['worst_drop']:.1%}), so "
              "`--max-streams`' bisection finds a count that meets the target, not always the largest; "
              "without batching (a FIFO of single chunks) the delays are monotone, and with it no stream is "
              "ever faster than alone (`tests/hwsim/test_serve.py`).", ""]
    return "\n".join(lines)
