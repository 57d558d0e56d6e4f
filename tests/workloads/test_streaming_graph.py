"""The streaming graph (workloads.streaming): same work as offline, chunked as the front end allows,
search steps released after their frames."""

from dataclasses import replace

import numpy as np
import pytest
import yaml

import workloads.streaming
from models.config import load_config
from models.search.stats import SearchStats
from models.yamlio import to_dict
from workloads.rnnt import rnnt_graph
from workloads.stats import input_frames, parametric_stats
from workloads.streaming import (StreamingError, chunk_frames_of, frames_per_output, plan_chunks, step_chunks,
                                 streaming_graph)


def tiny_stream():
    cfg = load_config("tiny")
    return replace(cfg, name="tiny-stream", encoder=replace(cfg.encoder, bidirectional=False))


def tiny_stream_yaml(tmp_path):
    path = tmp_path / "tiny-stream.yaml"
    path.write_text(yaml.safe_dump(to_dict(tiny_stream()), sort_keys=False))
    return path


def _macs_by_kind(g):
    t = g.to_frame()
    return t.groupby("kind", observed=True)["macs"].sum().to_dict(), t.groupby("op", observed=True).size().to_dict()


@pytest.mark.parametrize("method,fusion", [("alsd", "dr"), ("alsd", "none"), ("tsd", "dr"), ("greedy", "none")])
@pytest.mark.parametrize("chunk", [4, 12, 7])
def test_same_work_as_offline(method, fusion, chunk):
    cfg = tiny_stream()
    audio = 1.0
    stats = parametric_stats(cfg, audio, 1 if method == "greedy" else 4, fusion, method=method)
    frames = input_frames(cfg, audio)
    off = rnnt_graph(cfg, stats, frames)
    st = streaming_graph(cfg, stats, frames, chunk)
    macs_off, ops_off = _macs_by_kind(off)
    macs_st, ops_st = _macs_by_kind(st)
    assert macs_st == macs_off
    # per chunk and layer: one input projection and one stack more; the recurrent GEMMs, cells,
    # search steps and joint calls are the same
    plan = plan_chunks(cfg, frames, chunk)
    layer_chunks = int((plan.counts[:, :-1] > 0).sum())
    proj_chunks = int((plan.counts[:, -1] > 0).sum())
    assert ops_st["stack"] - ops_off["stack"] == layer_chunks - cfg.encoder.layers
    assert ops_st["addmm"] - ops_off["addmm"] == (layer_chunks - cfg.encoder.layers) + (proj_chunks - 1)
    for name in ("sigmoid", "tanh", "topk", "log_softmax", "embedding", "index_select"):
        assert ops_st.get(name) == ops_off.get(name), name
    assert len(st.meta["streaming"]["first_op"]) == plan.n_chunks


def test_chunk_counts_follow_the_front_end():
    cfg = tiny_stream()            # stack 2, stride 2, concat time reduction by 2 after layer 0
    plan = plan_chunks(cfg, 23, 4)
    # 23 frames: 11 stacked frames, 5 reduced ones (concat drops the trailing half group)
    assert plan.counts.sum(axis=0).tolist() == [11, 5, 5]
    assert plan.counts[0].tolist() == [2, 1, 1]
    assert plan.frames_ready.tolist() == [1, 2, 3, 4, 5, 5]
    np.testing.assert_allclose(plan.arrival_s, [0.04, 0.08, 0.12, 0.16, 0.20, 0.23])
    assert frames_per_output(cfg) == 4 and chunk_frames_of(cfg, None) == 4


def test_steps_released_after_their_frame():
    cfg = tiny_stream()
    stats = parametric_stats(cfg, 1.0, 4, "dr")
    frames = input_frames(cfg, 1.0)
    plan = plan_chunks(cfg, frames, 4)
    g = streaming_graph(cfg, stats, frames, 4)
    first = np.asarray(g.meta["streaming"]["first_op"])
    t = g.to_frame()
    # the first op of each search step (its joint's index_select) lies in a chunk whose frames
    # include the step's latest frame
    gather = t[t["op"] == "index_select"]
    chunk_of = np.searchsorted(first, gather.index.to_numpy(), side="right") - 1
    frame = np.array([stats.steps[s].frame for s in gather["step"]])
    assert (plan.frames_ready[chunk_of] > frame).all()
    assert (np.diff(chunk_of) >= 0).all()
    np.testing.assert_array_equal(chunk_of, step_chunks(plan, stats))
    # and as early as that: the chunk before does not have the frame yet
    early = chunk_of > 0
    assert (plan.frames_ready[chunk_of[early] - 1] <= frame[early]).all()


def test_parametric_alsd_frames_and_real_alsd_frames(traced):
    cfg = load_config("swb300-stream")
    s = parametric_stats(cfg, 2.0, 8, "dr")
    T, n = s.frames, len(s.steps)
    frames = [x.frame for x in s.steps]
    assert frames[0] == 0 and frames[-1] == T - 1 and (np.diff(frames) >= 0).all()
    assert frames == [min(T - 1, -(-i * T // n)) for i in range(n)]
    # a real ALSD decode records the latest frame among the hyps it scores
    _, _, graph, result = traced("tiny", 40, 3, "dr", "alsd")
    real = SearchStats.from_dict(graph.meta["search_stats"])
    assert [x.frame for x in real.steps] == [x.frame for x in result.stats.steps]
    assert real.steps[0].frame == 0 and max(x.frame for x in real.steps) < result.stats.frames
    assert real.to_dict() == result.stats.to_dict()


def test_one_chunk_is_the_offline_graph():
    cfg = tiny_stream()
    stats = parametric_stats(cfg, 0.5, 4, "dr")
    frames = input_frames(cfg, 0.5)
    st = streaming_graph(cfg, stats, frames, frames)
    off = rnnt_graph(cfg, stats, frames)
    np.testing.assert_array_equal(st.code, off.code)
    for a, b in zip(st.edge_arrays(), off.edge_arrays()):
        np.testing.assert_array_equal(a, b)
    assert st.meta["streaming"]["first_op"] == [0]
    assert st.meta["streaming"]["arrival_s"] == [pytest.approx(0.5)]


def test_bidirectional_and_bad_chunks_are_rejected():
    with pytest.raises(StreamingError, match="bidirectional"):
        chunk_frames_of(load_config("swb300"), None)
    cfg = tiny_stream()
    for bad in (15.0, 0.0, -10.0, 5.0):
        with pytest.raises(StreamingError, match="multiple of the 10 ms"):
            chunk_frames_of(cfg, bad)
    mean = replace(cfg, encoder=replace(cfg.encoder, time_reduction_method="mean"))
    with pytest.raises(StreamingError, match="mean time-reduction group"):
        plan_chunks(mean, 40, 2)
    plan_chunks(mean, 40, 4)        # whole groups per chunk


def test_stats_columns_round_trip():
    s = parametric_stats(load_config("tiny"), 0.5, 4, "dr", method="tsd")
    d = s.to_dict(columns=True)
    assert isinstance(d["steps"], dict) and len(d["steps"]["step"]) == len(s.steps)
    assert SearchStats.from_dict(d).to_dict() == s.to_dict()
    d["steps"]["nonsense"] = [0] * len(s.steps)
    with pytest.raises(ValueError, match="nonsense"):
        SearchStats.from_dict(d)


def test_paper_streaming_graph_shape():
    g = workloads.streaming.paper_streaming_graph(load_config("swb300-stream"), 2.0, 8, "dr")
    st = g.meta["streaming"]
    assert len(st["first_op"]) == 50 and st["chunk_s"] == pytest.approx(0.04)
    assert st["arrival_s"][-1] == pytest.approx(2.0)
