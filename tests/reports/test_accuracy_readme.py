"""The README's accuracy table (ALSD beam 8, WER %) is the committed ``reports/accuracy/results.json``."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LABELS = {"fp32": "fp32", "int4-naive PTQ": "int4-naive-ptq", "int4 PTQ": "int4-ptq", "int4 QAT": "int4-qat"}


def test_readme_accuracy_table_is_the_committed_results():
    rows = json.loads((ROOT / "reports" / "accuracy" / "results.json").read_text())["rows"]
    readme = (ROOT / "README.md").read_text()
    head = readme.index("| precision | fortunes, no LM | Bible, no LM | Bible, DR fusion |")
    table = readme[head:].split("\n\n", 1)[0].splitlines()[2:]
    found = {}
    for line in table:
        cells = [c.strip() for c in line.strip("|").split("|")]
        found[LABELS[cells[0]]] = [float(c) for c in cells[1:]]
    assert set(found) == set(LABELS.values())

    def wer(precision, test, lm):
        (r,) = [r for r in rows if (r["precision"], r["test"], r["search"], r["beam"], r["lm_fusion"])
                == (precision, test, "alsd", 8, lm)]
        return r["wer"]

    for precision, cells in found.items():
        want = [wer(precision, "fortunes", "none"), wer(precision, "bible", "none"), wer(precision, "bible", "dr")]
        assert cells == pytest.approx(want, abs=0.051), precision
    assert re.search(r"\| int4 QAT \|", readme)
