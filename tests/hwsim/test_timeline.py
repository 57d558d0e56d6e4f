"""The Chrome trace and the Gantt chart of a run (hwsim.timeline)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hwsim import simulate
from hwsim.timeline import chrome_trace, gantt
from models.config import load_config
from hwsim_testgraphs import lstm_decode_graph


@pytest.fixture(scope="module")
def result():
    cfg = load_config("small")
    return simulate(lstm_decode_graph(cfg, frames=6, steps=4, beam=4), "rapid4", "int4", 0.5, config=cfg)


def test_chrome_trace_has_one_complete_event_per_op_and_core(result):
    trace = json.loads(json.dumps(chrome_trace(result)))    # serializable as is
    events = trace["traceEvents"]
    ops = result.ops
    complete = [e for e in events if e["ph"] == "X"]
    assert len(complete) == int(ops["cores"].sum())
    by_id = {}
    for e in complete:
        by_id.setdefault(e["args"]["id"], []).append(e)
    for i in (0, len(ops) // 2, len(ops) - 1):
        row = ops.iloc[i]
        evs = by_id[i]
        assert sorted(e["pid"] for e in evs) == list(range(row["core"], row["core"] + row["cores"]))
        assert evs[0]["ts"] == pytest.approx(row["start_s"] * 1e6)
        assert evs[0]["dur"] == pytest.approx((row["end_s"] - row["start_s"]) * 1e6)
        assert evs[0]["cat"] == row["phase"] and evs[0]["args"]["module"] == row["module"]
    names = {(e["pid"], e["args"]["name"]) for e in events if e["ph"] == "M" and e["name"] == "process_name"}
    assert (result.hw.cores, "DRAM channel") in names


def test_dram_counter_is_the_channel_busy_time(result):
    counters = [e for e in chrome_trace(result)["traceEvents"] if e["ph"] == "C"]
    busy = result.dram_busy_s
    assert len(counters) == 2 * len(busy)
    # the channel's busy time is exactly the DRAM bytes at the full bandwidth
    assert (busy[:, 1] - busy[:, 0]).sum() == pytest.approx(
        result.summary["dram_bytes"] / result.hw.dram_bw_bytes_per_s, rel=1e-9)
    assert (np.diff(busy[:, 0]) > 0).all() and (busy[1:, 0] > busy[:-1, 1]).all()


def test_gantt_draws_the_ops_of_its_window(result, tmp_path):
    ops = result.ops
    t0, t1 = 0.25 * result.latency_s, 0.5 * result.latency_s
    n = gantt(result, tmp_path / "g.png", (t0, t1))
    assert n == int(((ops["end_s"] > t0) & (ops["start_s"] < t1)).sum()) > 0
    assert (tmp_path / "g.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="end > start"):
        gantt(result, tmp_path / "h.png", (t1, t0))
