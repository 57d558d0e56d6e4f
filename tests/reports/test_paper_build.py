"""The reference report built end to end on the ``tiny`` model: its tables agree with each other
where two paths give the same number, and its text quotes the tables."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from reports.paper import ReportGrid, build
from reports.serving import ServingGrid

#: A small streaming and serving section (seconds).
SERVING = ServingGrid(audio_s=1.0, hws=("edge",), precisions=("fp16", "int4"), beams=(4,), fusions=("dr",),
                      limit=8, max_batch=4, curve_streams=(1, 2, 4, 8))


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("paper")
    grid = ReportGrid(models=("tiny",), precisions=("fp16", "int4"), beams=(2,), fusions=("dr",), audio_s=1.0,
                      sweep_scratchpad_mib=(0.25, 2.0), sweep_dram_gb_s=(12.8, 51.2), serving=SERVING)
    path = build(out, grid)
    return out, path.read_text()


def test_files_written(report):
    out, _ = report
    for name in ("results.csv", "phases.csv", "what_if.csv", "speedup_vs_memory.csv", "speedup_vs_memory.png",
                 "residency.csv", "energy.csv", "phase_breakdown.png", "rtf_vs_beam.png", "README.md"):
        assert (out / name).stat().st_size > 0, name


def test_energy_components_sum_to_the_total(report):
    out, text = report
    res = pd.read_csv(out / "results.csv").set_index("precision")
    energy = pd.read_csv(out / "energy.csv").groupby("precision")["energy_j"].sum()
    for p in ("fp16", "int4"):
        assert energy[p] == pytest.approx(res.loc[p, "energy_j"], rel=1e-9)
    assert "| total (energy_j) |" in text


def test_sweep_and_what_if_agree_at_the_preset(report):
    """The memory sweep at the preset's own values is the what-if row 'as specified' (two paths)."""
    out, _ = report
    sw = pd.read_csv(out / "speedup_vs_memory.csv")
    base = pd.read_csv(out / "what_if.csv").set_index("variant").loc["as specified"]
    res = pd.read_csv(out / "results.csv").set_index("precision")
    for row in (sw[(sw.axis == "scratchpad") & (sw.scratchpad_mib == 2.0)].iloc[0],
                sw[(sw.axis == "dram_bw") & (sw.dram_bw_gb_s == 51.2)].iloc[0]):
        assert row.speedup_fp16_to_int4_x == pytest.approx(base.speedup_fp16_to_int4_x, rel=1e-12)
        assert row.int4_rtf == pytest.approx(res.loc["int4", "rtf"], rel=1e-12)


def test_text_quotes_the_tables(report):
    out, text = report
    res = pd.read_csv(out / "results.csv").set_index("precision")
    speedup = res.loc["fp16", "latency_s"] / res.loc["int4", "latency_s"]
    m = re.search(r"speed-up is ([\d.]+)x", text)
    assert float(m.group(1)) == pytest.approx(speedup, abs=0.006)
    m = re.search(r"Our INT4 RTF is ([\d.]+)", text)
    assert float(m.group(1)) == pytest.approx(res.loc["int4", "rtf"], abs=6e-5)
    resid = pd.read_csv(out / "residency.csv")
    w = resid[(resid.kind == "weight") & (resid.precision == "int4") & (resid.segment_label == "search")
              & (resid.uses >= 2)]
    share = (w.local_bytes + w.shared_bytes + w.remote_bytes).sum() / w.bytes.sum()
    assert f"{100 * share:.0f}% at INT4" in text or f"{100 * share:.1f}% at INT4" in text


def test_serving_section_matches_its_tables(report):
    out, text = report
    import pandas as pd

    cap = pd.read_csv(out / "serving_capacity.csv")
    one = pd.read_csv(out / "streaming_one_stream.csv")
    curve = pd.read_csv(out / "serving_p95_vs_streams.csv")
    assert (out / "serving_p95_vs_streams.png").stat().st_size > 0
    assert "## Streaming and serving" in text
    assert len(cap) == 2 and len(one) == 2 and set(curve["streams"]) == {1, 2, 4, 8}
    for _, r in cap.iterrows():
        count = f">= {r['max_streams']}" if r["at_limit"] else str(r["max_streams"])
        assert f"| edge | {r['precision']} | 4 | dr | {count} |" in text
    a = cap[cap["precision"] == "int4"].iloc[0]
    b = cap[cap["precision"] == "fp16"].iloc[0]
    fmt = (lambda r: f">= {r['max_streams']}" if r["at_limit"] else str(r["max_streams"]))
    assert f"on `edge` INT4 serves {fmt(a)} streams and FP16 {fmt(b)}" in text
    # the one-stream table: op-level delays, p95 at most the max
    assert (one["delay_p95_ms"] <= one["delay_max_ms"]).all() and (one["delay_mean_ms"] > 0).all()
