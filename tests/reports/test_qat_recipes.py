"""The README's QAT-recipe sentence is ``reports/accuracy/qat_recipes.json``, whose committed-QAT and
PTQ dev WERs are those of ``reports/accuracy/ablation.json``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reports import ablation

ROOT = Path(__file__).resolve().parents[2]


def test_qat_recipe_figures_are_the_recorded_ones():
    rec = json.loads((ROOT / "reports" / "accuracy" / "qat_recipes.json").read_text())
    ev = json.loads((ROOT / "reports" / "accuracy" / "ablation.json").read_text())
    for key, system in (("committed", "int4-qat"), ("int4_ptq", "int4-ptq")):
        for lm in ("none", "dr"):
            assert rec[key][f"dev_wer_{lm}"] == pytest.approx(ablation.pooled(ev, system, lm)["wer"], abs=0.005)
    mean = lambda r: (r["dev_wer_none"] + r["dev_wer_dr"]) / 2  # noqa: E731
    committed = (rec["committed"]["dev_wer_none"] + rec["committed"]["dev_wer_dr"]) / 2
    ptq = (rec["int4_ptq"]["dev_wer_none"] + rec["int4_ptq"]["dev_wer_dr"]) / 2
    text = (ROOT / "README.md").read_text().replace("\n", " ")
    assert f"did no better than the committed QAT's {committed:.2f}% (INT4 PTQ: {ptq:.2f}%)" in text
    for tried in rec["tried"]:
        sel = tried["selection"]
        assert all(r["dev_wer_mean"] == pytest.approx(mean(r), abs=0.006) for r in sel)
        assert all(r["dev_wer_mean"] >= committed - 0.005 for r in sel) and tried["exported"] is False
        assert " / ".join(f"{r['dev_wer_mean']:.2f}" for r in sel) + "%" in text
    rerun = rec["tried"][1]["selection"][0]      # the committed recipe (150 steps, constant, clean) again
    gap = (abs(rerun["dev_wer_none"] - rec["committed"]["dev_wer_none"]),
           abs(rerun["dev_wer_dr"] - rec["committed"]["dev_wer_dr"]))
    assert f"lands {min(gap):.1f}-{max(gap):.1f} points" in text
