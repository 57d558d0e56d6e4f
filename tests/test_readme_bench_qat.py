"""The README's QAT-overhead rows are the figures of ``benchmarks/results/qat.json`` (both ratios,
each named for its FP32 baseline)."""

from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _row(text: str, key: str) -> str:
    rows = [line for line in text.splitlines() if line.startswith("| QAT step /") and key in line]
    assert len(rows) == 1, rows
    return rows[0]


def test_qat_rows_match_the_benchmark_results():
    res = json.loads((ROOT / "benchmarks" / "results" / "qat.json").read_text())
    readme = (ROOT / "README.md").read_text()
    assert res["loss"] == "rnnt" and res["model"] == "small"
    for key, base in (("cell-level LSTM path", "cell"), ("fused FP32 step", "fused")):
        ratios = res[f"round_ratios_{base}"]
        figure = (f"{res[f'qat_over_fp32_{base}_x']:.2f}x wall, {res[f'qat_over_fp32_{base}_cpu_x']:.2f}x CPU "
                  f"(rounds {min(ratios):.2f}-{max(ratios):.2f})")
        assert figure in _row(readme, key), figure
