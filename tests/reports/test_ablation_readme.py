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
