"""Streaming simulation (hwsim.streaming): release at arrival, the one-chunk offline limit, delays,
keeping up, the CLI."""

import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from hwsim.cli import main
from hwsim.simulate import simulate
from hwsim.spec import load_spec
from hwsim.streaming import KEEP_UP_DRIFT, chunk_table, drift, simulate_streaming
from models.config import load_config
from workloads.rnnt import paper_graph
from workloads.stats import input_frames, parametric_stats
from workloads.streaming import streaming_graph

sys.path.insert(0, str(Path(__file__).parents[1] / "workloads"))
from test_streaming_graph import tiny_stream, tiny_stream_yaml  # noqa: E402

SWB = load_config("swb300-stream")


@pytest.mark.parametrize("hw,precision", [("rapid4", "int4"), ("edge", "fp16"), ("rapid4", "fp16")])
def test_one_chunk_reproduces_the_offline_latency(hw, precision):
    audio = 1.0
    off = simulate(paper_graph(SWB, audio, 8, "dr"), hw, precision, audio, config=SWB)
    st = simulate_streaming(SWB, hw, precision, audio, 8, "dr", chunk_ms=audio * 1000)
    assert st.summary["streaming"]["chunks"] == 1
    assert st.chunks["delay_s"].iloc[0] == pytest.approx(off.latency_s, rel=1e-12)
    assert st.summary["streaming"]["final_latency_s"] == pytest.approx(off.latency_s, rel=1e-12)
    assert st.chunks["start_s"].iloc[0] == pytest.approx(audio)
    assert st.summary["macs"] == off.summary["macs"]


@pytest.mark.parametrize("hw,precision,chunk_ms", [("edge", "fp16", None), ("edge", "int4", 200.0),
                                                    ("rapid4", "int8", None), ("rapid4", "fp16", 80.0)])
def test_delays_never_negative_and_no_op_before_its_audio(hw, precision, chunk_ms):
    r = simulate_streaming(SWB, hw, precision, 3.0, 8, "dr", chunk_ms=chunk_ms)
    c = r.chunks
    assert (c["queue_s"] >= 0).all() and (c["delay_s"] > 0).all()
    assert (c["finish_s"] >= c["start_s"]).all()
    ops = r.ops
    first = np.asarray(r.graph_meta["streaming"]["first_op"])
    arrival = np.asarray(r.graph_meta["streaming"]["arrival_s"])
    release = arrival[np.searchsorted(first, ops.index.to_numpy(), side="right") - 1]
    assert (ops["start_s"].to_numpy() >= release - 1e-15).all()
    # the per-chunk table is the per-op schedule grouped by chunk
    again = chunk_table(ops["start_s"].to_numpy(), ops["end_s"].to_numpy(), first, arrival)
    np.testing.assert_allclose(again["delay_s"], c["delay_s"])
    # phases and the wait for audio share the makespan
    s = r.summary
    assert sum(s["phases"].values()) + s["streaming"]["waiting_s"] == pytest.approx(s["latency_s"], rel=1e-9)
    assert s["streaming"]["final_latency_s"] == pytest.approx(s["latency_s"] - 3.0, rel=1e-9)


def test_weights_preloaded_and_planned_for_the_stream():
    r = simulate_streaming(SWB, "rapid4", "int4", 2.0, 8, "dr")
    assert r.summary["segments"] == 1
    assert r.summary["dram_bytes_by_source"]["weight_load"] == 0.0   # on chip before the audio
    mem = r.memory
    assert set(mem["segment_label"]) == {"stream"}
    w = mem[mem["kind"] == "weight"]
    onchip = w["local_bytes"] + w["shared_bytes"] + w["remote_bytes"]
    np.testing.assert_allclose(w["carried_bytes"], onchip)
    assert onchip.sum() > 0 and (w["loaded_bytes"] == 0).all()
    # what stays on chip is what a steady stream uses most: every weight used more often per
    # chunk than one left off chip is on chip as far as capacity allows
    assert w.loc[onchip == 0, "uses"].max() <= w.loc[onchip > 0, "uses"].min()


def test_falling_behind_is_detected_and_measured():
    hw = load_spec("edge")
    slow = hw.replace_paths({"frequency_hz": hw.frequency_hz / 6})
    ok = simulate_streaming(SWB, hw, "int4", 4.0, 8, "dr").summary["streaming"]
    bad = simulate_streaming(SWB, slow, "int4", 4.0, 8, "dr")
    st = bad.summary["streaming"]
    assert ok["keeps_up"] and abs(ok["drift_s_per_s"]) <= KEEP_UP_DRIFT
    assert not st["keeps_up"]
    # Behind, each chunk finishes one steady chunk-time after the one before: the delay grows by
    # (chunk time / chunk length - 1) per second of audio (chunks alternate one and two search
    # steps: the mean)
    c = bad.chunks
    half = c.iloc[len(c) // 2:]
    per_chunk = float(np.mean(np.diff(half["finish_s"].to_numpy())))
    assert st["drift_s_per_s"] == pytest.approx(per_chunk / st["chunk_s"] - 1, rel=0.05)
    assert st["final_latency_s"] > 1.0


def test_drift_of_a_line():
    a = np.arange(1, 41) * 0.04
    assert drift(a, 0.01 + 0.5 * a) == pytest.approx(0.5)
    assert drift(a, np.full(40, 0.02)) == pytest.approx(0.0)
    assert drift(a[:5], a[:5]) is None


def test_streamed_trace_uses_its_own_statistics(tmp_path):
    """hwsim trace of a unidirectional model, then simulate --graph --streaming: the stream replays
    the traced decode's steps (same MACs as the traced graph)."""
    model = tiny_stream_yaml(tmp_path)
    g = tmp_path / "g.parquet"
    assert main(["trace", "--model", str(model), "--beam", "3", "--lm-fusion", "dr", "--frames", "48",
                 "--out", str(g)]) == 0
    from workloads.graph import OpGraph

    traced = OpGraph.load(g)
    offline = simulate(traced, "rapid4", "fp16", 0.48, config=tiny_stream())
    assert main(["simulate", "--graph", str(g), "--model", str(model), "--hw", "rapid4", "--precision", "fp16",
                 "--streaming", "--out", str(tmp_path / "run")]) == 0
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["macs"] == offline.summary["macs"]
    assert summary["streaming"]["chunks"] == 12
    chunks = (tmp_path / "run" / "chunks.csv").read_text().splitlines()
    assert chunks[0].split(",") == ["chunk", "arrival_s", "start_s", "finish_s", "queue_s", "delay_s", "ops"]
    assert len(chunks) == 13


def test_cli_streaming_json_and_errors(capsys):
    assert main(["simulate", "--model", "swb300-stream", "--hw", "rapid4", "--precision", "int4", "--beam", "4",
                 "--audio-s", "1", "--streaming", "--chunk-ms", "80", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["streaming"]["chunks"] == 13 and out["streaming"]["chunk_s"] == pytest.approx(0.08)
    assert set(out["streaming"]["delay_s"]) == {"mean", "p50", "p95", "max"}
    assert main(["simulate", "--model", "swb300", "--hw", "rapid4", "--precision", "int4", "--streaming"]) == 2
    assert "bidirectional" in capsys.readouterr().err
    assert main(["simulate", "--model", "swb300-stream", "--hw", "rapid4", "--precision", "int4",
                 "--chunk-ms", "40"]) == 2
    assert "--chunk-ms needs --streaming" in capsys.readouterr().err
    assert main(["simulate", "--model", "swb300-stream", "--hw", "rapid4", "--precision", "int4", "--streaming",
                 "--chunk-ms", "25"]) == 2
    assert "multiple of the 10 ms" in capsys.readouterr().err


def test_tiny_stream_steps_wait_for_frames():
    """A tiny stream on the hand-checkable spec: every chunk's search starts after its audio."""
    cfg = tiny_stream()
    stats = parametric_stats(cfg, 0.4, 3, "none")
    g = streaming_graph(cfg, stats, input_frames(cfg, 0.4), 8)
    hw = load_spec(Path(__file__).parent / "data" / "tiny_hw.yaml")
    r = simulate(g, hw, "fp16", 0.4, config=cfg)
    ops = r.ops
    search = ops[ops["phase"] != "encoder"]
    first = np.asarray(g.meta["streaming"]["first_op"])
    arrival = np.asarray(g.meta["streaming"]["arrival_s"])
    chunk = np.searchsorted(first, search.index.to_numpy(), side="right") - 1
    assert (search["start_s"].to_numpy() >= arrival[chunk]).all()
    assert replace(cfg).encoder.bidirectional is False
