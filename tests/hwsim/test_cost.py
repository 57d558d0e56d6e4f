"""Golden numbers for the cost model on a hand-written spec (tests/hwsim/data/tiny_hw.yaml:
1 GHz so 1 cycle = 1 ns; 4x4 array, fp16 1 lane/PE, int4 4 lanes/PE; fill/drain 8 cycles per
tile; SFU 2 el/cycle; vector 4 el/cycle; scratchpad 10 B/ns, 2 x 1024 B on chip; DRAM 0.1 B/ns
+ 100 ns; dispatch 10 cycles)."""

from __future__ import annotations

import numpy as np
import pytest

from hwsim import CostError, cost_gemm, load_spec, simulate
from workloads.graph import Op, OpGraph
from hwsim_testgraphs import TINY_HW, gemm, unary

NS = 1e-9


@pytest.fixture(scope="module")
def hw():
    return load_spec(TINY_HW)


def _one(op, hw, policy="fp16", deps_graph=None):
    g = OpGraph()
    g.add(op)
    return simulate(g, hw, policy, audio_s=1.0).ops.iloc[0]


def test_ragged_gemm_fp16(hw):
    # m=5, k=8, n=6: tiles = ceil(5/4)*ceil(6/4) = 4; compute = 4 * 8 = 32 cycles (240 useful
    # MACs of 4*8*16 = 512 slots); fill/drain = 4 tiles * (4+4) = 32 cycles; engine 64 ns.
    # bytes: (5*8 + 5*6) * 2 B = 140 B -> 14 ns < 64. latency = 64 + 10 dispatch = 74 ns.
    row = _one(gemm("joint", "", 5, 8, 6), hw)
    assert row["latency_s"] == pytest.approx(74 * NS)
    assert row["compute_s"] == pytest.approx(32 * NS)
    assert row["fill_drain_s"] == pytest.approx(32 * NS)
    assert row["bound_by"] == "compute"
    c = cost_gemm(hw, 5, 8, 6, "fp16", w_bits=0)
    assert (float(c.compute), float(c.fill_drain), float(c.cycles)) == (32, 32, 74)


def test_ragged_gemm_int4(hw):
    # int4: 4 lanes per PE -> compute = 4 tiles * ceil(8/4) = 8 cycles; fill/drain still 32:
    # engine 40, bound by fill/drain. Input 5*8 at 4 bits = 20 B, output 5*6 at the int4
    # policy's act precision (fp16) = 60 B -> 8 ns. latency = 40 + 10 = 50 ns.
    row = _one(gemm("joint", "", 5, 8, 6), hw, "int4")
    assert row["latency_s"] == pytest.approx(50 * NS)
    assert row["bound_by"] == "fill_drain"
    assert row["precision"] == "int4"


def test_weight_too_big_keeps_what_fits_and_streams_the_rest(hw):
    # One work group (module-less GEMMs with a weight) gets both cores: 2 x 1024 B on chip. The
    # knapsack places the group's activation buffer first (saving 2 per byte: (64 + 32) * 2 B =
    # 192 B) and then 2048 - 192 = 1856 B of the 64x32 fp16 weight (4096 B, used twice: saving
    # 1 per byte). First use: all 4096 B from DRAM (40960 ns + 100 ns latency + 10 dispatch);
    # engine 8 tiles * 64 + 8 * 8 = 576 ns. Second use: 1856 B on chip, 2240 B streamed:
    # 22400 + 100 + 10 ns. Chained: 41070 + 22510 = 63580 ns.
    g = OpGraph()
    a = g.add(gemm("encoder", "", 1, 64, 32, "big.weight"))
    g.add(gemm("encoder", "", 1, 64, 32, "big.weight"), [a])
    r = simulate(g, hw, "fp16", audio_s=1.0)
    assert list(r.ops["bound_by"]) == ["dram", "dram"]
    assert r.ops["resident"].all()
    assert r.ops["weight_source"].tolist() == ["loaded", "mixed"]
    assert r.ops["dram_bytes"].tolist() == [4096, 2240]
    assert r.ops["sram_bytes"].tolist() == pytest.approx([192, 192 + 1856])
    assert r.summary["latency_s"] == pytest.approx(63580 * NS)
    mem = r.memory.set_index("item")
    assert mem.loc["big.weight", "local_bytes"] == 1856
    assert mem.loc["big.weight", "streamed_bytes_per_use"] == 2240


def test_small_weight_resident_after_first_use(hw):
    # weight 16x16 fp16 = 512 B fits: first use loads it (100 + 5120 ns) + 10 = 5230 ns;
    # second use reads it from the scratchpad: (64 B act + 512 B) / 10 = 57.6 ns < engine
    # (4 tiles * 16 + 4 * 8 = 96 ns) -> 106 ns. Total 5336 ns.
    g = OpGraph()
    a = g.add(gemm("encoder", "", 1, 16, 16, "small.weight"))
    g.add(gemm("encoder", "", 1, 16, 16, "small.weight"), [a])
    r = simulate(g, hw, "fp16", audio_s=1.0)
    assert r.ops["resident"].all()
    assert r.ops["weight_source"].tolist() == ["loaded", "resident"]
    assert r.ops["latency_s"].tolist() == pytest.approx([5230 * NS, 106 * NS])
    assert r.ops["dram_bytes"].tolist() == [512, 0]
    assert r.summary["latency_s"] == pytest.approx(5336 * NS)


def test_sfu_bound(hw):
    # 1000 elements at 2/cycle = 500 ns; bytes 8000 (fp32 graph) at fp16 = 4000 B -> 400 ns.
    row = _one(unary("sigmoid", "nonlinear", "joint", "", 1000), hw)
    assert row["latency_s"] == pytest.approx(510 * NS)
    assert row["bound_by"] == "sfu"
    assert row["unit"] == "sfu"


def test_dispatch_bound(hw):
    # 8 elements: vector 2 ns, bytes 64 * 16/32 = 32 B -> 3.2 ns < dispatch 10 ns -> 13.2 ns.
    row = _one(unary("mul", "eltwise", "search", "", 8), hw)
    assert row["latency_s"] == pytest.approx(13.2 * NS)
    assert row["bound_by"] == "dispatch"


def test_unknown_kind_is_an_error_naming_ops(hw):
    g = OpGraph()
    g.add(Op("mkldnn_rnn_layer", "unknown", "encoder"))
    g.add(Op("mkldnn_rnn_layer", "unknown", "encoder"))
    g.add(unary("mul", "eltwise", "search", "", 8))
    with pytest.raises(CostError, match=r"mkldnn_rnn_layer \(unknown\) x2"):
        simulate(g, hw, "fp16", audio_s=1.0)


def test_int8_on_rapid4_falls_back_and_says_so():
    g = OpGraph()
    g.add(gemm("encoder", "rnnt.encoder.layers.0.fwd", 4, 256, 256, "w"))
    r = simulate(g, "rapid4", "int8", audio_s=1.0)
    assert r.ops["precision"].iloc[0] == "fp16"
    assert r.ops["precision_requested"].iloc[0] == "int8"
    assert r.summary["precision_fallbacks"] == {"matrix:int8->fp16": 1}


def test_cost_gemm_vectorized_hand_derived(hw):
    # Three GEMMs in one call at int4 (4-bit inputs and outputs), weights not counted (w_bits=0).
    # tiny (4 x 4 os, 4 int4 lanes/PE, fill/drain 8 per tile, 10 B/ns scratchpad, dispatch 10):
    #   (5, 8, 6):  tiles 2*2 = 4, compute 4*ceil(8/4) = 8, fill 32 -> 40; (40+30)*4/8 = 35 B = 3.5
    #   (1, 16, 16): tiles 1*4 = 4, compute 4*4 = 16, fill 32 -> 48; (16+16)*4/8 = 16 B = 1.6
    #   (4, 3, 4):  tiles 1, compute ceil(3/4) = 1, fill 8 -> 9; (12+16)*4/8 = 14 B = 1.4
    c = cost_gemm(hw, np.array([5, 1, 4]), np.array([8, 16, 3]), np.array([6, 16, 4]), "int4", w_bits=0)
    assert c.compute.tolist() == [8, 16, 1] and c.fill_drain.tolist() == [32, 32, 8]
    assert c.sram.tolist() == pytest.approx([3.5, 1.6, 1.4])
    assert c.cycles.tolist() == [50, 58, 19]
    # rapid4 (32 x 32 os, 8 int4 lanes/PE, fill/drain once = 64, folding allowed, dispatch 32,
    # 128 B/cycle): (16, 1536, 4096) plain: 128 tiles * 192 + 64 = 24640; folded: 16 rows of m x
    # ceil(4096/1024) = 64 tiles * 192 + 64 = 12352, scratchpad (16*1536 + 16*4096)*4/8 B / 128
    # = 352 -> folded wins: 12352 + 32 = 12384.  (1, 8, 1): plain 1 + 64 = 65 -> 97.
    r = cost_gemm(load_spec("rapid4"), np.array([16, 1]), np.array([1536, 8]), np.array([4096, 1]),
                  "int4", w_bits=0)
    assert r.compute.tolist() == [12288, 1] and r.cycles.tolist() == [12384, 97]
    # edge (16 x 16 ws, 2 int4 lanes/PE -> 32 values of k per tile, no overlap, dispatch 100):
    # (5, 100, 40): tiles ceil(100/32)*ceil(40/16) = 12, compute 12*5 = 60, preload 12*16 = 192,
    # fill 12*32 = 384 -> 636 + 100 = 736.  (3, 32, 16): 1 tile: 3 + 16 + 32 + 100 = 151.
    e = cost_gemm(load_spec("edge"), np.array([5, 3]), np.array([100, 32]), np.array([40, 16]), "int4",
                  w_bits=0)
    assert (e.compute.tolist(), e.preload.tolist(), e.fill_drain.tolist()) == ([60, 3], [192, 16], [384, 32])
    assert e.cycles.tolist() == [736, 151]


def test_ws_dataflow_golden(hw):
    # ws: tiles = ceil(k/(R*L)) * ceil(n/C) = ceil(8/4)*ceil(6/4) = 4; compute = 4 tiles * m=5
    # = 20; preload 4 * R = 16; fill/drain 4 * 8 = 32.
    ws = hw.replace_path("core.matrix.dataflow", "ws")
    c = cost_gemm(ws, 5, 8, 6, "fp16", w_bits=0)
    assert (float(c.compute), float(c.preload), float(c.fill_drain)) == (20, 16, 32)
    ov = ws.replace_path("core.matrix.fill_drain_overlap", True).replace_path("core.matrix.weight_preload_overlap", True)
    c = cost_gemm(ov, 5, 8, 6, "fp16", w_bits=0)
    assert (float(c.preload), float(c.fill_drain)) == (4, 8)


def test_folded_mapping_for_a_gemv(hw):
    # GEMV m=1, k=16, n=16 at fp16 (1 lane per PE), weight resident-free (w_bits=0 for clarity).
    # Plain output-stationary mapping: tiles = ceil(1/4)*ceil(16/4) = 4, compute 4*16 = 64 cycles,
    # fill/drain 4*8 = 32 -> engine 96; only 1 of 4 rows works.
    # Folded: tiles = 1*ceil(16/16) = 1, compute 16, fill/drain 8 -> engine 24 cycles.
    # Scratchpad: (16 + 16) * 2 B = 64 B -> 6.4 ns. Folded wins: 24 + 10 dispatch = 34 ns.
    plain = cost_gemm(hw, 1, 16, 16, "fp16", w_bits=0)
    assert (float(plain.compute), float(plain.fill_drain), float(plain.cycles)) == (64, 32, 106)
    folding = hw.replace_path("core.matrix.fold_outputs", True)
    c = cost_gemm(folding, 1, 16, 16, "fp16", w_bits=0)
    assert (float(c.compute), float(c.fill_drain), float(c.cycles)) == (16, 8, 34)
    # With a resident fp16 weight (16*16*2 = 512 B) and m = 4, folding re-reads it 3 more times:
    # scratchpad (4*16*2*2 + 512 + 3*512) B / 10 B/ns = 230.4 ns > folded engine 4*16 + 4*8 = 96;
    # the plain mapping (tiles 1*4, compute 64, fill 32: engine 96; scratchpad (256 + 512)/10 =
    # 76.8 ns) takes 96 ns, so it is kept: 96 + 10 = 106 cycles.
    c4 = cost_gemm(folding, 4, 16, 16, "fp16", weight_resident=True)
    assert float(c4.cycles) == 106
    assert float(c4.compute) == 64
