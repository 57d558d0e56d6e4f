"""The design-space section's text says what its table holds (``reports.dse.dse_section``)."""

from __future__ import annotations

import pandas as pd

from reports.dse import dse_section


def _points(with_rtf: bool) -> pd.DataFrame:
    rows = [{"status": "ok", "model": "m", "hw": "h", "precision": p, "hw.core.scratchpad_bytes": s,
             "onchip_bytes": 4 * s, "energy_j": e, **({"rtf": r} if with_rtf else {})}
            for p, s, e, r in (("fp16", 1, 3.0, 0.3), ("int4", 1, 1.0, 0.1), ("int4", 2, 0.5, 0.05),
                               ("fp16", 2, 2.0, 0.2))]
    return pd.DataFrame(rows)


def test_best_points_are_said_to_be_by_rtf_only_when_rtf_is_there(tmp_path):
    with_rtf = dse_section(_points(True), tmp_path)
    assert "by RTF" in with_rtf and "Sensitivity of RTF" in with_rtf
    without = dse_section(_points(False), tmp_path)
    assert "by RTF" not in without and "points, first" in without
    assert "4 design points (4 ok, 0 errors)" in without
