"""The fast quantizers against the previous implementation, bit for bit (forward and gradients).

``_reference_*`` below are the implementations as they were before the fast path (one Python
``autograd.Function`` per quantizer call, bool masks, no in-place ops), kept verbatim as the
slow reference. Every comparison is on the float32 bit patterns, so -0.0 vs +0.0 and NaN
payloads count.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from models.lstm import LSTMLayer
from models.quant.policy import QuantSpec
from models.quant.quantizers import (
    SAWB_COEFFS, _SMALL_NUMEL, _fake_quant_rows_reference, _rows_kernel, fake_quant, float_cast,
    lsq_grad_scale, lsq_quant, make_quantizer, pact_quant, sawb_clip, scale_from_range,
)

torch.set_num_threads(1)


# --------------------------------------------------------------------------------------------
# The reference (previous implementation, verbatim apart from names)


class _ReferenceFakeQuantSTE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, scale, zero_point, qmin, qmax):
        v = x / scale + zero_point
        code = torch.clamp(torch.round(v), qmin, qmax)
        ctx.save_for_backward((v >= qmin) & (v <= qmax))
        return (code - zero_point) * scale

    @staticmethod
    def backward(ctx, grad):
        (inside,) = ctx.saved_tensors
        return grad * inside, None, None, None, None


def _reference_reduce_to(g, shape):
    n = math.prod(shape)
    if n == 1:
        return g.sum().reshape(shape)
    return g.reshape(n, -1).sum(dim=1).reshape(shape)


class _ReferencePACT(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, alpha, alpha_b, qmin, qmax, two_sided):
        scale = alpha_b / qmax
        v = x / scale
        code = torch.clamp(torch.round(v), qmin, qmax)
        if two_sided:
            beyond = x.abs() >= alpha_b
            ctx.save_for_backward(beyond, torch.sign(x))
        else:
            beyond = x >= alpha_b
            ctx.save_for_backward(beyond, x < 0)
        ctx.two_sided = two_sided
        ctx.alpha_shape = alpha.shape
        return code * scale

    @staticmethod
    def backward(ctx, grad):
        beyond, extra = ctx.saved_tensors
        if ctx.two_sided:
            g_x = grad * ~beyond
            g_alpha_elem = grad * extra * beyond
        else:
            g_x = grad * ~(beyond | extra)
            g_alpha_elem = grad * beyond
        return g_x, _reference_reduce_to(g_alpha_elem, ctx.alpha_shape), None, None, None, None


class _ReferenceLSQ(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, step, step_b, qmin, qmax, grad_scale):
        v = x / step_b
        r = torch.round(v)
        code = torch.clamp(r, qmin, qmax)
        ctx.save_for_backward(v, r)
        ctx.q = (qmin, qmax, grad_scale)
        ctx.step_like = step.shape
        return code * step_b

    @staticmethod
    def backward(ctx, grad):
        v, r = ctx.saved_tensors
        qmin, qmax, g = ctx.q
        below, above = v < qmin, v > qmax
        inside = ~(below | above)
        d_step = torch.where(below, torch.full_like(v, qmin),
                             torch.where(above, torch.full_like(v, qmax), r - v))
        g_step = _reference_reduce_to(grad * d_step, ctx.step_like) * g
        return grad * inside, g_step, None, None, None, None


class _ReferenceCastSTE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, dtype):
        return x.to(dtype).to(x.dtype)

    @staticmethod
    def backward(ctx, grad):
        return grad, None


def _reference_broadcast_groups(p, x):
    n = p.numel()
    if n == 1:
        return p.reshape(())
    rows = x.shape[0]
    return p.repeat_interleave(rows // n).reshape((rows,) + (1,) * (x.dim() - 1))


def _reference_safe_clip(clip, absmax):
    clip = torch.where(torch.isfinite(clip) & (clip > 0), clip, absmax)
    return torch.where(clip > 0, clip, torch.ones_like(clip))


def _reference_sawb_clip(w, bits, per_channel=False, groups=1):
    c1, c2 = SAWB_COEFFS[bits]
    with torch.no_grad():
        g = w.shape[0] if per_channel else groups
        v = w.detach().reshape(g, -1).float()
        clip = c1 * v.square().mean(dim=1).sqrt() + c2 * v.abs().mean(dim=1)
        clip = _reference_safe_clip(clip, v.abs().amax(dim=1))
    return clip.reshape(()) if (not per_channel and groups == 1) else clip


# --------------------------------------------------------------------------------------------
# Helpers


def _bits(t: torch.Tensor) -> torch.Tensor:
    return t.detach().contiguous().view(torch.int32)


def _assert_same(got: torch.Tensor, ref: torch.Tensor, what: str) -> None:
    assert got.shape == ref.shape and got.dtype == ref.dtype, what
    diff = (_bits(got) != _bits(ref)).reshape(-1).nonzero().reshape(-1)
    if diff.numel():
        i = int(diff[0])
        raise AssertionError(f"{what}: {diff.numel()} elements differ, first at flat index {i}: "
                             f"{got.reshape(-1)[i].item()!r} vs {ref.reshape(-1)[i].item()!r}")


def _inputs(shape, scale_of_x: float, seed: int) -> torch.Tensor:
    """Random values plus the edge cases: +-0, half steps, grid ends, +-inf, NaN, tiny values."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=g) * scale_of_x
    flat = x.view(-1)
    specials = torch.tensor([0.0, -0.0, 0.5, -0.5, 1.5, -2.5, 7.0, -7.0, 7.5, -8.5, 1e-30, -1e-30,
                             1e-45, -1e-45, 3.4e38, -3.4e38, math.inf, -math.inf, math.nan])
    k = min(len(specials), flat.numel())
    flat[:k] = specials[:k] * (scale_of_x if scale_of_x < 1e30 else 1.0)
    flat[:2] = specials[:2]  # exact signed zeros
    return x


def _grad_pair(fn_new, fn_ref, x, *extra, seed=0):
    """(outputs, grads) of both implementations on the same x / extra leaves / upstream grad."""
    up = torch.randn(x.shape, generator=torch.Generator().manual_seed(seed + 1))
    up.view(-1)[:2] = torch.tensor([-1.0, -0.0])  # negative grads: signs of zero products count
    res = []
    for fn in (fn_new, fn_ref):
        xs = x.clone().requires_grad_()
        es = [e.clone().requires_grad_() for e in extra]
        out = fn(xs, *es)
        out.backward(up)
        res.append((out.detach(), xs.grad, [e.grad for e in es]))
    return res


SHAPES = [(4, 256), (1024, 40)]  # below and above _SMALL_NUMEL: both autograd paths
assert SHAPES[0][0] * SHAPES[0][1] < _SMALL_NUMEL <= SHAPES[1][0] * SHAPES[1][1]


# --------------------------------------------------------------------------------------------
# Functions


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("grid", ["symmetric", "asymmetric", "per_row", "unsigned"])
def test_fake_quant_matches_reference(shape, grid):
    x = _inputs(shape, 0.3, seed=shape[0])
    rows = shape[0]
    if grid == "symmetric":
        scale, zp, qmin, qmax = torch.tensor(0.1), torch.tensor(0.0), -7, 7
    elif grid == "asymmetric":
        scale, zp = scale_from_range(torch.tensor(-0.2), torch.tensor(0.9), -8, 7, False)
        qmin, qmax = -8, 7
    elif grid == "per_row":
        scale = (torch.rand(rows, 1, generator=torch.Generator().manual_seed(3)) + 0.05) / 7
        zp, qmin, qmax = torch.zeros(rows, 1), -7, 7
    else:  # a frozen one-sided PACT: 0..15, where -0.0 codes appear
        scale, zp, qmin, qmax = torch.tensor(0.05), torch.tensor(0.0), 0, 15
    (o1, g1, _), (o2, g2, _) = _grad_pair(lambda t: fake_quant(t, scale, zp, qmin, qmax),
                                          lambda t: _ReferenceFakeQuantSTE.apply(t, scale, zp, qmin, qmax), x)
    _assert_same(o1, o2, "forward")
    _assert_same(g1, g2, "grad x")
    with torch.no_grad():  # the no-grad path too
        _assert_same(fake_quant(x, scale, zp, qmin, qmax), o2, "forward, no grad")


def test_fake_quant_non_contiguous_large_input_matches_reference():
    """The torch fallback of the large path (the kernel takes contiguous float32 only)."""
    x = _inputs((40, 1024), 0.3, seed=4).t()
    assert not x.is_contiguous() and x.numel() >= _SMALL_NUMEL
    scale = torch.rand(1024, 1, generator=torch.Generator().manual_seed(8)) / 7 + 0.01
    zp = torch.zeros(1024, 1)
    (o1, g1, _), (o2, g2, _) = _grad_pair(lambda t: fake_quant(t.t().contiguous().t(), scale, zp, -7, 7),
                                          lambda t: _ReferenceFakeQuantSTE.apply(t, scale, zp, -7, 7), x)
    _assert_same(o1, o2, "forward")
    _assert_same(g1, g2, "grad x")


@pytest.mark.parametrize("groups", [1, 7])
def test_rows_kernel_matches_numpy_reference(groups):
    """The numba kernel against its numpy reference, on random and extreme values."""
    x = _inputs((groups, 4099), 3.0, seed=groups).numpy()
    x[:, -5:] = np.array([3.4e38, -3.4e38, 1e-45, -1e-45, -0.0], dtype=np.float32)
    g = np.random.default_rng(groups)
    scale = (g.random(groups, dtype=np.float32) + np.float32(0.01)) / np.float32(7)
    zp = g.integers(-3, 4, groups).astype(np.float32)
    zp[0] = 0.0
    for qmin, qmax in ((-7, 7), (-8, 7), (0, 15), (-128, 127)):
        out, mask = np.empty_like(x), np.empty_like(x)
        _rows_kernel()(x, scale, zp, np.float32(qmin), np.float32(qmax), out, mask)
        ref_out, ref_mask = _fake_quant_rows_reference(x, scale, zp, np.float32(qmin), np.float32(qmax))
        _assert_same(torch.from_numpy(out), torch.from_numpy(ref_out), f"kernel out {qmin}..{qmax}")
        _assert_same(torch.from_numpy(mask), torch.from_numpy(ref_mask), f"kernel mask {qmin}..{qmax}")


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("two_sided", [False, True])
@pytest.mark.parametrize("groups", [1, 4])
def test_pact_matches_reference(shape, two_sided, groups):
    x = _inputs(shape, 1.0, seed=7)
    alpha = torch.linspace(0.6, 1.9, groups) if groups > 1 else torch.tensor(1.3)
    qmax = 7 if two_sided else 15
    qmin = -7 if two_sided else 0
    (o1, g1, (a1,)), (o2, g2, (a2,)) = _grad_pair(
        lambda t, a: pact_quant(t, a, 4, two_sided),
        lambda t, a: _ReferencePACT.apply(t, a, _reference_broadcast_groups(a, t), qmin, qmax, two_sided),
        x, alpha)
    _assert_same(o1, o2, "forward")
    _assert_same(g1, g2, "grad x")
    _assert_same(a1, a2, "grad alpha")


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("groups", [1, 4])
def test_lsq_matches_reference(shape, groups):
    x = _inputs(shape, 1.0, seed=11)
    step = torch.linspace(0.1, 0.4, groups) if groups > 1 else torch.tensor(0.2)
    gs = lsq_grad_scale(x.numel() // groups, 7)
    (o1, g1, (s1,)), (o2, g2, (s2,)) = _grad_pair(
        lambda t, s: lsq_quant(t, s, -7, 7, gs),
        lambda t, s: _ReferenceLSQ.apply(t, s, _reference_broadcast_groups(s, t), -7, 7, gs), x, step)
    _assert_same(o1, o2, "forward")
    _assert_same(g1, g2, "grad x")
    _assert_same(s1, s2, "grad step")


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("precision", ["fp16", "bf16", "fp8"])
def test_float_cast_matches_reference(shape, precision):
    from models.quant.quantizers import FLOAT_DTYPES

    x = _inputs(shape, 1000.0, seed=5)
    (o1, g1, _), (o2, g2, _) = _grad_pair(lambda t: float_cast(t, precision),
                                          lambda t: _ReferenceCastSTE.apply(t, FLOAT_DTYPES[precision]), x)
    _assert_same(o1, o2, "forward")
    _assert_same(g1, g2, "grad x")


@pytest.mark.parametrize("bits", sorted(SAWB_COEFFS))
@pytest.mark.parametrize("gran", ["tensor", "gate", "channel"])
def test_sawb_clip_matches_reference(bits, gran):
    w = torch.randn(64, 33, generator=torch.Generator().manual_seed(bits)) * 0.1
    w[5] = 0.0  # an all-zero row: fallback path
    kw = {"tensor": {}, "gate": {"groups": 4}, "channel": {"per_channel": True}}[gran]
    _assert_same(sawb_clip(w, bits, **kw), _reference_sawb_clip(w, bits, **kw), "clip")


# --------------------------------------------------------------------------------------------
# Modules (the slot quantizers as QAT uses them: live, train mode)


WEIGHT_SPECS = [
    QuantSpec("int4", "sawb", granularity="channel"),
    QuantSpec("int4", "sawb", granularity="gate"),
    QuantSpec("int8", "max", granularity="channel"),
    QuantSpec("int4", "minmax", symmetric=False),
    QuantSpec("int4", "pact2", granularity="gate"),
    QuantSpec("int4", "lsq", granularity="channel"),
]
ACT_SPECS = [
    QuantSpec("int4", "fixed", fixed_range=(-1.0, 1.0)),
    QuantSpec("int4", "fixed", fixed_range=(0.0, 1.0), symmetric=False),
    QuantSpec("int8", "max"),
    QuantSpec("int4", "minmax", symmetric=False),
    QuantSpec("int4", "pact"),
    QuantSpec("int4", "pact2"),
    QuantSpec("int8", "lsq"),
]


def _groups_of(spec: QuantSpec, rows: int) -> int:
    return {"tensor": 1, "gate": 4, "channel": rows}[spec.granularity]


def _reference_module_forward(qz, x):
    """The previous module forward, from the quantizer's parameters after its own forward."""
    q, lo = qz.spec.quantizer, qz.qmin
    if q in ("pact", "pact2"):
        alpha = qz.alpha if qz.groups > 1 else qz.alpha.reshape(())
        return _ReferencePACT.apply(x, alpha, _reference_broadcast_groups(alpha, x), lo, qz.qmax, q == "pact2")
    if q == "lsq":
        gs = lsq_grad_scale(x.numel() // qz.groups, qz.qmax)
        return _ReferenceLSQ.apply(x, qz.step, _reference_broadcast_groups(qz.step, x), lo, qz.qmax, gs)
    if qz.is_weight:
        s, z = _reference_broadcast_groups(qz.scale, x), _reference_broadcast_groups(qz.zero_point, x)
    else:
        s, z = qz.scale.reshape(()), qz.zero_point.reshape(())
    return _ReferenceFakeQuantSTE.apply(x, s, z, lo, qz.qmax)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("spec", WEIGHT_SPECS + ACT_SPECS, ids=lambda s: f"{s.quantizer}-{s.granularity}")
def test_slot_quantizers_match_reference(shape, spec):
    is_weight = spec in WEIGHT_SPECS
    rows = shape[0]
    x = _inputs(shape, 0.4, seed=rows)[:, :]
    x.view(-1)[:19] = x.view(-1)[:19].nan_to_num(0.0, 3.0, -3.0)  # observers need a finite range
    qz = make_quantizer(spec, "weight" if is_weight else "input", "q",
                        groups=_groups_of(spec, rows) if is_weight else 1, is_weight=is_weight)
    qz.train()
    if spec.quantizer in ("pact", "pact2", "lsq", "minmax", "max") and not is_weight:
        qz.calibrate(x * 0.8)
    (o1, g1, _), (o2, g2, _) = _grad_pair(qz, lambda t: _reference_module_forward(qz, t), x)
    _assert_same(o1, o2, "forward")
    _assert_same(g1, g2, "grad x")
    if spec.quantizer == "sawb":
        clip = _reference_sawb_clip(x, spec.bits, groups=_groups_of(spec, rows))
        _assert_same(qz.scale, (clip / qz.qmax).reshape(-1), "scale")


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("spec", WEIGHT_SPECS + ACT_SPECS, ids=lambda s: f"{s.quantizer}-{s.granularity}")
def test_frozen_slot_quantizers_match_reference(shape, spec):
    """Frozen (as after QAT or PTQ), every quantizer runs the fixed-scale path, unsigned grids too."""
    is_weight = spec in WEIGHT_SPECS
    rows = shape[0]
    x = _inputs(shape, 0.4, seed=rows + 1)
    x.view(-1)[:19] = x.view(-1)[:19].nan_to_num(0.0, 3.0, -3.0)
    qz = make_quantizer(spec, "weight" if is_weight else "input", "q",
                        groups=_groups_of(spec, rows) if is_weight else 1, is_weight=is_weight)
    qz.calibrate(x * 0.8)
    if is_weight:
        qz(x)
    qz.freeze()
    s, z = ((_reference_broadcast_groups(qz.scale, x), _reference_broadcast_groups(qz.zero_point, x))
            if is_weight else (qz.scale.reshape(()), qz.zero_point.reshape(())))
    (o1, g1, _), (o2, g2, _) = _grad_pair(
        qz, lambda t: _ReferenceFakeQuantSTE.apply(t, s, z, qz.qmin, qz.qmax), x)
    _assert_same(o1, o2, "forward")
    _assert_same(g1, g2, "grad x")


def test_learned_clip_gradients_match_reference():
    x = _inputs((4, 256), 1.0, seed=2)
    for spec in (QuantSpec("int4", "pact2"), QuantSpec("int4", "lsq")):
        grads = []
        for impl in ("new", "ref"):
            qz = make_quantizer(spec, "input", "q")
            qz.calibrate(x)
            out = qz(x.clone().requires_grad_()) if impl == "new" else _reference_module_forward(qz, x.clone())
            out.backward(torch.ones_like(out))
            grads.append((qz.alpha if spec.quantizer == "pact2" else qz.step).grad)
        _assert_same(grads[0], grads[1], f"{spec.quantizer} parameter gradient")


def test_float_slot_and_pickled_quantizer():
    qz = make_quantizer(QuantSpec("fp16"), "cell", "c")
    x = _inputs((4, 256), 1e4, seed=9)
    _assert_same(qz(x), x.half().float(), "fp16 slot")
    assert make_quantizer(QuantSpec("fp32"), "cell", "c")(x) is x
    # A quantizer pickled before the cached dtype existed has no '_dtype' in its __dict__.
    qz.__dict__.pop("_dtype", None)
    _assert_same(qz(x), x.half().float(), "fp16 slot without cached dtype")


def test_lstm_quantizes_weights_once_per_sequence():
    """The sequence path applies q_weight_ih / q_weight_hh once per forward, not once per step."""
    from models.quant.qsystem import _attach
    from models.quant.policy import load_policy

    layer = LSTMLayer(8, 16)
    _attach(layer, load_policy("int4"), "")
    calls = {"q_weight_ih": 0, "q_weight_hh": 0, "q_hidden": 0}
    for slot in calls:
        getattr(layer, slot).register_forward_hook(lambda m, i, o, s=slot: calls.__setitem__(s, calls[s] + 1))
    layer.q_input.calibrate(torch.randn(5, 3, 8))
    layer.train()
    y, _ = layer(torch.randn(5, 3, 8))
    y.sum().backward()
    assert calls == {"q_weight_ih": 1, "q_weight_hh": 1, "q_hidden": 5}
