"""Whole system: identical n-best with DR fusion (beam 4) and greedy; the equality report."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import models
from hwsim.funcsim import IntSystem, decode, equality_report
from models.features import random_features
from models.quant import load

#: Largest float difference accepted: one fp16 ulp of values in [2, 4) (2**-9). An fp16 signal
#: differs only when the float32 values straddle an fp16 rounding boundary (see hwsim.funcsim.report).
FP16_TOL = 2.0 ** -9


@pytest.mark.parametrize("policy", ["int4", "int8"])
def test_dr_beam_decode_identical_nbest(exports, policy):
    ref, sim = load(exports[policy]), IntSystem.from_export(exports[policy])
    for seed in (1, 2):
        feats = random_features(sim.config, 100, seed=seed)
        a = models.decode(ref, feats, beam=4, lm_fusion="dr")
        b = decode(sim, feats.numpy(), beam=4, lm_fusion="dr")
        assert len(a.hyps) >= 2 and [h[0] for h in a.hyps] == [h[0] for h in b.hyps]
        assert np.allclose([h[1] for h in a.hyps], [h[1] for h in b.hyps], rtol=0, atol=1e-3)
        assert a.stats.summary() == b.stats.summary()  # same search work, step for step


@pytest.mark.parametrize("policy", ["int4", "int8"])
@pytest.mark.parametrize("method", ["greedy", "tsd"])
def test_greedy_and_tsd_identical(exports, policy, method, utterance):
    ref, sim = load(exports[policy]), IntSystem.from_export(exports[policy])
    a = models.decode(ref, torch.from_numpy(utterance), beam=4, method=method, lm_fusion="dr")
    b = decode(sim, utterance, beam=4, method=method, lm_fusion="dr")
    assert [h[0] for h in a.hyps] == [h[0] for h in b.hyps] and a.labels


@pytest.mark.parametrize("policy", ["int4", "int8"])
def test_equality_report_exact_codes(exports, policy, utterance):
    sim = IntSystem.from_export(exports[policy])
    rep = equality_report(sim, load(exports[policy]), utterance, beam=4, lm_fusion="dr")
    assert rep.integer_exact and rep.nbest_identical
    assert rep.lockstep_exact and rep.lockstep_mismatches(exact=True) == 0
    phases = {r.phase for r in rep.rows}
    assert phases == {"encoder", "enc_proj", "prediction", "lm_ext", "lm_src", "joint"}
    assert rep.mismatches("codes") == 0 and sum(r.elements for r in rep.rows if r.kind == "codes") > 20000
    assert sum(r.elements for r in rep.rows if r.kind == "acc") > 40000
    assert rep.max_float_diff() <= FP16_TOL
    assert rep.max_bound_ratio() is not None and rep.max_bound_ratio() <= 1.0
    text = rep.format()
    assert "n-best identical: yes" in text and "rnnt.encoder.layers.1.bwd" in text


def test_report_flags_corrupted_weight(exports, utterance):
    """Flip one weight code in the simulation: its accumulators (and later codes) mismatch."""
    sim = IntSystem.from_export(exports["int4"])
    layer = sim.encoder.layers[0]["fwd"]
    codes = layer.w_ih.codes.copy()
    row, col = 5, 3
    codes[row, col] = -codes[row, col] if codes[row, col] else 3
    layer.w_ih = layer.w_ih.with_codes(codes)
    rep = equality_report(sim, load(exports["int4"]), utterance, beam=4, lm_fusion="dr")
    assert not rep.integer_exact
    bad = [r for r in rep.rows if r.kind == "acc" and r.mismatches]
    assert bad[0].module == "rnnt.encoder.layers.0.fwd" and bad[0].slot == "acc_ih"
    # only column `row` of the input GEMM can differ, at frames whose input code `col` is nonzero
    assert bad[0].first_mismatch % layer.w_ih.codes.shape[0] == row
    assert "NO" in rep.format()


def test_naive_int4_asymmetric_and_integer_cell_state(exports, utterance):
    """``int4-naive``: zero points in every GEMM, INT4 pre-activations, gates, cell state, outputs."""
    sim = IntSystem.from_export(exports["int4-naive"])
    lstm = sim.encoder.layers[0]["fwd"]
    # the policy really exercises the zero-point paths and integer stages
    assert any(m.q_in.zero_point != 0 for m in sim.modules().values())
    assert any(w.asymmetric for m in sim.modules().values()
               for w in ((m.w_ih, m.w_hh) if hasattr(m, "w_ih") else (m.weight,)))
    assert all(q.bits == 4 for q in (lstm.preact, lstm.gate, lstm.cell_p, lstm.cell_act))
    ref = load(exports["int4-naive"])
    rep = equality_report(sim, ref, utterance, beam=4, lm_fusion="dr")
    assert rep.integer_exact and rep.lockstep_exact and rep.nbest_identical
    cell = [r for r in rep.rows if r.slot == "q_cell" and r.phase == "encoder"]
    assert cell and sum(r.elements for r in cell) > 1000 and all(r.mismatches == 0 for r in cell)
    for seed in (1, 2):
        feats = random_features(sim.config, 100, seed=seed)
        a = models.decode(ref, feats, beam=4, lm_fusion="dr")
        b = decode(sim, feats.numpy(), beam=4, lm_fusion="dr")
        assert [h[0] for h in a.hyps] == [h[0] for h in b.hyps]
        assert np.allclose([h[1] for h in a.hyps], [h[1] for h in b.hyps], rtol=0, atol=1e-3)
