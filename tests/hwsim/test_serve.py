"""Serving capacity (hwsim.serve): hand-derived batching, service times from the simulator,
monotonicity where it is a theorem, and the CLI."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from hwsim import serve
from hwsim.cli import main
from hwsim.serve import GOLDEN, BatchPolicy, Workload, max_streams, meets
from hwsim.spec import load_spec
from hwsim.streaming import simulate_streaming

sys.path.insert(0, str(Path(__file__).parents[1] / "workloads"))
from test_streaming_graph import tiny_stream  # noqa: E402

TINY_HW = Path(__file__).parent / "data" / "tiny_hw.yaml"


def hand_workload(chunks=3, steps=None):
    """Chunks of 1 s; a batch of b takes encoder_s[b] + step_s[b] per search step (first_s: the
    encoder and one step, with no overlap between them here)."""
    enc, step = np.array([0.0, 0.3, 0.4]), np.array([0.0, 0.25, 0.3])
    return Workload(np.arange(1, chunks + 1, dtype=np.float64),
                    np.ones(chunks, dtype=np.int64) if steps is None else np.asarray(steps, dtype=np.int64),
                    1.0, enc, enc + step, step, {"audio_s": float(chunks)})


def test_service_time_of_a_batch():
    w = hand_workload()
    assert w.service_s([1]) == pytest.approx(0.55)
    assert w.service_s([0]) == pytest.approx(0.3)
    assert w.service_s([1, 2]) == pytest.approx(0.4 + 0.3 + 0.25)   # the second step has one member
    assert w.service_s([2, 2]) == pytest.approx(0.4 + 0.3 + 0.3)
    assert w.service_s([0, 1]) == pytest.approx(0.4 + (0.55 - 0.3))  # one member has no step
    assert w.service_s([0, 0]) == pytest.approx(0.4)


def test_two_streams_by_hand_without_waiting():
    """Stream 1 starts 0.618 s after stream 0; with no wait the chip never finds both ready, so it
    serves them one by one (0.55 s each) and they fall behind by 0.1 s per chunk."""
    r = serve.serve(hand_workload(), 2, BatchPolicy(max_batch=2, max_wait_s=0.0))
    g = GOLDEN
    assert serve.offsets(2, 1.0) == pytest.approx([0.0, g])
    # s0 c0 at 1.0 -> 1.55; s1 c0 at 1+g -> 1+g+0.55; s0 c1 (2.0) waits for it -> 1+g+1.1;
    # s1 c1 (2+g) waits -> 1+g+1.65; s0 c2 (3.0) -> 1+g+2.2; s1 c2 (3+g) -> 1+g+2.75
    np.testing.assert_allclose(r.delay_s[0], [0.55, 1 + g + 1.1 - 2.0, 1 + g + 2.2 - 3.0])
    np.testing.assert_allclose(r.delay_s[1], [0.55, 1.65 - 1.0, 2.75 - 2.0])
    assert r.summary["batches"] == 6 and r.summary["mean_batch"] == pytest.approx(1.0)


def test_two_streams_by_hand_batched():
    """Waiting up to 0.7 s, the chip holds stream 0's chunk until stream 1's arrives and runs
    both in one batch of 0.7 s: stream 0 waits g, stream 1 not at all, every chunk alike."""
    r = serve.serve(hand_workload(), 2, BatchPolicy(max_batch=2, max_wait_s=0.7))
    g = GOLDEN
    np.testing.assert_allclose(r.delay_s[0], [g + 0.7] * 3)
    np.testing.assert_allclose(r.delay_s[1], [0.7] * 3)
    assert r.summary["batches"] == 3 and r.summary["mean_batch"] == pytest.approx(2.0)
    assert r.summary["p95_s"] == pytest.approx(g + 0.7)


def dram_bound_tiny():
    """The tiny spec with every weight read from DRAM at each use (residency none), a DRAM of
    1 kB/s, no DRAM latency, no dispatch: any chunk's time is its weight bytes / 1 kB/s."""
    return load_spec(TINY_HW).replace_paths({"mapping.residency": "none", "dram_bw_bytes_per_s": 1e3,
                                             "dram_latency_s": 0.0, "core.dispatch_overhead_cycles": 0})


def test_a_batch_reads_each_weight_once_by_hand():
    cfg = tiny_stream()        # H 16, input 16 x stack 2, concat reduction by 2 after layer 0, joint 16
    w = serve.workload(cfg, dram_bound_tiny(), "fp16", 0.4, 3, "dr", max_batch=2)
    # a chunk of 4 frames: layer 0 gets 2 stacked frames, layer 1 and enc_proj 1 frame each;
    # fp16 weights, 2 B each: W_ih0 (32 x 64) + 2 W_hh0 (16 x 64) + W_ih1 (32 x 64) + W_hh1 + enc_proj (16 x 16)
    H, G, J = 16, 64, 16
    weight_bytes = 2 * (32 * G + 2 * H * G + 32 * G + H * G + H * J)
    assert weight_bytes == 14848
    assert w.encoder_s[1] == pytest.approx(weight_bytes / 1e3, rel=1e-4)
    assert w.encoder_s[2] == pytest.approx(w.encoder_s[1], rel=1e-4)     # two streams: the same bytes
    assert w.step_s[2] == pytest.approx(w.step_s[1], rel=1e-3)
    # with compute that costs time (the tiny spec as it is), a batch of two costs less than two of one
    w2 = serve.workload(cfg, TINY_HW, "fp16", 0.4, 3, "dr", max_batch=2)
    assert w2.encoder_s[1] < w2.encoder_s[2] < 2 * w2.encoder_s[1]


@pytest.fixture(scope="module")
def works():
    return {(hw, p): serve.workload("swb300-stream", hw, p, 6.0, 8, "dr", max_batch=8)
            for hw, p in [("edge", "int4"), ("edge", "int8"), ("rapid4", "fp16")]}


@pytest.mark.parametrize("hw,precision", [("edge", "int4"), ("edge", "fp16")])
def test_one_stream_agrees_with_the_op_level_stream(hw, precision):
    """The batch model of one stream against the op-level streaming simulation of the same
    audio: the chip serves one chunk at a time either way (measured: within 1%)."""
    w = serve.workload("swb300-stream", hw, precision, 6.0, 8, "dr", max_batch=1)
    one = serve.serve(w, 1, BatchPolicy(max_batch=1))
    op = simulate_streaming("swb300-stream", hw, precision, 6.0, 8, "dr").summary["streaming"]
    assert one.summary["p95_s"] == pytest.approx(op["delay_s"]["p95"], rel=0.05)
    assert one.summary["streams"] == 1 and one.summary["keeps_up"] == op["keeps_up"]


@pytest.mark.parametrize("hw,precision", [("edge", "int4"), ("edge", "int8"), ("rapid4", "int4"),
                                          ("rapid4", "fp16")])
def test_without_batching_the_model_agrees_with_op_level_streams(hw, precision):
    """S streams interleaved in one op graph (each its own ops, chunks in arrival order) on the
    op-level simulator against the batch model with batches of one: each stream's p95 delay
    within 5%, also when the chip falls behind (edge, 8 streams: delays of seconds)."""
    from hwsim.simulate import simulate
    from models.config import load_config
    from workloads.streaming import interleave, paper_streaming_graph

    cfg = load_config("swb300-stream")
    g = paper_streaming_graph(cfg, 3.0, 8, "dr")
    w = serve.workload(cfg, hw, precision, 3.0, 8, "dr", max_batch=1)
    for s in (1, 3, 8):
        many = interleave(g, serve.offsets(s, w.chunk_s))
        r = simulate(many, hw, precision, 3.0, config=cfg)
        chunks = r.chunks.assign(stream=many.meta["streaming"]["stream"])
        op = chunks.groupby("stream")["delay_s"].quantile(0.95).to_numpy()
        model = serve.serve(w, s, BatchPolicy(max_batch=1)).streams["delay_p95_s"].to_numpy()
        np.testing.assert_allclose(model, op, rtol=0.05)


def test_interleaved_streams_keep_each_streams_ops():
    from models.config import load_config
    from workloads.streaming import interleave, paper_streaming_graph

    g = paper_streaming_graph(load_config("swb300-stream"), 1.0, 4, "dr")
    many = interleave(g, [0.0, 0.015, 0.03])
    st = many.meta["streaming"]
    assert len(many) == 3 * len(g) and len(st["first_op"]) == 3 * len(g.meta["streaming"]["first_op"])
    assert st["stream"][:3] == [0, 1, 2] and (np.diff(st["arrival_s"]) >= 0).all()
    # stream 1's ops, in order, are a copy of the graph: same codes, producers mapped
    first = np.append(st["first_op"], len(many))
    ops = np.concatenate([np.arange(first[k], first[k + 1]) for k, s in enumerate(st["stream"]) if s == 1])
    np.testing.assert_array_equal(many.code[ops], g.code)
    remap = np.full(len(many), -1)
    remap[ops] = np.arange(len(g))
    ptr, deps = many.edge_arrays()
    gptr, gdeps = g.edge_arrays()
    for i in (0, 5, len(g) // 2, len(g) - 1):
        np.testing.assert_array_equal(np.sort(remap[deps[ptr[ops[i]]:ptr[ops[i] + 1]]]), gdeps[gptr[i]:gptr[i + 1]])


def test_more_streams_never_lower_a_streams_p95_without_batching(works):
    """One chunk per batch, oldest first: a FIFO queue, where added work delays everyone."""
    for w in works.values():
        prev = None
        for s in range(1, 25):
            p = serve.serve(w, s, BatchPolicy(max_batch=1)).streams["delay_p95_s"].to_numpy()
            if prev is not None:
                assert (p[:-1] >= prev - 1e-12).all()
            prev = p


def test_with_batching_no_stream_beats_its_time_alone(works):
    """Batching can reorder who waits (a stream's p95 may fall when another joins: batch
    service is sub-additive), but never below a stream that has the chip to itself."""
    for w in works.values():
        alone = serve.serve(w, 1, BatchPolicy(max_batch=8)).summary["p95_s"]
        for s in (2, 5, 8, 13, 21):
            p = serve.serve(w, s, BatchPolicy(max_batch=8)).streams["delay_p95_s"].to_numpy()
            assert (p >= alone - 1e-12).all()


def test_doubling_every_bandwidth_never_raises_a_delay():
    for name in ("edge", "rapid4"):
        hw = load_spec(name)
        fast = hw.replace_paths({"dram_bw_bytes_per_s": 2 * hw.dram_bw_bytes_per_s,
                                 "core.scratchpad_bw_bytes_per_s": 2 * hw.core.scratchpad_bw_bytes_per_s,
                                 "inter_core_bw_bytes_per_s": 2 * hw.inter_core_bw_bytes_per_s,
                                 "shared_bw_bytes_per_s": 2 * hw.shared_bw_bytes_per_s})
        for p in ("int4", "fp16"):
            a = serve.workload("swb300-stream", hw, p, 4.0, 8, "dr", max_batch=8)
            b = serve.workload("swb300-stream", fast, p, 4.0, 8, "dr", max_batch=8)
            assert (b.encoder_s <= a.encoder_s + 1e-15).all() and (b.step_s <= a.step_s + 1e-15).all()
            for s in (1, 3, 8, 16):
                pa = serve.serve(a, s, BatchPolicy(max_batch=1)).streams["delay_p95_s"].to_numpy()
                pb = serve.serve(b, s, BatchPolicy(max_batch=1)).streams["delay_p95_s"].to_numpy()
                assert (pb <= pa + 1e-12).all()


def test_max_streams_is_the_largest_meeting_the_target(works):
    w = works[("edge", "int8")]
    for policy in (BatchPolicy(max_batch=1), BatchPolicy(max_batch=8)):
        target = 0.035
        best, tried = max_streams(w, target, policy, limit=40)
        assert 1 <= best < 40 and meets(tried[best], target)
        assert not meets(serve.serve(w, best + 1, policy), target)
        if policy.max_batch == 1:      # monotone: the bisection finds the linear scan's answer
            scan = [s for s in range(1, 41) if meets(serve.serve(w, s, policy), target)]
            assert best == max(scan) and scan == list(range(1, best + 1))
    best, _ = max_streams(w, 1e-6, limit=8)
    assert best == 0


def test_cli_serve(tmp_path, capsys):
    out = tmp_path / "srv"
    assert main(["serve", "--model", "swb300-stream", "--hw", "edge", "--precision", "int4", "--beam", "4",
                 "--lm-fusion", "dr", "--audio-s", "4", "--max-streams", "--p95-ms", "30", "--limit", "16",
                 "--max-batch", "4", "--json", "--out", str(out)]) == 0
    rec = json.loads(capsys.readouterr().out)
    assert {"max_streams", "p95_s", "keeps_up", "tried", "streams", "busy", "mean_batch"} <= set(rec)
    assert rec["p95_s"] <= 0.030 and rec["streams"] == rec["max_streams"]
    assert (out / "summary.json").is_file() and (out / "streams.csv").read_text().startswith("stream,offset_s")
    assert main(["serve", "--model", "swb300-stream", "--hw", "edge", "--precision", "int4", "--audio-s", "2",
                 "--streams", "3"]) == 0
    assert "3: p95 delay worst" in capsys.readouterr().out
    assert main(["serve", "--model", "swb300-stream", "--hw", "edge", "--precision", "int4", "--max-streams"]) == 2
    assert "--max-streams needs --p95-ms" in capsys.readouterr().err
    assert main(["serve", "--model", "swb300", "--hw", "edge", "--precision", "int4", "--streams", "2"]) == 2
    assert "bidirectional" in capsys.readouterr().err
    assert main(["serve", "--model", "swb300-stream", "--hw", "edge", "--precision", "int4", "--streams", "2",
                 "--chunk-ms", "60"]) == 2
    assert "whole encoder output frames" in capsys.readouterr().err
