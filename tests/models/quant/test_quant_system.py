"""Quantized systems: slot roles, PTQ, QAT with surrogate losses, INT8 decode agreement."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from models.features import random_features
from models.quant import qat_finetune, quant_slots, quantize
from models.quant.quantizers import FloatQuantizer, IntQuantizer
from models.system import build_system

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def tiny():
    return build_system("tiny", 0)


def _feats(system, n=2, frames=40):
    return [random_features(system.config, frames, seed=i) for i in range(n)]


def test_quantize_copies_and_maps_roles(tiny):
    before = {k: v.clone() for k, v in tiny.named_parameters()}
    q = quantize(tiny, "int4", "ptq", calib_features=_feats(tiny))
    # The input system is untouched (no slots filled, same weights).
    assert not any(True for _ in quant_slots(tiny))
    assert all(torch.equal(before[k], v) for k, v in tiny.named_parameters())
    slots = {(m, s): qz for m, _, s, qz in quant_slots(q)}
    enc = "rnnt.encoder.layers.0.fwd"
    assert slots[(enc, "q_weight_ih")].role == "weight"
    assert slots[(enc, "q_weight_ih")].scale.shape == (64,)  # per channel: 4H rows
    assert slots[(enc, "q_input")].spec.quantizer == "pact2"
    assert slots[(enc, "q_hidden")].spec.quantizer == "fixed"
    assert isinstance(slots[(enc, "q_cell")], FloatQuantizer) and slots[(enc, "q_cell")].role == "cell"
    assert slots[(enc, "q_gate")].role == "act" and slots[(enc, "q_cell_act")].role == "act"
    assert slots[("rnnt.joint.out", "q_output")].role == "output"
    assert slots[("rnnt.joint.enc_proj", "q_output")].role == "preact"
    assert slots[("lm_ext.embedding", "q_weight")].role == "embedding"
    # Every integer quantizer of a PTQ system is frozen.
    assert all(qz.frozen for qz in slots.values() if isinstance(qz, IntQuantizer))


def test_per_gate_weight_scales(tiny):
    from models.quant.policy import load_policy
    import dataclasses
    pol = load_policy("int4")
    spec = dataclasses.replace(pol.roles["weight"], granularity="gate")
    pol = dataclasses.replace(pol, roles={**pol.roles, "weight": spec})
    q = quantize(tiny, pol, "ptq", calib_features=_feats(tiny, 1))
    layer = q.rnnt.encoder.layers[0]["fwd"]
    assert layer.q_weight_ih.scale.shape == (4,) and layer.q_weight_hh.scale.shape == (4,)
    assert q.rnnt.joint.out.q_weight.scale.shape == (1,)  # Linear: one gate block
    # Each gate block is scaled by its own SAWB clip.
    from models.quant.quantizers import sawb_clip
    expect = sawb_clip(layer.weight_ih, 4, groups=4) / 7
    assert torch.equal(layer.q_weight_ih.scale, expect)


def test_ptq_needs_calibration_for_observers(tiny):
    with pytest.raises(RuntimeError, match="never saw data"):
        quantize(tiny, "int4-naive", "ptq")


def _greedy(system, feats, max_symbols=3):
    rnnt = system.rnnt
    with torch.no_grad():
        enc = rnnt.encoder(feats.unsqueeze(0))[0]
        state, label, out = None, torch.zeros(1, dtype=torch.long), []
        pred, state = rnnt.prediction(label, state)
        for t in range(enc.shape[0]):
            for _ in range(max_symbols):
                k = int(rnnt.joint(enc[t : t + 1], pred).argmax(-1))
                if k == 0:
                    break
                out.append(k)
                pred, state = rnnt.prediction(torch.tensor([k]), state)
    return out


def test_int8_decodes_like_fp32():
    system = build_system("tiny", 1)
    # A random joint is nearly uniform over labels; sharpen it (and favour blank a little) so that
    # its decisions have margins, as a trained model's do.
    with torch.no_grad():
        system.rnnt.joint.out.weight.mul_(6.0)
        system.rnnt.joint.out.bias[0] += 0.5
    feats = random_features(system.config, 60, seed=1)
    ref = _greedy(system, feats)
    assert len(set(ref)) >= 3 and len(ref) >= 10  # a non-trivial hypothesis
    q = quantize(system, "int8", "ptq", calib_features=_feats(system) + [feats])
    assert _greedy(q, feats) == ref


def _lm_loss(qsys, batch):
    labels = batch["labels"]
    inputs = torch.cat([labels.new_zeros(labels.shape[0], 1), labels[:, :-1]], 1)
    logp = qsys.lm_ext.forward_sequence(inputs)
    return F.nll_loss(logp.reshape(-1, logp.shape[-1]), labels.reshape(-1))


def _joint_loss(qsys, batch):
    # Surrogate for the RNN-T loss: cross-entropy of the joint at every (t, u) towards label u+1
    # (blank after the last label).
    labels = batch["labels"]
    logp = qsys.rnnt(batch["feats"], labels)  # (B, T, U + 1, V)
    target = torch.cat([labels, labels.new_zeros(labels.shape[0], 1)], 1)  # (B, U + 1)
    target = target[:, None, :].expand(logp.shape[:3])
    return F.nll_loss(logp.reshape(-1, logp.shape[-1]), target.reshape(-1))


def test_qat_gradients_reach_weights_and_pact_clips(tiny):
    feats = torch.stack(_feats(tiny, 2, 24))
    batch = {"feats": feats, "labels": torch.randint(1, 29, (2, 5), generator=torch.Generator().manual_seed(0))}
    q = quantize(tiny, "int4", "qat", calib_features=list(feats))
    loss = _joint_loss(q, batch) + _lm_loss(q, batch)
    loss.backward()
    layer = q.rnnt.encoder.layers[1]["bwd"]
    assert layer.weight_ih.grad is not None and layer.weight_ih.grad.abs().sum() > 0
    assert torch.isfinite(layer.q_input.alpha.grad).all()
    assert q.lm_ext.layers[0].weight_hh.grad.abs().sum() > 0
    # The joint's input clip receives gradient from clipped inputs.
    alphas = [qz.alpha.grad for _, _, s, qz in quant_slots(q) if hasattr(qz, "alpha")]
    assert any(g is not None and g.abs().item() > 0 for g in alphas)


def test_qat_loss_decreases(tiny):
    gen = torch.Generator().manual_seed(1)
    feats = torch.stack(_feats(tiny, 2, 24))
    batch = {"feats": feats, "labels": torch.randint(1, 29, (2, 5), generator=gen)}
    q = quantize(tiny, "int4", "qat", calib_features=list(feats))
    alpha0 = q.rnnt.joint.out.q_input.alpha.detach().clone()
    losses = qat_finetune(q, [batch], steps=30, lr=1e-2,
                          loss_fn=lambda s, b: _joint_loss(s, b) + _lm_loss(s, b))
    assert losses[-1] < 0.8 * losses[0]
    assert not torch.equal(q.rnnt.joint.out.q_input.alpha.detach(), alpha0)  # the clip learned
    # Frozen and in eval mode afterwards.
    assert all(qz.frozen for _, _, _, qz in quant_slots(q) if isinstance(qz, IntQuantizer))
    assert not q.rnnt.training
