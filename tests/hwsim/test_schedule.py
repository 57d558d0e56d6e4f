"""Scheduler: golden overlap on two cores, consistency of schedules, Numba == Python, phases."""

from __future__ import annotations

import numpy as np
import pytest

from hwsim import load_spec, simulate
from hwsim.cost import cost_ops
from hwsim.optable import edge_arrays, op_table
from hwsim.schedule import list_schedule, phase_latency
from models.config import load_config
from models.quant.policy import load_policy
from workloads.graph import OpGraph
from hwsim_testgraphs import TINY_HW, gemm, lstm_decode_graph, unary

NS = 1e-9


def check_schedule(result, graph, cores):
    """Ops never start before their producers end; no unit runs two ops at once."""
    ops = result.ops
    start, end = ops["start_s"].to_numpy(), ops["end_s"].to_numpy()
    ptr, deps = edge_arrays(graph)
    eps = 1e-15
    for i in range(len(graph)):
        for p in deps[ptr[i]:ptr[i + 1]]:
            assert start[i] >= end[p] - eps, f"op {i} starts before producer {p} ends"
    busy = []
    for i, (c, u) in enumerate(zip(ops["core"], ops["unit"])):
        for cc in (range(cores) if c < 0 else [c]):
            busy.append((cc, u, start[i], end[i]))
    busy.sort()
    for a, b in zip(busy, busy[1:]):
        if a[:2] == b[:2]:
            assert b[2] >= a[3] - eps, f"unit {a[:2]} runs two ops at once"


def test_two_independent_ops_overlap_on_two_cores():
    # Each SFU op: 1000 el / 2 per ns + 10 ns dispatch = 510 ns. Two cores: the first two run
    # side by side on cores 0 and 1; the third waits for a free SFU: [510, 1020].
    g = OpGraph()
    g.add(unary("sigmoid", "nonlinear", "encoder", "", 1000))
    g.add(unary("sigmoid", "nonlinear", "prediction", "", 1000))
    g.add(unary("sigmoid", "nonlinear", "prediction", "", 1000))
    r = simulate(g, TINY_HW, "fp16", audio_s=1.0)
    assert sorted(r.ops["core"].iloc[:2]) == [0, 1]
    assert r.ops["start_s"].tolist() == pytest.approx([0, 0, 510 * NS])
    assert r.summary["latency_s"] == pytest.approx(1020 * NS)
    # Phases: [0, 510] shared by one encoder and one prediction op -> 255 ns each;
    # [510, 1020] prediction only.
    assert r.summary["phases"]["encoder"] == pytest.approx(255 * NS)
    assert r.summary["phases"]["prediction"] == pytest.approx(765 * NS)
    check_schedule(r, g, 2)


def test_units_of_one_core_overlap():
    # A GEMM (matrix) and an SFU op, independent: both start at 0 (on different cores or units).
    g = OpGraph()
    g.add(gemm("joint", "", 5, 8, 6))
    g.add(unary("sigmoid", "nonlinear", "joint", "", 1000))
    r = simulate(g, TINY_HW.as_posix(), "fp16", audio_s=1.0)
    assert r.ops["start_s"].tolist() == [0.0, 0.0]
    assert r.summary["latency_s"] == pytest.approx(510 * NS)


def test_inter_core_transfer_delays_remote_consumer():
    # producer on core 0 (sfu, 510 ns, out 4000 B at fp16). Consumer B is an SFU op while core 0's
    # SFU is busy with C until 1020: on core 1 it starts after the 4000 B transfer at 1 B/ns.
    g = OpGraph()
    a = g.add(unary("sigmoid", "nonlinear", "joint", "", 1000))
    g.add(unary("sigmoid", "nonlinear", "joint", "", 1000), [a])
    r = simulate(g, TINY_HW, "fp16", audio_s=1.0)
    # same core: starts right at 510 (no transfer), rather than 510 + 2000 ns elsewhere.
    assert r.ops["core"].tolist() == [0, 0]
    assert r.ops["start_s"].tolist() == pytest.approx([0, 510 * NS])


@pytest.mark.parametrize("hw_name", ["rapid4", "edge", "host-cpu"])
def test_schedule_consistency_and_numba_matches_python(hw_name):
    cfg = load_config("small")
    g = lstm_decode_graph(cfg, frames=6, steps=4, beam=4)
    hw = load_spec(hw_name)
    r = simulate(g, hw, "int4", audio_s=0.5, config=cfg)
    check_schedule(r, g, hw.cores)
    costed = cost_ops(op_table(g), hw, load_policy("int4"), cfg)
    ptr, deps = edge_arrays(g)
    args = (costed.unit, costed.latency_s, costed.split_s, costed.out_xfer_s,
            costed.table["dram_s"].to_numpy(), costed.table["dispatch_s"].to_numpy(), ptr, deps, hw.cores)
    a = list_schedule(*args, use_numba=True)
    b = list_schedule(*args, use_numba=False)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


def test_phase_latency_sums_to_makespan_with_gaps():
    rng = np.random.default_rng(1)
    start = rng.uniform(0, 10, 200)
    end = start + rng.uniform(0, 1, 200)
    phase = rng.integers(0, 6, 200)
    out = phase_latency(start, end, phase, 6)
    assert out.sum() == pytest.approx(end.max())
    assert (out >= 0).all()


def test_split_large_gemm_on_rapid4():
    # A big batched input GEMM (T=400 frames) is split across the 4 cores when that is faster.
    g = OpGraph()
    g.add(gemm("encoder", "rnnt.encoder.layers.0.fwd", 400, 1280, 2560, "rnnt.encoder.layers.0.fwd.weight_ih"))
    r = simulate(g, "rapid4", "int4", audio_s=1.0)
    assert r.ops["core"].iloc[0] == -1
    single = r.ops["engine_s"].iloc[0]
    assert r.summary["latency_s"] < single
    assert r.summary["split_ops"] == 1


def test_dram_is_one_channel_shared_by_all_cores():
    # Two independent GEMMs, each streaming its own weight (used once: not resident). They run on
    # the two cores side by side, but the DRAM channel serves one transfer at a time: the second
    # transfer starts when the first ends, so the makespan is d1 + d2 + dispatch, not max + dispatch.
    g = OpGraph()
    g.add(gemm("lm_ext", "lm_ext.out", 1, 8, 8, weight="w1"))
    g.add(gemm("lm_src", "lm_src.out", 1, 8, 8, weight="w2"))
    r = simulate(g, TINY_HW, "fp16", audio_s=1.0)
    d = r.ops["dram_s"].to_numpy()
    assert d[0] > 0 and d[0] == d[1]
    assert d[0] > r.ops["compute_s"].max()  # DRAM-bound
    assert sorted(r.ops["core"]) == [0, 1] and r.ops["start_s"].tolist() == [0.0, 0.0]
    assert r.summary["latency_s"] == pytest.approx(2 * d[0] + 10 * NS)
    check_schedule(r, g, 2)
