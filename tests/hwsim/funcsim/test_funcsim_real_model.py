"""The committed ``small`` INT4 QAT export on speech-like audio: what is exact and what is not.

Random features never made the two sides part; a harmonic, amplitude-modulated wave (a crude
voiced sound, numpy only) through the real front end does: the free-running comparison then shows
a few code mismatches in the joint (an fp16 projection one ulp apart, from the float32 GEMM sum,
moves a tanh output across a code's rounding tie). The lockstep comparison, where every step
starts from the torch model's own inputs, must find the exact parts identical: accumulators,
gates, cell state, hidden codes; only the rounding of float32 GEMM sums may differ, within its
bound. With the earlier SFU sigmoid (float64, rounded twice) it found 44 values of the exact parts
differing: 27 gate signals one ulp16 off, and the cell states and codes computed from them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from hwsim.funcsim import IntSystem, equality_report
from models.features import SAMPLE_RATE_HZ, features_for
from models.quant import load

EXPORT = Path(__file__).resolve().parents[3] / "checkpoints" / "small-int4-qat.npz"


def voiced_wave(seed: int, seconds: float = 3.0) -> np.ndarray:
    """A gliding 24-harmonic tone with a 3.1 Hz syllable envelope and light noise, float32."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SAMPLE_RATE_HZ)) / SAMPLE_RATE_HZ
    f0 = 110 + 40 * np.sin(2 * np.pi * 0.7 * t + seed) + 20 * rng.standard_normal()
    phase = 2 * np.pi * np.cumsum(f0) / SAMPLE_RATE_HZ
    env = (0.5 + 0.5 * np.sin(2 * np.pi * 3.1 * t)) ** 2
    w = sum(np.sin(k * phase) / k for k in range(1, 25)) * env + 0.05 * rng.standard_normal(t.size)
    return (0.3 * w / np.abs(w).max()).astype(np.float32)


@pytest.mark.skipif(not EXPORT.exists(), reason="committed checkpoint missing")
def test_small_int4_qat_lockstep_exact_on_voiced_audio():
    torch.set_num_threads(1)
    sim, ref = IntSystem.from_export(EXPORT), load(EXPORT)
    feats = features_for(sim.config, torch.from_numpy(voiced_wave(5))).numpy()
    rep = equality_report(sim, ref, feats, beam=2, lm_fusion="dr")
    assert rep.lockstep_elements(exact=True) > 3_000_000
    assert rep.lockstep_mismatches(exact=True) == 0 and rep.lockstep_exact
    ratios = [r.bound_ratio for r in rep.lockstep if r.bound_ratio is not None]
    assert len(ratios) > 10 and max(ratios) <= 1.0
    # the stated non-exact part exists and is small: fp16 roundings of float32 sums
    n_round, n_all = rep.lockstep_mismatches(exact=False), rep.lockstep_elements(exact=False)
    assert 0 < n_round < 1e-3 * n_all
    assert {r.slot for r in rep.lockstep if r.mismatches} <= {"q_preact", "q_output", "tanh_codes",
                                                              "preact_f32", "output_f32"}
    # free-running: the integer parts depart only downstream of float differences
    bad = [r for r in rep.rows if r.kind in ("codes", "acc") and r.mismatches]
    for r in bad:
        same_chain = [q for q in rep.rows if q.phase == r.phase and q.kind == "float" and q.mismatches]
        assert same_chain, f"{r.module}.{r.slot}: integer mismatch with no float difference before it"
    assert rep.nbest_identical
    text = rep.format()
    assert "lockstep (every step from the torch model's own inputs): exact parts identical: yes" in text
