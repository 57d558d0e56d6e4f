"""The README's validation figures are the committed ``benchmarks/results/validate.json``."""

from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_readme_validation_figures_are_the_committed_run():
    res = json.loads((ROOT / "benchmarks" / "results" / "validate.json").read_text())
    text = (ROOT / "README.md").read_text().replace("\n", " ")
    g = res["summary"]["by_kind"]["gemm"]
    assert f"| all GEMMs | {g['n']} | {100 * g['median_abs_err']:.1f}% | {100 * g['p90_abs_err']:.1f}% |" in text
    for key, label in (("gemm.aten.fp32", "torch fp32 `F.linear`"), ("gemm.aten.bf16", "torch bf16 `F.linear`"),
                       ("gemm.aten.int8", "torch int8 `torch._int_mm`"), ("gemm.numba.int8", "Numba `gemm_int8`"),
                       ("gemm.numba.int4", "Numba `gemm_int4`")):
        v = res["summary"]["by_precision"][key]
        assert f"| {label} | {v['n']} | {100 * v['median_abs_err']:.1f}% | {100 * v['p90_abs_err']:.1f}% |" in text
    dec = [c for c in res["cases"] if c["kind"] == "decode"]
    ratios = " / ".join(f"{c['ratio']:.2f}" for c in dec)
    assert f"ratios {ratios}" in text
    medians = " / ".join(f"{c['predicted_s'] / c['measured_median_s']:.2f}" for c in dec)
    sm = res["summary_median"]["by_kind"]["gemm"]
    assert (f"Against the rounds' medians instead (same run): GEMMs {100 * sm['median_abs_err']:.1f}% / "
            f"{100 * sm['p90_abs_err']:.1f}%, decodes {medians}") in text
    assert res["stat"] == "min" and "the **minimum** of 9 samples" in text and res["repeats"] == 9
