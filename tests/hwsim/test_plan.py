"""The execution plan (hwsim.plan) on hand-derived cases: layer-by-layer loading, prefetch
overlap, eviction and reload, concurrent directions, partial residency, core allocation.

Spec: tests/hwsim/data/tiny_hw.yaml (1 GHz: 1 cycle = 1 ns; 2 cores x 1024 B scratchpad at
10 B/ns; DRAM 0.1 B/ns + 100 ns; dispatch 10 ns; 4x4 array, fp16 1 MAC/PE/cycle, fill/drain 8
cycles per tile; GEMMs are never split: split_min_macs 1e12)."""

from __future__ import annotations

import numpy as np
import pytest

from hwsim import load_spec, simulate
from hwsim.plan import allocate_cores, segments, work_group
from hwsim.optable import op_table
from workloads.graph import OpGraph
from hwsim_testgraphs import TINY_HW, gemm, unary

NS = 1e-9


@pytest.fixture(scope="module")
def hw():
    return load_spec(TINY_HW)


def _layer(g, layer, d, steps, dep, k=8, n=8):
    """One encoder direction: ``steps`` chained GEMVs (1 x k x n fp16: weight k*n*2 B)."""
    mod = f"rnnt.encoder.layers.{layer}.{d}"
    x = dep
    for t in range(steps):
        x = g.add(gemm("encoder", mod, 1, k, n, f"{mod}.weight_hh", t), [x] if x is not None else [])
    return x


def test_segments_and_groups_follow_layers_and_networks():
    g = OpGraph()
    a = _layer(g, 0, "fwd", 2, None)
    b = _layer(g, 0, "bwd", 2, None)
    c = g.add(unary("cat", "move", "encoder", "rnnt.encoder", 16), [a, b])
    _layer(g, 1, "fwd", 2, c)
    g.add(gemm("lm_ext", "lm_ext.layers.0", 1, 8, 8, "lm_ext.layers.0.weight_hh", 0))
    seg, labels = segments(op_table(g))
    assert labels == ["encoder.layers.0", "encoder.layers.1", "search"]
    assert seg.tolist() == [0, 0, 0, 0, 0, 1, 1, 2]   # the cat stays with layer 0
    assert work_group("rnnt.encoder.layers.3.bwd") == "rnnt.encoder.layers.3.bwd"
    assert work_group("rnnt.prediction.layers.0") == "rnnt.prediction"
    assert work_group("lm_src.out") == "lm_src"
    assert work_group("rnnt.encoder") == "" and work_group("") == ""


def test_core_allocation_by_work():
    # 4 cores, work 6 : 2 : 1 : 1 -> quotas 2.4, 0.8, 0.4, 0.4: floors 2, 0, 0, 0; the 2 spare cores
    # go to the largest remainders: 0.8 (group 1), then the 0.4 tie to the larger group (group 0):
    # 3 and 1 cores. Groups 2 and 3 share the least loaded core: every core carries 2 (6/3 and
    # 2/1), so core 0 takes group 2 (load 3), then core 1 group 3.
    c0, nc, share = allocate_cores(np.array([6.0, 2.0, 1.0, 1.0]), np.zeros(4, bool), 4, True)
    assert nc.tolist() == [3, 1, 1, 1]
    assert c0.tolist() == [0, 3, 0, 1]
    assert share.tolist() == [1.0 + 0.5 + 0.5, 1.0, 0.5, 0.5]
    # two equal directions on 2 cores: one core each; without spatial mapping all share all.
    assert allocate_cores(np.array([1.0, 1.0]), np.zeros(2, bool), 2, True)[1].tolist() == [1, 1]
    c0, nc, share = allocate_cores(np.array([1.0, 1.0]), np.zeros(2, bool), 2, False)
    assert nc.tolist() == [2, 2] and share.tolist() == [1.0, 1.0]


def test_layer_by_layer_loading_prefetch_and_eviction(hw):
    # Two layers, one direction each (one group: both cores, 2048 B). Weights 8x8 fp16 = 128 B,
    # 3 uses each: each layer's weight is loaded once (3 uses, 1 load), layer 1's weight is
    # prefetched while layer 0 runs (layer 0 keeps 128 B of weight + 32 B of activations on
    # chip, (8 + 8) x 2 B, so 1888 B are free for it).
    g = OpGraph()
    x = _layer(g, 0, "fwd", 3, None)
    _layer(g, 1, "fwd", 3, x)
    r = simulate(g, hw, "fp16", audio_s=1.0)
    ops = r.ops
    assert ops["dram_bytes"].tolist() == [128, 0, 0, 128, 0, 0]
    assert ops["weight_source"].tolist() == ["loaded", "resident", "resident",
                                             "prefetched", "resident", "resident"]
    assert ops["prefetch_bytes"].tolist() == [0, 0, 0, 128, 0, 0]
    mem = r.memory[r.memory["kind"] == "weight"].set_index("item")
    assert mem["evicted_after_segment"].tolist() == [0, 1]
    # Times. Engine of a 1x8x8 GEMV: 2 tiles * 8 + 2 * 8 fill/drain = 32 ns, + 10 dispatch = 42.
    # Op 0 waits for its load: 1280 ns + 100 ns latency + 10 = 1390 ns. Ops 1, 2: 42 ns each.
    # Layer 1's load was released at layer 0's start (t = 0) and queued after op 0's transfer
    # on the channel: last byte at 2560 ns, usable at 2660 + 10 = 2670: op 3 (start 1474)
    # still waits for it, but 1280 ns less than an on-demand load would have made it wait.
    assert ops["end_s"].tolist() == pytest.approx(
        [1390 * NS, 1432 * NS, 1474 * NS, 2670 * NS, 2712 * NS, 2754 * NS])
    no_pf = simulate(g, hw.replace_path("mapping.prefetch", False), "fp16", audio_s=1.0)
    assert no_pf.ops["weight_source"].tolist()[3] == "loaded"
    assert no_pf.summary["latency_s"] == pytest.approx((1474 + 1390 + 84) * NS)


def test_reload_after_eviction(hw):
    # Layer 0's weight is used again after layer 1 (a later segment): it was evicted at the end
    # of its segment and is loaded again (not carried: layer 1 does not use it).
    g = OpGraph()
    x = _layer(g, 0, "fwd", 2, None)
    x = _layer(g, 1, "fwd", 2, x)
    mod = "rnnt.encoder.layers.0.fwd"
    g.add(gemm("encoder", mod, 1, 8, 8, f"{mod}.weight_hh", 9), [x])
    g.add(gemm("encoder", mod, 1, 8, 8, f"{mod}.weight_hh", 10), [x])
    r = simulate(g, hw.replace_path("mapping.prefetch", False), "fp16", audio_s=1.0)
    assert r.summary["segments"] == 3
    assert r.ops["dram_bytes"].tolist() == [128, 0, 128, 0, 128, 0]
    assert r.summary["dram_bytes"] == 384


def test_back_to_back_runs_of_a_layer_are_one_segment(hw):
    # Two runs of layer 0 one after the other are one segment: its weight is loaded once.
    g = OpGraph()
    x = _layer(g, 0, "fwd", 2, None)
    x = _layer(g, 0, "fwd", 2, x)
    r = simulate(g, hw, "fp16", audio_s=1.0)
    assert r.summary["segments"] == 1
    assert r.ops["dram_bytes"].tolist() == [128, 0, 0, 0]


def test_directions_of_a_layer_run_concurrently(hw):
    # fwd and bwd: two groups of equal work on two cores: one core each; their chains overlap.
    g = OpGraph()
    _layer(g, 0, "fwd", 4, None)
    _layer(g, 0, "bwd", 4, None)
    r = simulate(g, hw, "fp16", audio_s=1.0)
    ops = r.ops
    fwd = ops[ops["module"].str.endswith("fwd")]
    bwd = ops[ops["module"].str.endswith("bwd")]
    assert set(fwd["core"]) != set(bwd["core"])
    overlap = min(fwd["end_s"].max(), bwd["end_s"].max()) - max(fwd["start_s"].min(), bwd["start_s"].min())
    assert overlap > 0.5 * (fwd["end_s"].max() - fwd["start_s"].min())
    # With spatial mapping off, both groups use both cores but each op runs on one: still side
    # by side (the loads share the one DRAM channel either way).
    flat = simulate(g, hw.replace_path("mapping.spatial", False), "fp16", audio_s=1.0)
    assert flat.summary["latency_s"] == pytest.approx(r.summary["latency_s"])


def test_zero_byte_scratchpad_streams_everything_and_spills(hw):
    g = OpGraph()
    x = _layer(g, 0, "fwd", 3, None)
    r = simulate(g, hw.replace_path("core.scratchpad_bytes", 0), "fp16", audio_s=1.0)
    # every use streams the 128 B weight; the group's largest activation buffer (first op:
    # (8 + 8) * 2 B = 32 B) is spilled: written and read back, 64 B, charged to its op.
    assert r.ops["weight_source"].tolist() == ["streamed"] * 3
    assert r.ops["spill_bytes"].tolist() == [64, 0, 0]
    assert r.ops["dram_bytes"].tolist() == [128 + 64, 128, 128]
    assert r.summary["dram_bytes_by_source"] == {"weight_load": 0.0, "weight_prefetch": 0.0,
                                                 "weight_stream": 384.0, "activation_spill": 64.0}


def test_every_dram_byte_is_an_ops_byte():
    from models.config import load_config
    from hwsim_testgraphs import lstm_decode_graph

    cfg = load_config("small")
    g = lstm_decode_graph(cfg, frames=6, steps=4, beam=4)
    for hw_name in ("rapid4", "edge"):
        r = simulate(g, hw_name, "int4", audio_s=0.5, config=cfg)
        assert r.ops["dram_bytes"].sum() == pytest.approx(r.summary["dram_bytes"], rel=1e-12)
        assert sum(r.summary["dram_bytes_by_source"].values()) == pytest.approx(r.summary["dram_bytes"])
        parts = r.summary["energy_breakdown_j"]
        assert sum(parts.values()) == pytest.approx(r.summary["energy_j"], rel=1e-12)
        assert r.ops["energy_j"].sum() + parts["static"] == pytest.approx(r.summary["energy_j"], rel=1e-12)
        assert parts["inter_core"] > 0 or hw_name == "edge"


def test_cache_residency_keeps_a_working_set_whole_or_not_at_all():
    """``mapping.residency: cache`` (hwsim.plan._place_cache): weights of 600 and 300 B (group a)
    and 1100 B (group b), a 200 B activation buffer of b, scratchpads of 1024 B per group, 1000 B
    shared. a's weights (900 B) fit its scratchpad: local. b's 1100 B do not; with its 1024 B
    beside the 1000 B shared level they fit there, whole; the buffer fits in what is left of
    3048 B. Pooled (groups taking turns on the same cores) the 2000 B of weights miss the 2048 B
    of scratchpads only with the buffer, which is not part of the set: all local. A set beyond
    every level keeps nothing (streams) and the buffer spills when it does not fit beside what
    is kept, unlike the knapsack, which keeps the most valuable part."""
    from hwsim.plan import _place, _place_cache

    items = {"a": [(3.0, 600.0, "wa", ("w", 0)), (3.0, 300.0, "wa2", ("w", 1))],
             "b": [(3.0, 1100.0, "wb", ("w", 2)), (2.0, 200.0, "~act", ("act", "b"))]}
    cap = {"a": 1024.0, "b": 1024.0}
    local, shared, remote = _place_cache(items, cap, 1000.0)
    assert local == {("w", 0): 600.0, ("w", 1): 300.0, ("act", "b"): 200.0}
    assert shared == {("w", 2): 1100.0} and remote == {}
    local, shared, _ = _place_cache(items, cap, 1000.0, pooled=True)
    assert shared == {} and sum(v for k, v in local.items() if k[0] == "w") == 2000.0
    assert ("act", "b") in local           # 48 B left of 2048 + 1000 - 2000
    local, shared, _ = _place_cache(items, {"a": 1024.0, "b": 512.0}, 100.0)
    assert ("w", 2) not in local and shared == {} and ("act", "b") in local
    local, _, _ = _place_cache(items, {"a": 1000.0, "b": 512.0}, 0.0)
    assert ("w", 2) not in local and ("act", "b") in local      # 1512 - 900 = 612 >= 200
    local, _, _ = _place_cache(items, {"a": 900.0, "b": 100.0}, 0.0)
    assert ("act", "b") not in local                            # 1000 - 900 = 100 < 200: spills
    # the scratchpad knapsack keeps part of b's weight instead
    k_local, k_shared, _ = _place(items, {"a": 1024.0, "b": 512.0}, 100.0)
    assert k_local[("w", 2)] + k_shared.get(("w", 2), 0.0) > 0


def test_cache_hit_curve_keeps_its_share_of_a_missing_set_in_the_shared_level():
    """With ``mapping.cache_hit_curve`` the 1100 B set of group b (missing its 1024 B scratchpad)
    keeps the curve's share at 1100 B in the shared level: 0.4 between (1000 B, 0.6) and
    (1210 B, 0.2) at log-linear position log(1.1)/log(1.21) = 0.5; a's set still fits locally."""
    from hwsim.plan import _place_cache

    items = {"a": [(3.0, 600.0, "wa", ("w", 0))], "b": [(3.0, 1100.0, "wb", ("w", 2))]}
    local, shared, _ = _place_cache(items, {"a": 1024.0, "b": 1024.0}, 1e9,
                                    hit_curve=((1000.0, 0.6), (1210.0, 0.2)))
    assert local == {("w", 0): 600.0}
    assert shared == {("w", 2): pytest.approx(0.4 * 1100.0)}
