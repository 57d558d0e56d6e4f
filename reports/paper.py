"""The reference report: our simulation of Fasoli et al., Interspeech 2022, next to the paper's figures.

``build(out_dir)`` simulates every (model, precision, beam, fusion) point of the report grid on the
report's accelerator, and writes into ``out_dir``:

- ``results.csv`` / ``results.json``: one row per design point (tidy, unit-suffixed columns);
- ``phases.csv``: per-point, per-phase latency;
- ``phase_breakdown.png``: per-phase latency, FP16 vs INT4, for each model at the largest beam with
  DR fusion;
- ``rtf_vs_beam.png``: RTF vs beam per precision, with and without fusion;
- ``README.md``: the report (tables, figures, paper comparison, assumptions).

Nothing here is tuned to the paper: the paper's numbers appear only in ``PAPER`` below, with their
source, and are compared against, never fed into the simulation.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

log = logging.getLogger(__name__)

#: Figures reported by Fasoli et al., "Accelerating Inference and Language Model Fusion of Recurrent
#: Neural Network Transducers via End-to-End 4-bit Quantization", Interspeech 2022, arXiv 2206.07882
#: (abstract and Sec. 5). They are compared against, never used as inputs.
PAPER = {
    "compression_x": 7.6,          # full model (AM + LMs), INT4 vs FP32
    "speedup_fp16_to_int4_x": 3.4,  # hardware simulation, including LM fusion
    "rtf": 0.06,                    # INT4, with LM fusion
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


#: What-if variants of the report's accelerator for the paper comparison: (label, {dotted spec
#: path: value or callable of the base value}). They show which assumption moves which figure.
WHAT_IF = (
    ("as specified", {}),
    ("48 MiB scratchpad per core (all FP16 weights on chip)", {"core.scratchpad_bytes": 48 * 2**20}),
    ("4x DRAM bandwidth", {"dram_bw_bytes_per_s": lambda v: 4 * v}),
    ("1 core", {"cores": 1}),
    ("dispatch overhead x10", {"core.dispatch_overhead_cycles": lambda v: 10 * v}),
)


@dataclass
class ReportData:
    """What the report is built from."""

    grid: ReportGrid
    results: pd.DataFrame
    phases: pd.DataFrame
    what_if: pd.DataFrame | None = None


def simulate_grid(grid: ReportGrid) -> ReportData:
    """Simulate every point of ``grid``; one graph per (model, beam, fusion), reused across precisions."""
    import hwsim
    import workloads
    from models.config import load_config
    from tqdm import tqdm

    rows, phase_rows = [], []
    total = len(grid.models) * len(grid.beams) * len(grid.fusions) * len(grid.precisions)
    with tqdm(total=total, desc="report points", unit="pt", disable=None) as bar:
        for model in grid.models:
            config = load_config(model)
            for beam in grid.beams:
                for fusion in grid.fusions:
                    graph = workloads.paper_graph(config, grid.audio_s, beam, fusion, grid.method)
                    for precision in grid.precisions:
                        res = hwsim.simulate(graph, grid.hw, precision, grid.audio_s, config=config)
                        s = res.summary
                        rows.append({
                            "model": model, "hw": grid.hw, "precision": precision, "beam": beam,
                            "lm_fusion": fusion, "audio_s": grid.audio_s, "latency_s": s["latency_s"],
                            "rtf": s["rtf"], "macs": s["macs"], "ops": s["ops"],
                            "weight_bytes": s["weight_bytes"], "fp32_weight_bytes": s["fp32_weight_bytes"],
                            "compression_x": s["compression_x"],
                            "precision_fallbacks": json.dumps(s.get("precision_fallbacks", {})),
                        })
                        for phase, lat in s["phases"].items():
                            phase_rows.append({"model": model, "precision": precision, "beam": beam,
                                               "lm_fusion": fusion, "phase": phase, "latency_s": lat})
                        bar.update()
    results = pd.DataFrame(rows)
    fp16 = results[results.precision == "fp16"].set_index(["model", "beam", "lm_fusion"])["latency_s"]
    key = pd.MultiIndex.from_frame(results[["model", "beam", "lm_fusion"]])
    results["speedup_vs_fp16_x"] = fp16.reindex(key).to_numpy() / results["latency_s"].to_numpy()
    return ReportData(grid, results, pd.DataFrame(phase_rows), what_if(grid))


def what_if(grid: ReportGrid, variants=WHAT_IF) -> pd.DataFrame:
    """FP16 and INT4 latency of the report's main point (first model, largest beam, DR fusion)
    on each ``WHAT_IF`` variant of the accelerator: one row per variant."""
    import hwsim
    import workloads
    from models.config import load_config

    config = load_config(grid.models[0])
    beam = max(grid.beams)
    graph = workloads.paper_graph(config, grid.audio_s, beam, "dr", grid.method)
    base = hwsim.load_spec(grid.hw)
    rows = []
    for label, changes in variants:
        hw = base
        for path, value in changes.items():
            current = hw
            for part in path.split("."):
                current = getattr(current, part)
            hw = hw.replace_path(path, value(current) if callable(value) else value)
        lat = {p: hwsim.simulate(graph, hw, p, grid.audio_s, config=config).summary for p in ("fp16", "int4")}
        rows.append({"variant": label, "fp16_latency_ms": 1e3 * lat["fp16"]["latency_s"],
                     "int4_latency_ms": 1e3 * lat["int4"]["latency_s"],
                     "speedup_fp16_to_int4_x": lat["fp16"]["latency_s"] / lat["int4"]["latency_s"],
                     "int4_rtf": lat["int4"]["rtf"]})
    return pd.DataFrame(rows)


def build(out_dir: str | Path = "reports/paper", grid: ReportGrid | None = None, sweep_dir: str | Path | None = None) -> Path:
    """Simulate the report grid and write the report into ``out_dir``; returns the Markdown path."""
    from reports import figures, markdown

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    data = simulate_grid(grid or ReportGrid())
    data.results.to_csv(out / "results.csv", index=False)
    data.results.to_json(out / "results.json", orient="records", indent=1)
    data.phases.to_csv(out / "phases.csv", index=False)
    data.what_if.to_csv(out / "what_if.csv", index=False)
    figs = {
        "phase_breakdown": figures.phase_breakdown(data, out / "phase_breakdown.png"),
        "rtf_vs_beam": figures.rtf_vs_beam(data, out / "rtf_vs_beam.png"),
    }
    dse = None
    if sweep_dir is not None:
        from reports.dse import dse_section

        dse = dse_section(sweep_dir, out)
    text = markdown.paper_report(data, figs, PAPER, dse_section=dse)
    path = out / "README.md"
    path.write_text(text)
    log.info("wrote %s", path)
    return path
