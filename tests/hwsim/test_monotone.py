"""Latency never grows when a resource grows, over fine grids of scratchpad size, DRAM bandwidth,
clock and core count, on the paper-scale graph (5 s, beam 8, DR fusion) at FP16 and INT4.

The list schedule is greedy, so exact monotonicity is not guaranteed (Graham's anomalies); the
tolerance below is what we promise. Measured when written (this grid and a finer one, 10 s beam
16, in tests/hwsim/test_paper_point.py's setting): at most +0.16% between neighbouring points."""

from __future__ import annotations

import numpy as np
import pytest

import workloads
from hwsim import load_spec, simulate
from models.config import load_config

TOLERANCE = 0.005   # relative increase allowed between neighbouring grid points

GRIDS = {
    "core.scratchpad_bytes": [int(2 ** x) for x in np.arange(16, 27, 0.5)],   # 64 KiB .. 64 MiB
    "dram_bw_bytes_per_s": list(np.geomspace(6.4e9, 1.6e12, 12)),
    "frequency_hz": list(np.geomspace(2e8, 6.4e9, 10)),
    "cores": [1, 2, 3, 4, 6, 8, 16],
}


@pytest.fixture(scope="module")
def setup():
    cfg = load_config("swb300")
    return cfg, workloads.paper_graph(cfg, 5.0, 8, "dr"), load_spec("rapid4")


@pytest.mark.parametrize("precision", ["fp16", "int4"])
@pytest.mark.parametrize("path", list(GRIDS))
def test_more_resource_never_slower(setup, precision, path):
    cfg, graph, base = setup
    lat = np.array([simulate(graph, base.replace_path(path, v), precision, 5.0, config=cfg).summary["latency_s"]
                    for v in GRIDS[path]])
    worst = float(np.max(lat[1:] / lat[:-1]) - 1.0)
    assert worst <= TOLERANCE, (path, precision, worst, lat)
    assert lat[-1] < lat[0]     # the knob matters at all
