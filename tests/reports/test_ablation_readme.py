"""The README's per-role ablation table is computed from the committed ``reports/accuracy/ablation.json``
(``reports.ablation.relative_change``), and the cost sentence from its simulated costs."""

from __future__ import annotations

import json
import re
from pathlib import Path

from reports import ablation

ROOT = Path(__file__).resolve().parents[2]


def test_readme_ablation_table_and_costs_are_the_committed_results():
    ev = json.loads((ROOT / "reports" / "accuracy" / "ablation.json").read_text())
    readme = (ROOT / "README.md").read_text()
    rows = dict((m[1], (m[2], m[3])) for m in re.finditer(r"^\| ([a-z0-9-]+) \| ([+-][\d.]+)% \| ([+-][\d.]+)% \|$",
                                                            readme, re.M))
    variants = [s for s in ablation.systems_of(ev) if s.startswith("ablation:")]
    assert {ablation.label(s) for s in variants} == set(rows)
    for s in variants:
        want = tuple(f"{ablation.relative_change(ev, s, lm)[0]:+.1f}" for lm in ("none", "dr"))
        assert rows[ablation.label(s)] == want, s
    costs = ev["simulated"]["costs"]
    base = costs["int4"]["dr"]["latency_s"]
    variant_lat = [costs[ablation.policy_of(ev, s)]["dr"]["latency_s"] for s in variants]
    assert max(abs(v / base - 1) for v in variant_lat) < 0.03                  # "within 3%"
    lo, hi = (f"{1e3 * v:.2f}" for v in (min(variant_lat + [base]), max(variant_lat + [base])))
    assert f"({lo}-{hi} ms with DR fusion)" in readme.replace("\n", " ")
    assert f"from {costs['int4']['dr']['compression_x']:.2f}x to {costs['int4-weights-minmax']['dr']['compression_x']:.2f}x" \
        in readme.replace("\n", " ")


def test_qat_cost_lines_are_the_manifest_times():
    manifest = {"checkpoints": {
        "fp32": {"rnnt": {"train_wall_s": 6000.0, "steps": 4000}, "lm_ext": {"train_wall_s": 900.0, "steps": 2000},
                 "lm_src": {"train_wall_s": 300.0, "steps": 3000}},
        "int4-qat": {"train_wall_s": 600.0, "steps": 150, "lms": {"train_wall_s": 600.0, "steps": 300}}}}
    rnnt, lms = ablation.qat_cost_lines(manifest)
    assert "150 steps in 10.0 min = 10.0% of the FP32 RNN-T training (4000 steps, 100 min)" in rnnt
    assert "300 steps in 10.0 min = 50% of their FP32 training (5000 steps, 20 min)" in lms
    # a run too short to time (0 s) gives no line rather than a division by zero
    manifest["checkpoints"]["fp32"]["rnnt"]["train_wall_s"] = 0.0
    assert ablation.qat_cost_lines(manifest) == []


def test_fallback_sentence_is_computed_from_the_simulated_costs():
    costs = {"int4": {"dr": {"fallbacks": ["vector:int4->fp16"]}}, "fp32": {"dr": {"fallbacks": []}}}
    assert ablation.fallback_text(costs) == "`int4`: vector:int4->fp16"
    assert ablation.fallback_text({"fp32": {"dr": {"fallbacks": []}}}) == "none did"
    ev = json.loads((ROOT / "reports" / "accuracy" / "ablation.json").read_text())
    md = (ROOT / "reports" / "accuracy" / "ablation.md").read_text()
    assert ablation.fallback_text(ev["simulated"]["costs"]) in md
