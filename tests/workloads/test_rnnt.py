"""The analytic builder against the tracer: same ops from the statistics of a real decode."""


import pytest

import workloads
from models.config import load_config
from workloads.graph import PHASES


def _by_phase(graph, field):
    out = {}
    for o in graph.ops:
        out[o.phase] = out.get(o.phase, 0) + getattr(o, field)
    return out


def _kinds(graph):
    out = {}
    for o in graph.ops:
        out[(o.phase, o.kind)] = out.get((o.phase, o.kind), 0) + 1
    return out


CASES = [
    ("tiny", 60, 4, "dr", "alsd"), ("tiny", 60, 4, "none", "alsd"), ("tiny", 60, 3, "dr", "tsd"),
    ("tiny", 40, 1, "dr", "greedy"), ("small", 120, 8, "dr", "alsd"), ("small", 80, 4, "none", "tsd"),
]


@pytest.mark.parametrize(("preset", "frames", "beam", "fusion", "method"), CASES)
def test_builder_matches_trace(traced, preset, frames, beam, fusion, method):
    system, _, graph, result = traced(preset, frames, beam, fusion, method)
    built = workloads.rnnt_graph(system.config, result.stats, frames)
    # the requested checks: MACs and weight bytes per phase exactly, op counts per kind
    assert _by_phase(built, "macs") == _by_phase(graph, "macs")
    assert _by_phase(built, "weight_bytes") == _by_phase(graph, "weight_bytes")
    assert _kinds(built) == _kinds(graph)
    # ... and in fact every op record (name, phase, step, module, shapes, bytes) is identical;
    # only the search's dataflow edges through the prefix caches are approximated
    assert list(built.ops) == list(graph.ops)
    assert set(built.graph.edges()) & set(graph.graph.edges())
    enc = {e for e in graph.graph.edges() if graph[e[1]].phase == "encoder"}
    assert enc <= set(built.graph.edges())  # encoder edges exact


def test_paper_graph_swb300_is_complete():
    # build time is measured in benchmarks/bench_trace.py, not asserted here
    cfg = load_config("swb300")
    g = workloads.paper_graph(cfg, 10.0, 16, "dr", "alsd")
    assert set(g.phase_summary().index) == set(PHASES)
    assert g.unknown_ops() == {}
    s = g.meta["search"]
    assert (s["frames"], s["beam"], s["search_steps"]) == (250, 16, 250 + 140)
    # encoder: 6 bi-LSTM layers, 500 frames at layer 0 and 250 after the x2 reduction
    H = 640
    dims = [240] + [1280] * 5
    T = [500] + [250] * 5
    assert _by_phase(g, "macs")["encoder"] == sum(2 * t * 4 * H * (i + H) for t, i in zip(T, dims))


def test_paper_graph_without_fusion_has_no_lm_ops():
    g = workloads.paper_graph(load_config("swb300"), 2.0, 4, "none")
    assert not [o for o in g.ops if o.phase.startswith("lm_")]


def test_stats_frames_must_match():
    cfg = load_config("tiny")
    stats = workloads.parametric_stats(cfg, 1.0, 4, "dr")
    with pytest.raises(ValueError, match="encoder frames"):
        workloads.rnnt_graph(cfg, stats, 50)
