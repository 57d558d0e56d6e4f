"""Fake evaluators for testing the sweep machinery without the simulator.

They are module-level and picklable, so local worker processes and Dask workers can import them.
Their figures are deterministic functions of the point, so runs can be compared exactly.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

HERE = Path(__file__).parent
SWEEPS = HERE.parents[2] / "workloads" / "sweeps"

FAKE_SWEEP = """
description: fake-evaluator sweep (48 points)
base: {model: tiny, hw: rapid4, audio_s: 2, precision: int4, beam: 4, lm_fusion: dr}
vary:
  precision: [fp16, int8, int4]
  beam: [1, 4]
  hw.core.matrix.rows: {range: [16, 80, 16]}
  hw.dram_bw_bytes_per_s: [25.6e9, 51.2e9]
"""

BITS = {"fp16": 16, "int8": 8, "int4": 4}


def fake_evaluate(point: dict) -> dict:
    rows = point.get("hw.core.matrix.rows", 32)
    bw = point.get("hw.dram_bw_bytes_per_s", 51.2e9)
    bits = BITS[point["precision"]]
    compute_s = point["beam"] * bits * 1e-3 * 32 / rows
    memory_s = 2e9 / bw * bits / 16
    latency = point["audio_s"] * (compute_s + memory_s) / 10
    return {"latency_s": latency, "rtf": latency / point["audio_s"], "macs": 1000 * point["beam"],
            "phase_encoder_s": latency / 2, "phase_search_s": latency / 2,
            "onchip_bytes": rows * 65536, "compression_x": 32 / bits}


class SlowEvaluate:
    """``fake_evaluate`` plus a sleep per point (to be interrupted mid-sweep)."""

    def __init__(self, delay_s: float) -> None:
        self.delay_s = delay_s

    def __call__(self, point: dict) -> dict:
        time.sleep(self.delay_s)
        return fake_evaluate(point)


class FailingEvaluate:
    """Raises for points with ``beam == fail_beam``; ``fake_evaluate`` otherwise."""

    def __init__(self, fail_beam: int) -> None:
        self.fail_beam = fail_beam

    def __call__(self, point: dict) -> dict:
        if point["beam"] == self.fail_beam:
            raise ValueError(f"beam {point['beam']} is not supported by this fake")
        return fake_evaluate(point)


class DyingEvaluate:
    """Kills its worker process (os._exit) on points with ``beam == die_beam`` while the file
    ``flag`` exists: a killed worker, which must not lose finished points."""

    def __init__(self, die_beam: int, flag: str) -> None:
        self.die_beam, self.flag = die_beam, flag

    def __call__(self, point: dict) -> dict:
        if point["beam"] == self.die_beam and os.path.exists(self.flag):
            os._exit(17)
        return fake_evaluate(point)
