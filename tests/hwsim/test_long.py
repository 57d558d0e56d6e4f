"""Long audio: the memory-lean paths agree with the plain ones, and the model stays linear.

The hour-long figures (CPU seconds, peak memory) are measured by ``benchmarks/bench_long.py``;
here the pieces they rest on are checked on sizes a test can afford.
"""

import numpy as np
import pytest

import hwsim.schedule as schedule
from models.config import load_config
from workloads import paper_graph

from hwsim.simulate import simulate


@pytest.mark.parametrize("n", [1, 2, 17, 500, 5000])
def test_chunked_phase_sweep_equals_the_sorted_one(monkeypatch, n):
    rng = np.random.default_rng(n)
    start = np.round(rng.uniform(0, 10, n), 2)          # ties between starts and ends
    end = start + np.round(rng.uniform(0, 1, n), 2)
    phase = rng.integers(0, 6, n)
    whole = schedule.phase_latency(start, end, phase, 6)
    monkeypatch.setattr(schedule, "SORT_CHUNK", 7)
    chunked = schedule.phase_latency(start, end, phase, 6)
    np.testing.assert_array_equal(chunked, whole)
    assert chunked.sum() == pytest.approx(end.max(), rel=1e-12)


@pytest.mark.parametrize("n", [3, 500, 5000])
def test_chunked_phase_sweep_with_releases_equals_the_sorted_one(monkeypatch, n):
    """Streaming: idle time ending at an op that starts at its release is the last entry."""
    rng = np.random.default_rng(n)
    rel_op = np.unique(np.append(0, rng.integers(0, n, max(1, n // 10))))
    rel_s = np.sort(np.round(rng.uniform(0, 20, len(rel_op)), 2))
    release = rel_s[np.searchsorted(rel_op, np.arange(n), side="right") - 1]
    start = np.maximum(np.round(rng.uniform(0, 20, n), 2), release)
    start[rel_op] = release[rel_op]                    # some ops start right at their release
    end = start + np.round(rng.uniform(0, 0.5, n), 2)
    phase = rng.integers(0, 6, n)
    whole = schedule.phase_latency(start, end, phase, 6, release_op=rel_op, release_s=rel_s)
    monkeypatch.setattr(schedule, "SORT_CHUNK", 7)
    chunked = schedule.phase_latency(start, end, phase, 6, release_op=rel_op, release_s=rel_s)
    np.testing.assert_allclose(chunked, whole, rtol=1e-12, atol=1e-12)
    assert len(whole) == 7 and whole.sum() == pytest.approx(end.max(), rel=1e-12)
    plain = schedule.phase_latency(start, end, phase, 6)
    assert whole[6] > 0 and whole[:6].sum() + whole[6] == pytest.approx(plain.sum(), rel=1e-12)
    assert (whole[:6] <= plain + 1e-12).all()


def test_chunked_sweep_refuses_more_concurrent_ops_than_its_capacity(monkeypatch):
    monkeypatch.setattr(schedule, "SORT_CHUNK", 2)
    start, end = np.zeros(4), np.ones(4)                 # four ops at once
    with pytest.raises(ValueError, match="more ops run at once"):
        schedule.phase_latency(start, end, np.zeros(4, dtype=np.int64), 6, concurrency=3)


def test_graph_columns_are_compact():
    g = paper_graph(load_config("swb300"), 30.0, 16, "dr")
    ptr, deps = g.edge_arrays()
    per_op = (g.code.nbytes + g.step.nbytes + ptr.nbytes + deps.nbytes) / len(g)
    assert per_op <= 4 + 4 + 4 + 4 * 1.6 + 1e-3         # int32 columns, ~1.5 producers per op
    assert len(g.templates) < 300


def test_rtf_is_linear_in_length_once_activations_spill():
    """Past a few minutes every encoder layer's activation buffer (T x 4H gate inputs) exceeds
    its scratchpad share and spills; from then on the latency is linear in the audio length."""
    cfg = load_config("swb300")
    res = {a: simulate(paper_graph(cfg, a, 16, "dr"), "rapid4", "int4", a, config=cfg).summary
           for a in (10.0, 120.0, 360.0)}
    assert res[360.0]["rtf"] == pytest.approx(res[120.0]["rtf"], rel=5e-3)
    # the search's phases are linear from the start; the encoder grows with the spilled bytes
    for p in ("prediction", "joint", "lm_ext", "lm_src", "search"):
        assert res[120.0]["phases"][p] / 120 == pytest.approx(res[10.0]["phases"][p] / 10, rel=0.02), p
    spill = {a: r["dram_bytes_by_source"]["activation_spill"] / a for a, r in res.items()}
    assert spill[120.0] > 10 * spill[10.0]
    assert res[120.0]["phases"]["encoder"] / 120 > res[10.0]["phases"]["encoder"] / 10
