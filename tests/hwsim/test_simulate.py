"""Whole simulations: metamorphic properties, summary contract, saving."""

from __future__ import annotations

import json

import pytest

from hwsim import load_spec, simulate
from models.config import load_config
from workloads.graph import PHASES
from hwsim_testgraphs import TINY_HW, lstm_decode_graph


@pytest.fixture(scope="module")
def cfg():
    return load_config("swb300")


@pytest.fixture(scope="module")
def graph(cfg):
    return lstm_decode_graph(cfg, frames=10, steps=6, beam=4)


BW_FIELDS = ("dram_bw_bytes_per_s", "shared_bw_bytes_per_s", "inter_core_bw_bytes_per_s",
             "core.scratchpad_bw_bytes_per_s")


def _scaled(hw, fields, factor):
    for f in fields:
        obj = hw
        for part in f.split("."):
            obj = getattr(obj, part)
        hw = hw.replace_path(f, obj * factor)
    return hw


@pytest.mark.parametrize("hw_name", ["rapid4", "edge", "host-cpu", str(TINY_HW)])
@pytest.mark.parametrize("policy", ["fp16", "int4"])
def test_more_bandwidth_or_clock_never_slower(graph, cfg, hw_name, policy):
    hw = load_spec(hw_name)
    base = simulate(graph, hw, policy, 1.0, config=cfg).latency_s
    assert simulate(graph, _scaled(hw, BW_FIELDS, 2.0), policy, 1.0, config=cfg).latency_s <= base * (1 + 1e-12)
    faster = hw.replace_path("frequency_hz", hw.frequency_hz * 2)
    assert simulate(graph, faster, policy, 1.0, config=cfg).latency_s <= base * (1 + 1e-12)


@pytest.mark.parametrize("hw_name", ["rapid4", "edge"])
def test_larger_beam_never_faster(cfg, hw_name):
    lat = [simulate(lstm_decode_graph(cfg, frames=6, steps=5, beam=b), hw_name, "int4", 1.0, config=cfg).latency_s
           for b in (1, 2, 4, 8, 16, 32)]
    assert all(b >= a for a, b in zip(lat, lat[1:])), lat


def test_int4_not_slower_than_fp16_on_rapid4(graph, cfg):
    fp16 = simulate(graph, "rapid4", "fp16", 1.0, config=cfg)
    int4 = simulate(graph, "rapid4", "int4", 1.0, config=cfg)
    assert int4.latency_s <= fp16.latency_s
    # 10 frames and 6 search steps: every weight is used a few times only, so both runs are bound
    # by the DRAM channel (its busy time is >= 90% of the latency) and the speed-up is the ratio
    # of DRAM bytes (INT4 weights are ~4x smaller, plus what fits on chip at INT4 only).
    for r in (fp16, int4):
        assert r.summary["dram_bytes"] / r.hw.dram_bw_bytes_per_s >= 0.9 * r.latency_s
    ratio = fp16.summary["dram_bytes"] / int4.summary["dram_bytes"]
    assert fp16.latency_s / int4.latency_s == pytest.approx(ratio, rel=0.1)
    assert ratio > 4


def test_summary_contract(graph, cfg):
    r = simulate(graph, "rapid4", "int4", 2.5, config=cfg)
    s = r.summary
    assert s["rtf"] == s["latency_s"] / 2.5
    assert set(s["phases"]) == set(PHASES)
    assert sum(s["phases"].values()) == pytest.approx(s["latency_s"], rel=1e-9)
    assert r.phases["latency_s"].sum() == pytest.approx(s["latency_s"], rel=1e-9)
    assert s["macs"] == sum(op.macs for op in graph.ops)
    assert s["ops"] == len(graph)
    assert 7.0 < s["compression_x"] < 8.0
    assert s["weight_bytes"] * s["compression_x"] == pytest.approx(s["fp32_weight_bytes"])
    assert s["energy_j"] > 0
    assert s["latency_s"] == pytest.approx(r.ops["end_s"].max())
    # every op's latency covers at least its dispatch overhead
    assert (r.ops["latency_s"] >= r.ops["dispatch_s"] - 1e-15).all()


def test_config_from_graph_meta(graph):
    r = simulate(graph, "rapid4", "fp16", 1.0)     # graph.meta["model"] == "swb300"
    assert r.summary["compression_x"] == 2.0


def test_absent_phases_are_zero(cfg):
    g = lstm_decode_graph(cfg, frames=4, steps=2, beam=2, lm=False)
    s = simulate(g, "rapid4", "int4", 1.0, config=cfg).summary
    assert s["phases"]["lm_ext"] == 0.0 and s["phases"]["lm_src"] == 0.0


def test_save(tmp_path, graph, cfg):
    r = simulate(graph, "edge", "int8", 1.0, config=cfg)
    out = r.save(tmp_path / "run")
    for name in ("config.json", "hw.yaml", "ops.parquet", "ops.csv", "phases.csv", "memory.csv",
                 "mapping.csv", "summary.json"):
        assert (out / name).exists(), name
    summary = json.loads((out / "summary.json").read_text())
    assert summary["latency_s"] == pytest.approx(r.latency_s)
    import pandas as pd

    ops = pd.read_parquet(out / "ops.parquet")
    assert len(ops) == len(graph) and "start_s" in ops.columns


def test_bad_audio_s(graph):
    with pytest.raises(ValueError, match="audio_s"):
        simulate(graph, "rapid4", "int4", 0.0)


def test_missing_energy_for_a_precision_is_an_error(graph, cfg):
    from hwsim import CostError

    hw = load_spec("rapid4")
    data = hw.to_dict()
    del data["energy"]["mac_j"]["int4"]
    from models.yamlio import from_dict
    from hwsim.spec import AcceleratorSpec

    bad = from_dict(AcceleratorSpec, data, source="test")
    with pytest.raises(CostError, match=r"energy.mac_j has no entry for int4 \(used by \d+ GEMMs\)"):
        simulate(graph, bad, "int4", 1.0, config=cfg)


def test_weight_unknown_to_the_config_is_an_error(cfg):
    from hwsim import CostError
    from workloads.graph import OpGraph
    from hwsim_testgraphs import gemm

    g = OpGraph()
    g.add(gemm("joint", "rnnt.joint.out", 1, 8, 8, "rnnt.joint.nosuch.weight"))
    with pytest.raises(CostError, match="'rnnt.joint.nosuch.weight' is not a parameter of model 'swb300'"):
        simulate(g, "rapid4", "int4", 1.0, config=cfg)
    # without a config the size is computed: k * n at the weight precision (no scales)
    r = simulate(g, "rapid4", "int4", 1.0)
    assert r.ops["weight_bytes"].iloc[0] == 8 * 8 * 4 / 8
