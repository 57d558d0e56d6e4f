"""The reference report: our simulation of Fasoli et al., Interspeech 2022, next to the paper's figures.

``build(out_dir)`` simulates every (model, precision, beam, fusion) point of the report grid on the
report's accelerator, and writes into ``out_dir``:

- ``results.csv`` / ``results.json``: one row per design point (tidy, unit-suffixed columns);
- ``phases.csv``: per-point, per-phase latency;
- ``what_if.csv``: the paper point on variants of the accelerator;
- ``speedup_vs_memory.csv`` / ``.png``: the paper point's FP16 -> INT4 speed-up and INT4 RTF
  against scratchpad size per core and against DRAM bandwidth;
- ``residency.csv``, ``energy.csv``: what is on chip per segment, and energy per component, at
  the paper point (FP16 and INT4);
- ``phase_breakdown.png``: per-phase latency, FP16 vs INT4, for each model at the largest beam with
  DR fusion;
- ``rtf_vs_beam.png``: RTF vs beam per precision, with and without fusion;
- the validation section's files (``reports.validation``) and the streaming and serving
  section's (``reports.serving``: one stream's delays, streams per chip at a latency target, the
  p95 delay against the number of streams);
- ``README.md``: the report (tables, figures, paper comparison, assumptions);
- ``report.html``: the same report as one self-contained page, figures embedded, with an
  interactive Pareto plot when there is a design-space section (``reports.html``; generated, not
  committed).

The *paper point* is the paper's operating point: the first model of the grid, the largest beam,
DR fusion, the grid's audio length.

Nothing here is tuned to the paper: the paper's numbers appear only in ``PAPER`` below, with their
source, and are compared against, never fed into the simulation. ``V1`` holds the figures of this
simulator's previous execution model, also only for comparison.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from reports.serving import ServingGrid

log = logging.getLogger(__name__)

#: Figures reported by Fasoli et al., "Accelerating Inference and Language Model Fusion of Recurrent
#: Neural Network Transducers via End-to-End 4-bit Quantization", Interspeech 2022, arXiv 2206.07882
#: (abstract and Sec. 5). They are compared against, never used as inputs.
PAPER = {
    "compression_x": 7.6,          # full model (AM + LMs), INT4 vs FP32
    "speedup_fp16_to_int4_x": 3.4,  # hardware simulation, including LM fusion
    "rtf": 0.06,                    # INT4, with LM fusion
}

#: Historical figures of this simulator's execution model v1 (residency decided once per decode,
#: "most-used weights first, the rest stream at every use"), for swb300, rapid4, beam 16, DR
#: fusion, 10 s: the reference report as committed at 381bfdc (reports/paper/README.md, table (d)
#: and the what-if row "as specified"). Not recomputed; quoted for comparison only, and only in a
#: report whose paper point is ``point``.
V1 = {
    "label": "execution model v1 (static residency), commit 381bfdc and earlier",
    "point": {"model": "swb300", "hw": "rapid4", "beam": 16, "lm_fusion": "dr", "audio_s": 10.0, "method": "alsd"},
    "fp16_latency_ms": 442.3,
    "int4_latency_ms": 76.4,
    "speedup_fp16_to_int4_x": 5.79,
    "rtf": 0.0076,
}


@dataclass(frozen=True)
class ReportGrid:
    """The design points of the reference report."""

    models: tuple[str, ...] = ("swb300", "swb300-stream")
    hw: str = "rapid4"
    precisions: tuple[str, ...] = ("fp16", "int8", "int4")
    beams: tuple[int, ...] = (1, 4, 8, 16)
    fusions: tuple[str, ...] = ("none", "dr")
    audio_s: float = 10.0
    method: str = "alsd"
    #: The memory sweep (``memory_sweep``): scratchpad sizes per core (MiB), DRAM bandwidths (GB/s).
    sweep_scratchpad_mib: tuple[float, ...] = (0.25, 0.5, 1, 2, 4, 8, 16, 32, 64)
    sweep_dram_gb_s: tuple[float, ...] = (12.8, 25.6, 51.2, 102.4, 204.8, 409.6)
    #: The streaming and serving section (``reports.serving``); None leaves it out.
    serving: ServingGrid | None = field(default_factory=ServingGrid)


#: What-if variants of the report's accelerator for the paper comparison: (label, {dotted spec
#: path: value or callable of the base value}). They show which assumption moves which figure.
WHAT_IF = (
    ("as specified", {}),
    ("48 MiB scratchpad per core", {"core.scratchpad_bytes": 48 * 2**20}),
    ("4x DRAM bandwidth", {"dram_bw_bytes_per_s": lambda v: 4 * v}),
    ("1 core", {"cores": 1}),
    ("dispatch overhead x10", {"core.dispatch_overhead_cycles": lambda v: 10 * v}),
)

@dataclass
class PointDetail:
    """One precision at the paper point, reduced to what the report's text needs.

    Attributes:
        precision: policy name.
        latency_s, rtf, audio_s: from ``SimResult.summary``.
        phases: phase -> latency_s (sums to ``latency_s``).
        dram_bytes: all DRAM bytes; dram_bytes_by_source: weight_load, weight_prefetch,
            weight_stream, activation_spill -> bytes.
        op_time_by_bound_s: summed op latency (s) per (segment kind: ``encoder`` or ``search``)
            and ``bound_by`` label; rows = kinds, columns = labels.
        memory: the residency plan (``SimResult.memory``: one row per segment and weight or
            activation buffer).
        segment_dram_bytes: segment label -> DRAM bytes of its ops.
        energy_j, energy_breakdown_j: None when the accelerator has no energy costs.
        roofline: ``hwsim.roofline.points`` of the run (one row per module x phase with MACs).
    """

    precision: str
    latency_s: float
    rtf: float
    audio_s: float
    phases: dict[str, float]
    dram_bytes: float
    dram_bytes_by_source: dict[str, float]
    op_time_by_bound_s: pd.DataFrame
    memory: pd.DataFrame
    segment_dram_bytes: dict[str, float]
    energy_j: float | None = None
    energy_breakdown_j: dict[str, float] | None = None
    roofline: pd.DataFrame | None = None


@dataclass(frozen=True)
class HwFacts:
    """Figures of the report's accelerator that the text quotes."""

    name: str
    cores: int
    scratchpad_bytes: float
    shared_sram_bytes: float
    dram_bw_bytes_per_s: float
    peak_macs_fp16_per_s: float
    peak_macs_int4_per_s: float

    @property
    def onchip_bytes(self) -> float:
        return self.cores * self.scratchpad_bytes + self.shared_sram_bytes


@dataclass
class ReportData:
    """What the report is built from."""

    grid: ReportGrid
    results: pd.DataFrame
    phases: pd.DataFrame
    what_if: pd.DataFrame | None = None
    hw: HwFacts | None = None
    point: dict[str, PointDetail] = field(default_factory=dict)   # "fp16", "int4"
    memory_sweep: pd.DataFrame | None = None
    results_of_point: dict = field(default_factory=dict)          # "fp16", "int4" -> SimResult


def hw_facts(hw) -> HwFacts:
    """The quoted figures of an ``AcceleratorSpec``."""
    return HwFacts(hw.name, hw.cores, float(hw.core.scratchpad_bytes), float(hw.shared_sram_bytes),
                   float(hw.dram_bw_bytes_per_s), float(hw.peak_macs_per_s("fp16")),
                   float(hw.peak_macs_per_s("int4")))


def point_detail(res) -> PointDetail:
    """Reduce one ``SimResult`` to a ``PointDetail``."""
    from hwsim import roofline

    s, ops = res.summary, res.ops
    labels = res.memory[["segment", "segment_label"]].drop_duplicates().set_index("segment")["segment_label"]
    seg_label = ops["segment"].map(labels).fillna("?")
    kind = np.where(seg_label.str.startswith("encoder"), "encoder", "search")
    bound = ops.groupby([kind, ops["bound_by"]])["latency_s"].sum().unstack(fill_value=0.0)
    return PointDetail(
        precision=res.policy.name, latency_s=s["latency_s"], rtf=s["rtf"], audio_s=s["audio_s"],
        phases=dict(s["phases"]), dram_bytes=float(s["dram_bytes"]),
        dram_bytes_by_source={k: float(v) for k, v in s["dram_bytes_by_source"].items()},
        op_time_by_bound_s=bound, memory=res.memory.copy(),
        segment_dram_bytes={k: float(v) for k, v in ops.groupby(seg_label)["dram_bytes"].sum().items()},
        energy_j=s.get("energy_j"), energy_breakdown_j=s.get("energy_breakdown_j"),
        roofline=roofline.points(res))


def search_onchip_share(memory: pd.DataFrame) -> float:
    """Share of the search segment's reused weight bytes (used at least twice) that is on chip."""
    w = memory[(memory.kind == "weight") & (memory.segment_label == "search") & (memory.uses >= 2)]
    total = float(w["bytes"].sum())
    onchip = float((w.local_bytes + w.shared_bytes + w.remote_bytes).sum())
    return onchip / total if total else float("nan")


def _summary_row(summary: dict) -> dict:
    return {"latency_s": summary["latency_s"], "rtf": summary["rtf"], "macs": summary["macs"],
            "ops": summary["ops"], "weight_bytes": summary["weight_bytes"],
            "fp32_weight_bytes": summary["fp32_weight_bytes"], "compression_x": summary["compression_x"],
            "dram_bytes": summary["dram_bytes"], "energy_j": summary.get("energy_j"),
            "precision_fallbacks": json.dumps(summary.get("precision_fallbacks", {}))}


def simulate_grid(grid: ReportGrid) -> ReportData:
    """Simulate every point of ``grid``; one graph per (model, beam, fusion), reused across
    precisions. The paper point's graph is kept for the what-if variants and the memory sweep."""
    import hwsim
    import workloads
    from models.config import load_config
    from tqdm import tqdm

    hw = hwsim.load_spec(grid.hw)
    rows, phase_rows, point, main_res = [], [], {}, {}
    main = (grid.models[0], max(grid.beams), "dr")
    main_graph = main_config = None
    total = len(grid.models) * len(grid.beams) * len(grid.fusions) * len(grid.precisions)
    with tqdm(total=total, desc="report points", unit="pt", disable=None) as bar:
        for model in grid.models:
            config = load_config(model)
            for beam in grid.beams:
                for fusion in grid.fusions:
                    graph = workloads.paper_graph(config, grid.audio_s, beam, fusion, grid.method)
                    if (model, beam, fusion) == main:
                        main_graph, main_config = graph, config
                    for precision in grid.precisions:
                        res = hwsim.simulate(graph, hw, precision, grid.audio_s, config=config)
                        s = res.summary
                        rows.append({"model": model, "hw": grid.hw, "precision": precision, "beam": beam,
                                     "lm_fusion": fusion, "audio_s": grid.audio_s, **_summary_row(s)})
                        for phase, lat in s["phases"].items():
                            phase_rows.append({"model": model, "precision": precision, "beam": beam,
                                               "lm_fusion": fusion, "phase": phase, "latency_s": lat})
                        if (model, beam, fusion) == main and precision in ("fp16", "int4"):
                            point[precision] = point_detail(res)
                            main_res[precision] = res
                        bar.update()
    results = pd.DataFrame(rows)
    fp16 = results[results.precision == "fp16"].set_index(["model", "beam", "lm_fusion"])["latency_s"]
    key = pd.MultiIndex.from_frame(results[["model", "beam", "lm_fusion"]])
    results["speedup_vs_fp16_x"] = fp16.reindex(key).to_numpy() / results["latency_s"].to_numpy()
    data = ReportData(grid, results, pd.DataFrame(phase_rows), hw=hw_facts(hw), point=point,
                      results_of_point=main_res)
    if main_graph is not None:
        # The paper point's FP16/INT4 pair per accelerator variant, simulated once: the what-if
        # "as specified" row and the sweep points at the preset's own values are the grid's.
        pairs = {_spec_key(hw): _pair_figures(main_res)} if len(main_res) == 2 else {}
        data.what_if = what_if(grid, main_graph, main_config, hw=hw, pairs=pairs)
        data.memory_sweep = memory_sweep(grid, main_graph, main_config, hw=hw, pairs=pairs)
    return data


def _spec_key(hw) -> str:
    return json.dumps(hw.to_dict(), sort_keys=True, default=str)


def _variant(base, changes: dict):
    return base.replace_paths({path: value(base.get_path(path)) if callable(value) else value
                               for path, value in changes.items()})


def _pair(graph, hw, grid: ReportGrid, config, pairs: dict | None = None) -> dict:
    """FP16 and INT4 figures of ``graph`` on ``hw`` (looked up in / added to ``pairs``, keyed by
    the spec's content, when given)."""
    import hwsim

    key = _spec_key(hw) if pairs is not None else None
    if key is not None and key in pairs:
        return pairs[key]
    res = {p: hwsim.simulate(graph, hw, p, grid.audio_s, config=config) for p in ("fp16", "int4")}
    figures = _pair_figures(res)
    if key is not None:
        pairs[key] = figures
    return figures


def _pair_figures(res: dict) -> dict:
    """The figures of a {fp16, int4} -> SimResult pair."""
    f, i = res["fp16"].summary, res["int4"].summary
    return {"fp16_latency_ms": 1e3 * f["latency_s"], "int4_latency_ms": 1e3 * i["latency_s"],
            "speedup_fp16_to_int4_x": f["latency_s"] / i["latency_s"], "int4_rtf": i["rtf"],
            "fp16_streamed_mb": 1e-6 * f["dram_bytes_by_source"]["weight_stream"],
            "int4_streamed_mb": 1e-6 * i["dram_bytes_by_source"]["weight_stream"],
            "fp16_search_onchip_share": search_onchip_share(res["fp16"].memory),
            "int4_search_onchip_share": search_onchip_share(res["int4"].memory)}


def what_if(grid: ReportGrid, graph, config, variants=WHAT_IF, hw=None,
            pairs: dict | None = None) -> pd.DataFrame:
    """FP16 and INT4 figures of the paper point (``graph``) on each ``WHAT_IF`` variant of the
    accelerator (``hw``, default ``grid.hw``): one row per variant."""
    import hwsim

    base = hw if hw is not None else hwsim.load_spec(grid.hw)
    return pd.DataFrame([{"variant": label, **_pair(graph, _variant(base, changes), grid, config, pairs)}
                         for label, changes in variants])


def memory_sweep(grid: ReportGrid, graph, config, hw=None, pairs: dict | None = None) -> pd.DataFrame:
    """The paper point (``graph``) against scratchpad size per core (``grid.sweep_scratchpad_mib``,
    DRAM bandwidth as the preset) and against DRAM bandwidth (``grid.sweep_dram_gb_s``,
    scratchpad as the preset); every other field of the accelerator held fixed. One row per
    point, with ``axis`` = ``scratchpad`` or ``dram_bw``."""
    import hwsim
    from tqdm import tqdm

    base = hw if hw is not None else hwsim.load_spec(grid.hw)
    points = ([("scratchpad", {"core.scratchpad_bytes": int(m * 2**20)}) for m in grid.sweep_scratchpad_mib]
              + [("dram_bw", {"dram_bw_bytes_per_s": g * 1e9}) for g in grid.sweep_dram_gb_s])
    rows = []
    for axis, changes in tqdm(points, desc="memory sweep", unit="pt", disable=None):
        hw = _variant(base, changes)
        rows.append({"axis": axis, "scratchpad_mib": hw.core.scratchpad_bytes / 2**20,
                     "dram_bw_gb_s": hw.dram_bw_bytes_per_s / 1e9, **_pair(graph, hw, grid, config, pairs)})
    return pd.DataFrame(rows)


def residency_table(data: ReportData) -> pd.DataFrame:
    """``SimResult.memory`` of the paper point at FP16 and INT4, with a ``precision`` column."""
    return pd.concat([d.memory.assign(precision=p) for p, d in data.point.items()], ignore_index=True)


def energy_table(data: ReportData) -> pd.DataFrame:
    """Energy per component (J) of the paper point, one row per (precision, component)."""
    return pd.DataFrame([{"precision": p, "component": c, "energy_j": e}
                         for p, d in data.point.items() if d.energy_breakdown_j
                         for c, e in d.energy_breakdown_j.items()])


def build(out_dir: str | Path = "reports/paper", grid: ReportGrid | None = None,
          sweep_dir: str | Path | pd.DataFrame | None = None) -> Path:
    """Simulate the report grid and write the report into ``out_dir``; returns the Markdown path
    (``report.html`` is written beside it). ``sweep_dir``: a finished sweep folder, or its results
    table (``hwsim.dse.load``), for the design-space section."""
    from reports import figures, html, markdown

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    data = simulate_grid(grid or ReportGrid())
    data.results.to_csv(out / "results.csv", index=False)
    data.results.to_json(out / "results.json", orient="records", indent=1)
    data.phases.to_csv(out / "phases.csv", index=False)
    figs = {
        "phase_breakdown": figures.phase_breakdown(data, out / "phase_breakdown.png"),
        "rtf_vs_beam": figures.rtf_vs_beam(data, out / "rtf_vs_beam.png"),
    }
    if data.what_if is not None:
        data.what_if.to_csv(out / "what_if.csv", index=False)
    if data.memory_sweep is not None:
        data.memory_sweep.to_csv(out / "speedup_vs_memory.csv", index=False)
        figs["speedup_vs_memory"] = figures.speedup_vs_memory(data, out / "speedup_vs_memory.png")
    from hwsim import roofline

    for precision, res in data.results_of_point.items():
        pts = data.point[precision].roofline
        pts.to_csv(out / f"roofline_{precision}.csv", index=False)
        figs[f"roofline_{precision}"] = roofline.figure(res, out / f"roofline_{precision}.png", pts)
    if data.point:
        residency_table(data).to_csv(out / "residency.csv", index=False)
        energy_table(data).to_csv(out / "energy.csv", index=False)
    dse = None
    if sweep_dir is not None:
        from reports.dse import dse_section

        dse = dse_section(sweep_dir, out)
    text = markdown.paper_report(data, figs, PAPER, dse_section=dse, v1=V1)
    from reports.validation import validation_section

    text += "\n" + validation_section(out)
    if data.grid.serving is not None:
        from reports.serving import serving_section

        text += "\n" + serving_section(out, data.grid.serving)
    path = out / "README.md"
    path.write_text(text)
    log.info("wrote %s", path)
    log.info("wrote %s", html.write_html(path))
    return path
