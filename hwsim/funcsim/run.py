"""One call for the command line: load an export, decode on integer kernels, compare with torch."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hwsim.funcsim.system import IntSystem


def funcsim(export_path: str | Path, features: np.ndarray, beam: int = 4, method: str = "alsd",
            lm_fusion: str = "none", compare: bool = True):
    """Decode ``features`` with the functional simulation of an export, and compare with torch.

    Args:
        export_path: ``models.quant.export`` file.
        features: (T, input_dim) float32 features.
        beam, method, lm_fusion: search settings.
        compare: also build the fake-quantized torch model from the export and return the
            equality report (None otherwise).

    Returns:
        (``DecodeResult`` of the integer system, ``EqualityReport`` or None).
    """
    from hwsim.funcsim.search import decode

    sim = IntSystem.from_export(export_path)
    result = decode(sim, features, beam=beam, method=method, lm_fusion=lm_fusion)
    report = None
    if compare:
        from hwsim.funcsim.report import equality_report
        from models.quant import load

        report = equality_report(sim, load(export_path), features, beam=beam, method=method,
                                 lm_fusion=lm_fusion)
    return result, report
