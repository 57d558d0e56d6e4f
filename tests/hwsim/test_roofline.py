"""``hwsim.roofline``: points derived by hand on the hand-checkable spec, figure and CSV files."""

from __future__ import annotations

import math

import pandas as pd
import pytest

import workloads
from hwsim import simulate
from hwsim.precision import PREC_NAMES
from hwsim.roofline import POINT_COLUMNS, points, write
from hwsim.timeline import PRECISION_COLOURS
from models.config import load_config

from hwsim_testgraphs import TINY_HW, two_module_graph

NS = 1e-9
# tiny_hw.yaml: 1 GHz, 2 cores of a 4x4 array at 1 fp16 MAC per PE per cycle, fill/drain R + C = 8
# cycles per tile not overlapped, SFU 2 fp16 elements per cycle, 10 dispatch cycles per op,
# scratchpad 10 B/ns per core, DRAM 0.1 B/ns with 100 ns latency.
PEAK_OPS = 2 * (2 * 16 * 1e9)           # 2 ops per MAC x 2 cores x 16 MACs/cycle x 1 GHz
DRAM_BW = 1e8
SCRATCHPAD_BW = 2 * 1e10                # both cores' scratchpads


@pytest.fixture(scope="module")
def result():
    return simulate(two_module_graph(), TINY_HW, "fp16", audio_s=1.0)


def test_points_by_hand(result):
    pts = points(result).set_index("module")
    assert list(points(result).columns) == list(POINT_COLUMNS)
    assert set(pts.index) == {"m.a", "m.b"}          # one point per (module, phase) with MACs
    # m.a: GEMM = 10 ns dispatch + the weight's 32 B (4x4 fp16) from DRAM: 320 ns + 100 ns latency
    # (its 12 engine cycles hide under it) = 430 ns; the sigmoid 10 + 100/2 = 60 ns after it.
    a = pts.loc["m.a"]
    assert a["phase"] == "joint" and a["precision"] == "fp16" and a["ops"] == 2
    assert a["macs"] == 64
    assert a["busy_s"] == pytest.approx(490 * NS)
    assert a["dram_bytes"] == 32
    # scratchpad: the GEMM's 4x4 fp16 input and output (32 + 32 B), the sigmoid's 100 fp16
    # elements in and out (400 B); the streamed weight goes straight from DRAM to the engine.
    assert a["onchip_bytes"] == 464
    assert a["intensity_dram_ops_per_byte"] == pytest.approx(128 / 32)
    assert a["intensity_onchip_ops_per_byte"] == pytest.approx(128 / 464)
    assert a["achieved_ops_per_s"] == pytest.approx(128 / (490 * NS))
    assert a["peak_ops_per_s"] == pytest.approx(PEAK_OPS)
    assert a["roof"] == "dram"                        # 4 ops/B x 0.1 GB/s = 0.4 Gop/s
    assert a["roof_ops_per_s"] == pytest.approx(4 * DRAM_BW)
    assert a["roof_fraction"] == pytest.approx(128 / (490 * NS) / (4 * DRAM_BW))
    # m.b: 4 tiles of 8 + 8 cycles + 10 dispatch = 74 ns; no DRAM bytes; 8x8 fp16 in and out.
    b = pts.loc["m.b"]
    assert b["phase"] == "lm_ext" and b["macs"] == 512
    assert b["busy_s"] == pytest.approx(74 * NS)
    assert b["dram_bytes"] == 0 and math.isinf(b["intensity_dram_ops_per_byte"])
    assert b["onchip_bytes"] == 256
    assert b["intensity_onchip_ops_per_byte"] == pytest.approx(1024 / 256)
    assert b["roof"] == "compute"                     # 4 ops/B x 20 GB/s = 80 > 64 Gop/s
    assert b["roof_ops_per_s"] == pytest.approx(PEAK_OPS)
    assert b["roof_fraction"] == pytest.approx(1024 / (74 * NS) / PEAK_OPS)
    # marker area: share of all the ops' busy time
    assert a["time_share"] == pytest.approx(490 / 564)
    assert b["time_share"] == pytest.approx(74 / 564)
    assert points(result)["module"].tolist() == ["m.a", "m.b"]   # largest share first


def test_write_figure_and_csv(result, tmp_path):
    pts = write(result, tmp_path)
    png = (tmp_path / "roofline.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    back = pd.read_csv(tmp_path / "roofline.csv")
    assert list(back.columns) == list(POINT_COLUMNS)
    assert back["achieved_ops_per_s"].tolist() == pytest.approx(pts["achieved_ops_per_s"].tolist())
    assert math.isinf(back.set_index("module").loc["m.b", "intensity_dram_ops_per_byte"])


def test_one_colour_per_precision():
    assert set(PRECISION_COLOURS) == set(PREC_NAMES)
    assert len(set(PRECISION_COLOURS.values())) == len(PRECISION_COLOURS)
    # one palette: the reports' figures, where they name precision colours, use the same
    import reports.figures

    theirs = getattr(reports.figures, "PRECISION_COLOURS", None)
    if theirs is not None:
        assert {k: v.lower() for k, v in theirs.items()} == {k: v.lower() for k, v in PRECISION_COLOURS.items()}


def test_mixed_precision_roofs():
    # rapid4 has no INT8 mode: int8-encoder's encoder GEMMs run at fp16, the rest at int4.
    cfg = load_config("tiny")
    r = simulate(workloads.paper_graph(cfg, 0.5, 2, "dr"), "rapid4", "int8-encoder", 0.5, config=cfg)
    pts = points(r)
    enc = pts[pts["phase"] == "encoder"]
    rest = pts[pts["phase"] != "encoder"]
    assert len(enc) and set(enc["precision"]) == {"fp16"}
    assert len(rest) and set(rest["precision"]) == {"int4"}
    hw = r.hw
    # the roof of each point: 2 ops x cores x PEs x MACs per PE per cycle at its precision x clock
    for p, peak in zip(pts["precision"], pts["peak_ops_per_s"]):
        assert peak == pytest.approx(2 * hw.cores * hw.core.matrix.rows * hw.core.matrix.cols
                                     * hw.core.matrix.macs_per_pe_per_cycle[p] * hw.frequency_hz)
    assert (pts["roof_ops_per_s"] <= pts["peak_ops_per_s"] * (1 + 1e-12)).all()
    assert pts["macs"].sum() == r.summary["macs"]     # every MAC is in some point
