"""Fake quantizers: grid properties (hypothesis), SAWB against numpy, PACT/STE/LSQ gradients."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from models.quant.policy import QuantSpec
from models.quant.quantizers import (
    SAWB_COEFFS, IntQuantizer, fake_quant, float_cast, lsq_quant, make_quantizer, pact_quant,
    quantize_codes, sawb_clip, scale_from_range,
)

torch.set_num_threads(1)

floats = st.floats(-1e3, 1e3, allow_nan=False, width=32)


@settings(max_examples=60, deadline=None)
@given(xs=st.lists(floats, min_size=1, max_size=64), bits=st.sampled_from([2, 4, 8]),
       symmetric=st.booleans(), narrow=st.booleans(),
       lo=st.floats(-50, 0, width=32), span=st.floats(0.0625, 100, width=32))
def test_grid_properties(xs, bits, symmetric, narrow, lo, span):
    spec = QuantSpec(f"int{bits}", "minmax", symmetric=symmetric, narrow_range=narrow)
    x = torch.tensor(xs, dtype=torch.float32)
    scale, zp = scale_from_range(torch.tensor(lo), torch.tensor(lo + span), spec.qmin, spec.qmax, symmetric)
    q = fake_quant(x, scale, zp, spec.qmin, spec.qmax)
    code = quantize_codes(x, scale, zp, spec.qmin, spec.qmax)
    # On the grid: q == (code - zp) * scale exactly, codes integer within qmin..qmax.
    assert torch.equal(q, (code - zp) * scale)
    assert torch.equal(code, torch.round(code))
    assert code.min() >= spec.qmin and code.max() <= spec.qmax
    levels = spec.qmax - spec.qmin + 1
    assert levels == (2 ** bits - 1 if (symmetric and narrow) else 2 ** bits)
    assert len(torch.unique(q)) <= levels
    # Inside the clip range the error is at most half a step (float32 slack: a few ulps).
    lo_q, hi_q = float((spec.qmin - zp) * scale), float((spec.qmax - zp) * scale)
    inside = (x >= lo_q) & (x <= hi_q)
    err = (x - q).abs()[inside]
    tol = float(scale) / 2 * (1 + 1e-5) + 1e-6 * x.abs().max().item()
    assert bool((err <= tol).all())
    # Idempotence.
    assert torch.equal(fake_quant(q, scale, zp, spec.qmin, spec.qmax), q)


@settings(max_examples=40, deadline=None)
@given(rows=st.integers(1, 8), cols=st.integers(1, 9), bits=st.sampled_from([2, 4, 8]),
       gran=st.sampled_from(["tensor", "gate", "channel"]), seed=st.integers(0, 2 ** 16))
def test_weight_quantizer_grid_and_idempotent(rows, cols, bits, gran, seed):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(4 * rows, cols, generator=g)
    spec = QuantSpec(f"int{bits}", "sawb", granularity=gran)
    groups = {"tensor": 1, "gate": 4, "channel": 4 * rows}[gran]
    qz = make_quantizer(spec, "weight", "w", groups=groups, is_weight=True)
    q = qz(w)
    codes = qz.codes(w)
    assert codes.abs().max() <= spec.qmax  # narrow symmetric: -qmax..qmax
    per_row_scale = qz.scale.repeat_interleave(4 * rows // groups)
    assert torch.equal(q, codes.float() * per_row_scale[:, None])
    qz.freeze()
    assert torch.equal(qz(q), q)


def _sawb_np(w: np.ndarray, bits: int) -> float:
    c1, c2 = SAWB_COEFFS[bits]
    w = w.astype(np.float64).ravel()
    clip = c1 * np.sqrt(np.mean(w ** 2)) + c2 * np.mean(np.abs(w))
    return clip if clip > 0 else np.abs(w).max()


@pytest.mark.parametrize("bits", sorted(SAWB_COEFFS))
def test_sawb_clip_against_numpy(bits):
    rng = np.random.default_rng(bits)
    w = (rng.standard_normal((12, 40)) * rng.uniform(0.1, 2, (12, 1))).astype(np.float32)
    w[3, 5] = 9.0  # an outlier row
    t = torch.from_numpy(w)
    assert float(sawb_clip(t, bits)) == pytest.approx(_sawb_np(w, bits), rel=1e-5)
    per_ch = sawb_clip(t, bits, per_channel=True)
    assert per_ch.shape == (12,)
    np.testing.assert_allclose(per_ch.numpy(), [_sawb_np(r, bits) for r in w], rtol=1e-5)
    per_gate = sawb_clip(t, bits, groups=4)
    np.testing.assert_allclose(per_gate.numpy(), [_sawb_np(b, bits) for b in w.reshape(4, -1)], rtol=1e-5)


def test_sawb_falls_back_to_max_and_rejects_unknown_bits():
    # Two equal magnitudes: E[|w|] = sqrt(E[w^2]) = a, 4-bit clip = (12.68 - 12.80) a < 0 -> max|w|.
    w = torch.tensor([[0.5, -0.5]])
    assert float(sawb_clip(w, 4)) == 0.5
    assert float(sawb_clip(torch.zeros(2, 2), 4)) == 1.0
    with pytest.raises(ValueError, match="not 6"):
        sawb_clip(w, 6)


def test_ste_passes_inside_stops_outside():
    x = torch.tensor([-3.0, -0.7, 0.0, 0.35, 0.7, 2.0], requires_grad=True)
    scale = torch.tensor(0.1)
    fake_quant(x, scale, 0.0, -7, 7).backward(torch.arange(1.0, 7.0))
    assert x.grad.tolist() == [0.0, 2.0, 3.0, 4.0, 5.0, 0.0]


@pytest.mark.parametrize("two_sided", [False, True])
def test_pact_alpha_gradient(two_sided):
    torch.manual_seed(0)
    x = (torch.randn(200) * 2).requires_grad_()
    alpha = torch.tensor(1.3, requires_grad=True)
    up = torch.randn(200)
    pact_quant(x, alpha, 4, two_sided).backward(up)
    xd = x.detach()
    if two_sided:
        beyond = xd.abs() >= 1.3
        expect_alpha = (up * torch.sign(xd))[beyond].sum()
        inside = ~beyond
    else:
        beyond = xd >= 1.3
        expect_alpha = up[beyond].sum()
        inside = (xd >= 0) & ~beyond
    assert alpha.grad.item() == pytest.approx(expect_alpha.item(), rel=1e-5, abs=1e-5)
    assert torch.equal(x.grad, up * inside)


def test_pact_one_sided_uses_unsigned_grid():
    x = torch.linspace(-1, 3, 101)
    q = pact_quant(x, torch.tensor(2.0), 4, two_sided=False)
    assert q.min() == 0 and q.max() == 2.0
    assert len(torch.unique(q)) == 16


def test_lsq_gradient_scale_depends_on_numel():
    def step_grad(n: int) -> float:
        torch.manual_seed(1)
        x = torch.randn(n)
        s = torch.tensor(0.3, requires_grad=True)
        lsq_quant(x, s, -7, 7).sum().backward()
        # Unscaled gradient, by hand.
        v = x / 0.3
        d = torch.where(v < -7, -7.0, torch.where(v > 7, 7.0, torch.round(v) - v)).sum()
        return s.grad.item(), d.item()

    for n in (64, 4096):
        got, raw = step_grad(n)
        assert got == pytest.approx(raw / math.sqrt(n * 7), rel=1e-4, abs=1e-7)


def test_float_cast_round_trip_and_gradient():
    x = torch.tensor([1.0 + 2 ** -12, 3.14159265, 1e-8], requires_grad=True)
    y = float_cast(x, "fp16")
    assert torch.equal(y, x.detach().half().float())
    y.sum().backward()
    assert x.grad.tolist() == [1.0, 1.0, 1.0]
    assert torch.equal(float_cast(x, "bf16"), x.detach().bfloat16().float())


def test_observers_running_range_and_asymmetric_zero_point():
    spec = QuantSpec("int4", "minmax", symmetric=False)
    qz = IntQuantizer(spec, "input", "x")
    qz.observing = True
    out = qz(torch.tensor([0.5, 2.0]))
    assert out.tolist() == [0.5, 2.0]  # pass through while observing
    qz(torch.tensor([-1.0, 1.0]))
    qz.freeze()
    assert qz.lo.item() == -1.0 and qz.hi.item() == 2.0
    scale = qz.scale.item()
    assert scale == pytest.approx(3.0 / 15)
    assert qz.zero_point.item() == -8 - round(-1.0 / scale)
    # Zero is exactly representable; the range ends map to qmin / qmax.
    assert qz(torch.tensor([0.0])).item() == 0.0
    assert qz.codes(torch.tensor([-1.0, 2.0])).tolist() == [-8, 7]


def test_fixed_range_hidden():
    spec = QuantSpec("int4", "fixed", fixed_range=(-1.0, 1.0))
    qz = make_quantizer(spec, "hidden", "h")
    assert qz.scale.item() == pytest.approx(1 / 7)
    q = qz(torch.tensor([-2.0, -1.0, 0.6, 1.0]))
    assert q.tolist() == pytest.approx([-1.0, -1.0, 4 / 7, 1.0])


def test_weight_minmax_per_gate():
    spec = QuantSpec("int4", "minmax", granularity="gate", symmetric=False)
    w = torch.cat([torch.full((2, 3), float(k + 1)) * torch.tensor([[-1.0, 0.0, 1.0]]) for k in range(4)])
    qz = make_quantizer(spec, "weight", "w", groups=4, is_weight=True)
    q = qz(w)
    assert qz.scale.shape == (4,)
    assert torch.allclose(qz.scale, torch.tensor([2.0, 4.0, 6.0, 8.0]) / 15)
    assert torch.allclose(q, w, atol=0.3)


def test_codes_match_the_fake_quantizer_at_ties_with_an_odd_zero_point():
    # x / scale = 7.5 with zp = -1: the fake quantizer rounds 6.5 to 6 (half to even); rounding
    # first and then adding the zero point would give 7. Export relies on the two agreeing.
    import torch

    from models.quant.quantizers import dequantize_codes, fake_quant, quantize_codes

    x = torch.tensor([7.5, -2.5, 0.5, 3.5])
    scale, zp = torch.tensor(1.0), torch.tensor(-1.0)
    codes = quantize_codes(x, scale, zp, -8, 7)
    assert codes.tolist() == [6.0, -4.0, 0.0, 2.0]
    assert torch.equal(dequantize_codes(codes, scale, zp), fake_quant(x, scale, zp, -8, 7))
