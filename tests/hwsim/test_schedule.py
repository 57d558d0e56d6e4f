"""Scheduler: golden overlap on two cores, consistency of schedules on real presets, the DRAM
channel against a brute-force timeline, phases."""

from __future__ import annotations

import numpy as np
import pytest

from hwsim import load_spec, simulate
from hwsim.schedule import _dram_fill, phase_latency
from models.config import load_config
from workloads.graph import OpGraph
from hwsim_testgraphs import TINY_HW, gemm, lstm_decode_graph, unary

NS = 1e-9


def check_schedule(result, graph, cores):
    """Ops never start before their producers end; no unit runs two ops at once."""
    ops = result.ops
    start, end = ops["start_s"].to_numpy(), ops["end_s"].to_numpy()
    ptr, deps = graph.edge_arrays()
    eps = 1e-15
    for i in range(len(graph)):
        for p in deps[ptr[i]:ptr[i + 1]]:
            assert start[i] >= end[p] - eps, f"op {i} starts before producer {p} ends"
    busy = []
    for i, (c, n, u) in enumerate(zip(ops["core"], ops["cores"], ops["unit"])):
        for cc in range(c, c + n):
            assert 0 <= cc < cores
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
def test_schedule_consistency_on_presets(hw_name):
    cfg = load_config("small")
    g = lstm_decode_graph(cfg, frames=6, steps=4, beam=4)
    hw = load_spec(hw_name)
    r = simulate(g, hw, "int4", audio_s=0.5, config=cfg)
    check_schedule(r, g, hw.cores)
    # The DRAM channel is never oversubscribed: all transfers fit in the makespan.
    ops = r.ops
    assert (ops["dram_bytes"].sum() / hw.dram_bw_bytes_per_s) <= r.summary["latency_s"] * (1 + 1e-12)
    # An op never ends before its own compute (latency on its cores) is done.
    assert (ops["latency_s"] >= ops["engine_s"] - 1e-15).all()


def _fill_bruteforce(busy, release, dur, dt):
    """Reference: the channel as a timeline of dt-slots; a transfer takes the first free slots
    at or after release. Returns (finish, new busy mask)."""
    busy = busy.copy()
    need = int(round(dur / dt))
    i = int(round(release / dt))
    while need:
        if not busy[i]:
            busy[i] = True
            need -= 1
        i += 1
    return i * dt, busy


def test_dram_channel_fills_idle_time_like_a_slot_timeline():
    # Integer-valued intervals (dt = 1) so both implementations are exact.
    rng = np.random.default_rng(7)
    for trial in range(30):
        mask = np.zeros(4000, dtype=bool)
        bs = np.zeros(200)
        be = np.zeros(200)
        cnt = 0
        for _ in range(40):
            release = float(rng.integers(0, 300))
            dur = float(rng.integers(0, 40))
            ref_finish, mask = _fill_bruteforce(mask, release, dur, 1.0)
            finish, cnt = _dram_fill(bs, be, cnt, release, dur)
            if dur > 0:
                assert finish == ref_finish
            # the interval list is exactly the busy mask
            got = np.zeros_like(mask)
            for a_, b_ in zip(bs[:cnt], be[:cnt]):
                got[int(a_):int(b_)] = True
            np.testing.assert_array_equal(got, mask)
            assert (bs[1:cnt] > be[:max(cnt - 1, 0)]).all()  # sorted, disjoint, merged


def test_phase_latency_sums_to_makespan_with_gaps():
    rng = np.random.default_rng(1)
    start = rng.uniform(0, 10, 200)
    end = start + rng.uniform(0, 1, 200)
    phase = rng.integers(0, 6, 200)
    out = phase_latency(start, end, phase, 6)
    assert out.sum() == pytest.approx(end.max())
    assert (out >= 0).all()


def test_split_large_gemm_on_rapid4():
    # A big batched input GEMM (T=400 frames) of the only work group is split across its 4 cores.
    g = OpGraph()
    g.add(gemm("encoder", "rnnt.encoder.layers.0.fwd", 400, 1280, 2560, "rnnt.encoder.layers.0.fwd.weight_ih"))
    r = simulate(g, "rapid4", "int4", audio_s=1.0)
    assert (r.ops["core"].iloc[0], r.ops["cores"].iloc[0]) == (0, 4)
    assert r.summary["split_ops"] == 1
    # n = 2560 over 4 cores: 640 per core, 20 column tiles of 32 instead of 80.
    one = simulate(g, load_spec("rapid4").replace_path("cores", 1), "int4", audio_s=1.0)
    assert r.ops["compute_s"].iloc[0] == pytest.approx(one.ops["compute_s"].iloc[0] / 4)


def test_dram_is_one_channel_shared_by_all_cores():
    # Two independent GEMMs of two work groups (lm_ext, lm_src: one core each), each streaming
    # its own 8x8 fp16 weight (128 B, used once). They start together on the two cores, but the
    # channel serves one transfer at a time: last byte at 2 x 1280 ns, + 100 ns latency + 10 ns
    # dispatch = 2670 ns, not 1390.
    g = OpGraph()
    g.add(gemm("lm_ext", "lm_ext.out", 1, 8, 8, weight="w1"))
    g.add(gemm("lm_src", "lm_src.out", 1, 8, 8, weight="w2"))
    r = simulate(g, TINY_HW, "fp16", audio_s=1.0)
    assert r.ops["dram_bytes"].tolist() == [128, 128]
    assert sorted(r.ops["core"]) == [0, 1] and r.ops["start_s"].tolist() == [0.0, 0.0]
    assert r.ops["end_s"].tolist() == pytest.approx([1390 * NS, 2670 * NS])
    assert r.summary["latency_s"] == pytest.approx(2670 * NS)
    check_schedule(r, g, 2)
