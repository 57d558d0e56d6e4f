"""Sweeps of serving capacity: ``serve.*`` point settings, checked when loaded, evaluated by
hwsim.serve (the column equals a direct max_streams)."""

import pytest

from hwsim import serve
from hwsim.dse import loads_sweep
from hwsim.dse.evaluate import evaluate_point
from models.yamlio import ConfigError

BASE = ("base: {model: swb300-stream, hw: edge, audio_s: 2, precision: int4, beam: 4, lm_fusion: dr, "
        "serve.p95_ms: 40, serve.limit: 16, serve.max_batch: 4}\n")


def test_serving_points_carry_their_settings_and_get_capacity_columns():
    s = loads_sweep(BASE + "vary: {serve.p95_ms: [20, 40]}\n", source="s.yaml")
    assert s.params[-3:] == ["serve.p95_ms", "serve.limit", "serve.max_batch"]
    points = [p.point for p in s.plan().points]
    assert [p["serve.p95_ms"] for p in points] == [20.0, 40.0]
    for p in points:
        fig = evaluate_point(p)
        work = serve.workload("swb300-stream", "edge", "int4", 2.0, 4, "dr", max_batch=4)
        best, tried = serve.max_streams(work, p["serve.p95_ms"] / 1000, serve.BatchPolicy(max_batch=4), limit=16)
        assert fig["max_streams"] == best
        assert fig["serve_p95_1_s"] == pytest.approx(tried[1].summary["p95_s"])
        assert fig["serve_at_limit"] == (best == 16)
        assert "rtf" in fig and "latency_s" in fig          # the offline figures are still there


@pytest.mark.parametrize("text,match", [
    ("base: {model: swb300-stream, hw: edge, audio_s: 2, precision: int4, beam: 4, serve.limit: 8}\n",
     "serve.p95_ms: required"),
    ("base: {model: swb300, hw: edge, audio_s: 2, precision: int4, beam: 4, serve.p95_ms: 40}\n",
     "unidirectional"),
    ("base: {model: swb300-stream, hw: edge, audio_s: 2, precision: int4, beam: 4, serve.p95: 40}\n",
     "unknown serving setting 'p95'"),
    ("base: {model: swb300-stream, hw: edge, audio_s: 2, precision: int4, beam: 4, serve.p95_ms: 40}\n"
     "vary: {serve.limit: [4, 2.5]}\n", r"vary.serve.limit\[1\]: expected an integer"),
    ("base: {model: swb300-stream, hw: edge, audio_s: 2, precision: int4, beam: 4, serve.p95_ms: 0}\n",
     "base.serve.p95_ms: expected a number > 0"),
])
def test_bad_serving_settings_are_named(text, match):
    with pytest.raises(ConfigError, match=match):
        loads_sweep(text, source="s.yaml")
