"""Metamorphic properties on real graphs: the analytic builder's graphs (paper-scale structure on
the `small` model) and a traced decode of `tiny`."""

from __future__ import annotations

import pytest

import workloads
from hwsim import load_spec, simulate
from models.config import load_config

AUDIO_S = 2.0


@pytest.fixture(scope="module")
def cfg():
    return load_config("small")


@pytest.fixture(scope="module")
def graphs(cfg):
    return {(beam, fusion): workloads.paper_graph(cfg, AUDIO_S, beam, fusion)
            for beam in (1, 2, 4, 8, 16) for fusion in ("none", "dr")}


def _lat(graph, hw, policy, cfg):
    return simulate(graph, hw, policy, AUDIO_S, config=cfg).summary["latency_s"]


@pytest.mark.parametrize("hw", ["rapid4", "edge", "host-cpu"])
@pytest.mark.parametrize("policy", ["fp16", "int4"])
def test_larger_beam_and_fusion_never_faster(graphs, cfg, hw, policy):
    for fusion in ("none", "dr"):
        lat = [_lat(graphs[(b, fusion)], hw, policy, cfg) for b in (1, 2, 4, 8, 16)]
        assert all(b >= a * (1 - 1e-12) for a, b in zip(lat, lat[1:])), (fusion, lat)
    for beam in (1, 4, 16):
        assert _lat(graphs[(beam, "dr")], hw, policy, cfg) >= _lat(graphs[(beam, "none")], hw, policy, cfg)


@pytest.mark.parametrize("beam", [1, 16])
def test_int4_never_slower_than_fp16_on_rapid4(graphs, cfg, beam):
    for fusion in ("none", "dr"):
        g = graphs[(beam, fusion)]
        assert _lat(g, "rapid4", "int4", cfg) <= _lat(g, "rapid4", "fp16", cfg)


@pytest.mark.parametrize("policy", ["fp16", "int4"])
def test_more_bandwidth_or_clock_never_slower_on_a_real_graph(graphs, cfg, policy):
    g = graphs[(8, "dr")]
    hw = load_spec("rapid4")
    base = _lat(g, hw, policy, cfg)
    for path in ("dram_bw_bytes_per_s", "core.scratchpad_bw_bytes_per_s", "inter_core_bw_bytes_per_s",
                 "frequency_hz"):
        value = hw
        for part in path.split("."):
            value = getattr(value, part)
        assert _lat(g, hw.replace_path(path, 2 * value), policy, cfg) <= base * (1 + 1e-12), path


def test_traced_graph_simulates_and_phases_add_up():
    import torch

    import models

    torch.set_num_threads(1)
    system = models.build_system("tiny", seed=0)
    feats = models.random_features(system.config, 120, seed=1)
    graph, result = workloads.trace(system, feats, beam=4, lm_fusion="dr")
    audio_s = 120 * system.config.features.frame_shift_s
    r = simulate(graph, "rapid4", "int4", audio_s, config=system.config)
    s = r.summary
    assert s["rtf"] == pytest.approx(s["latency_s"] / audio_s)
    assert sum(s["phases"].values()) == pytest.approx(s["latency_s"])
    assert s["macs"] == graph.totals()["macs"]
    assert all(s["phases"][p] > 0 for p in ("encoder", "prediction", "joint", "lm_ext", "lm_src", "search"))
