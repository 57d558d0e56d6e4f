"""The README's scale rows are the figures of ``benchmarks/results/{long,graph,dse}.json``."""

from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _row(start: str) -> str:
    rows = [line for line in (ROOT / "README.md").read_text().splitlines() if line.startswith(start)]
    assert len(rows) == 1, rows
    return rows[0]


def _result(name: str) -> dict:
    return json.loads((ROOT / "benchmarks" / "results" / f"{name}.json").read_text())


def test_long_audio_row():
    res = _result("long")
    runs = {r["audio_s"]: r for r in res["runs"]}
    row = _row("| `hwsim simulate ... --json`")
    cpu = " / ".join(f"{runs[a]['cpu_s']:.2f}" for a in (10.0, 300.0, 3600.0))
    rss = " / ".join(f"{runs[a]['peak_rss_mib']:.0f}" for a in (10.0, 300.0, 3600.0))
    assert f"{cpu} s CPU, peak RSS {rss} MiB" in row
    assert f"({runs[3600.0]['ops']:,} ops for the hour)" in row
    assert f"= {res['rtf_ratio_to_each']['300.0']:.4f}" in row


def test_graph_row():
    res = _result("graph")
    row = _row("| op graph, `swb300` 300 s")
    assert f"({res['ops']:,} ops, {res['templates']} distinct records)" in row
    assert (f"{res['build_s']:.2f} s; {res['save_ops_per_s'] / 1e6:.1f}M / {res['load_ops_per_s'] / 1e6:.1f}M "
            f"ops/s; {res['memory_bytes_per_op']:.1f} bytes/op in memory") in row


def test_sweep_row():
    res = _result("dse")
    row = _row("| design points, `swb300`")
    assert f"{res['points']:,} hardware variants of one graph, {res['workers']} workers" in row
    runs = [r / 3600 for r in res["runs_end_to_end_points_per_hour"]]
    assert (f"{res['end_to_end_points_per_s']:.0f} points/s end to end (runs {min(runs):.0f}-{max(runs):.0f}), "
            f"{res['steady_points_per_s']:.0f} steady ({res['worker_point_s'] * 1e3:.1f} ms per point)") in row
