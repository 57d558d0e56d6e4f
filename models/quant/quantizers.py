"""Fake quantizers (torch): SAWB, PACT, LSQ, min-max / max observers, fixed ranges, float casts.

Each quantizer is usable on its own (the functions) and as an ``nn.Module`` built from a
``QuantSpec`` (:func:`make_quantizer`) that the quantized system puts into its ``q_*`` slots.

The one integer formula (every integer quantizer here, and what the integer kernels must
reproduce bit for bit)::

    code = clamp(round_half_even(fl32(x / scale)) + zero_point, qmin, qmax)
    x_q  = fl32(fl32(code - zero_point) * scale)

``x`` and ``scale`` are float32 and the division is IEEE float32 division (correctly rounded; not
a multiplication by a reciprocal); ``round_half_even`` is ``torch.round`` / ``np.rint``.
``zero_point`` is an integer (held in a float32 tensor), 0 for symmetric quantizers.

Scales (float32):

- symmetric (``sawb``, ``max``, ``pact2``, ``fixed`` with a symmetric spec, ``minmax`` with a
  symmetric spec): ``scale = clip / qmax``, ``zero_point = 0``; the grid is the spec's
  ``qmin..qmax`` (-7..7 for narrow-range INT4, -8..7 otherwise).
- asymmetric (``minmax`` / ``fixed`` with ``symmetric: false``): the range is widened to contain 0,
  ``scale = (hi - lo) / (qmax - qmin)`` on the signed grid -2**(b-1)..2**(b-1)-1, and
  ``zero_point = clamp(qmin - round(lo / scale), qmin, qmax)``.
- one-sided ``pact``: unsigned grid ``0..2**b - 1``, ``scale = alpha / (2**b - 1)``.
- ``lsq``: ``scale`` is the learned step itself.

A non-positive or non-finite clip (an all-zero tensor, or SAWB's formula going negative) falls back
to ``max|x|``, and to 1.0 if that is 0 too (all codes are then 0).

Gradients: straight-through estimator clipped to the range: ``d x_q / d x = 1`` where
``qmin <= x / scale + zero_point <= qmax`` and 0 outside. Learned clips: PACT
``d x_q / d alpha = 1`` for ``x >= alpha`` (one-sided) and ``sign(x)`` for ``|x| >= alpha``
(two-sided), 0 inside; LSQ (Esser et al., ICLR 2020) ``d x_q / d s = round(v) - v`` inside and
``qmin`` / ``qmax`` outside (``v = x / s``), times ``g = 1 / sqrt(n * Qp)`` with ``n`` the number of
elements sharing the step (the tensor's numel per scale) and ``Qp = qmax``. SAWB and the observers
treat their clip as a constant (no gradient).

Float "quantizers" (fp16, bf16, fp8) are a cast round trip ``x.to(fp16).to(fp32)`` with an identity
gradient, so an FP16 cell state is simulated exactly as stored.

Speed (QAT calls the per-step slots ~8 times per LSTM step on tensors of a few thousand elements,
where per-op overhead dominates): the casts and small integer fake quantizers build their gradient
from one C++ autograd node (``CloneBackward0`` / ``MulBackward0`` by a 1/0 mask) and write the
quantized values through a detached alias, instead of a Python ``autograd.Function``; large
tensors (weights, whole-sequence inputs) use one ``autograd.Function`` with in-place ops and float
masks. Values and gradients are bit-identical to the plain formulas above;
``tests/models/quant/test_quant_fused.py`` keeps the previous implementation as the reference.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch
from torch import nn

from models.quant.policy import QuantSpec
from models.yamlio import ConfigError

__all__ = [
    "SAWB_COEFFS", "sawb_clip", "fake_quant", "quantize_codes", "dequantize_codes", "float_cast",
    "pact_quant", "lsq_quant", "scale_from_range", "Quantizer", "FloatQuantizer", "IntQuantizer",
    "make_quantizer",
]

#: SAWB clip coefficients (c1, c2) per bit width: clip = c1 * sqrt(E[w^2]) + c2 * E[|w|].
#: Source: IBM fms-model-optimizer, foundation-model-stack/fms-model-optimizer,
#: fms_mo/quant/quantizers.py, function ``sawb_params`` (``dic_coeff``; commit 0b5d68ab5e9d).
#: That file also lists "coded" variants fitted to narrow grids (e.g. 403: (12.035, -12.03) for
#: -7..7); we use the per-bit table for every grid, as the policy asks for "SAWB per bit width".
SAWB_COEFFS: dict[int, tuple[float, float]] = {
    2: (3.12, -2.064),
    3: (7.509, -6.892),
    4: (12.68, -12.80),
    5: (17.74, -18.64),
    8: (31.76, -35.04),
}

FLOAT_DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16,
                "fp8": torch.float8_e4m3fn}


# --------------------------------------------------------------------------------------------
# Clip and scale computation (no gradient)


def _groups_view(x: torch.Tensor, groups: int) -> torch.Tensor:
    """(groups, -1) view of ``x``: groups are contiguous blocks of rows (dim 0)."""
    if groups == 1:
        return x.reshape(1, -1)
    if x.shape[0] % groups:
        raise ValueError(f"cannot split {x.shape[0]} rows into {groups} equal groups")
    return x.reshape(groups, -1)


def _safe_clip(clip: torch.Tensor, absmax: torch.Tensor) -> torch.Tensor:
    clip = torch.where(torch.isfinite(clip) & (clip > 0), clip, absmax)
    return torch.where(clip > 0, clip, torch.ones_like(clip))


def sawb_clip(w: torch.Tensor, bits: int, per_channel: bool = False, groups: int = 1) -> torch.Tensor:
    """SAWB clip value(s) of a weight tensor.

    Args:
        w: weight (rows, ...), float32.
        bits: 2, 3, 4, 5 or 8 (the widths with published coefficients, see ``SAWB_COEFFS``).
        per_channel: one clip per row (output channel).
        groups: with ``per_channel`` false, one clip per block of ``rows / groups`` contiguous rows
            (LSTM gate blocks: 4); 1 = per tensor.

    Returns:
        clip, shape () per tensor, (groups,) per group, (rows,) per channel. Where the formula is
        not positive, ``max|w|`` of that group (1.0 for an all-zero group).

    Raises:
        ValueError: no published coefficients for ``bits``.
    """
    if bits not in SAWB_COEFFS:
        raise ValueError(f"SAWB has published coefficients for {sorted(SAWB_COEFFS)} bits only, "
                         f"not {bits} (use quantizer 'max' or 'lsq')")
    c1, c2 = SAWB_COEFFS[bits]
    with torch.no_grad():
        v = _groups_view(w.detach(), w.shape[0] if per_channel else groups).float()
        # One |w| pass serves E|w|, max|w| and, squared in place, E[w^2] (|w|^2 == w^2 exactly;
        # same reduction kernels on the same layout, so the clip is bit-identical).
        a = v.abs()
        mean_abs, max_abs = a.mean(dim=1), a.amax(dim=1)
        clip = c1 * a.square_().mean(dim=1).sqrt() + c2 * mean_abs
        clip = _safe_clip(clip, max_abs)
    return clip.reshape(()) if (not per_channel and groups == 1) else clip


def scale_from_range(lo: torch.Tensor, hi: torch.Tensor, qmin: int, qmax: int,
                     symmetric: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """(scale, zero_point) float32 tensors for an observed range [lo, hi] (see the module doc)."""
    lo, hi = lo.float(), hi.float()
    if symmetric:
        clip = _safe_clip(torch.maximum(lo.abs(), hi.abs()), torch.zeros_like(lo))
        return clip / qmax, torch.zeros_like(clip)
    lo = torch.minimum(lo, torch.zeros_like(lo))
    hi = torch.maximum(hi, torch.zeros_like(hi))
    span = _safe_clip(hi - lo, torch.zeros_like(lo))
    scale = span / (qmax - qmin)
    zp = torch.clamp(qmin - torch.round(lo / scale), qmin, qmax)
    return scale, zp


# --------------------------------------------------------------------------------------------
# The formula and its gradients


def quantize_codes(x: torch.Tensor, scale: torch.Tensor, zero_point: torch.Tensor | float,
                   qmin: int, qmax: int) -> torch.Tensor:
    """Integer codes (float32 tensor holding integers) of ``x``; scale broadcastable to x.

    ``round(x / scale + zp)``, the fake quantizer's formula: with round-half-to-even this is not
    ``round(x / scale) + zp`` at ties when zp is odd (7.5 - 1 rounds to 6, round(7.5) - 1 = 7).
    """
    return torch.clamp(x / scale + zero_point, qmin, qmax).round()


def dequantize_codes(code: torch.Tensor, scale: torch.Tensor, zero_point: torch.Tensor | float) -> torch.Tensor:
    return (code - zero_point) * scale


#: Below this many elements the straight-through output is built from C++ autograd nodes, at or
#: above it by one Python ``autograd.Function`` (see :func:`_fake_quant_ste`).
_SMALL_NUMEL = 1 << 15


def _shifted_codes(x: torch.Tensor, scale: torch.Tensor, zero_point: torch.Tensor,
                   qmin: int, qmax: int, mask: bool = True) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(code - zp, inside) of the module-doc formula without autograd; ``x_q`` is the first times
    ``scale``. ``inside`` is a float32 1/0 mask (None unless ``mask``).

    Bit-identical to ``code = clamp(round(x / scale + zp))``, ``x_q = (code - zp) * scale`` and
    the reference mask ``qmin <= x / scale + zp <= qmax``, in fewer passes over ``x``:

    - ``v = x / scale`` then ``v += zp`` in place (adding a +0 zero point still turns -0.0 into
      +0.0, as in the reference);
    - ``round(clamp(v)) == clamp(round(v))`` bit for bit for integer bounds ``qmin < 0 < qmax``
      (round is monotone and fixes integers; with a 0 bound the signs of zero differ), and
      ``clamp(v) == v`` exactly where ``qmin <= v <= qmax`` (never for NaN), so one clamp gives
      both the code and the STE mask;
    - the mask is float32, not bool: ``grad * mask`` has the same bits as ``grad * bool_mask``
      (bool promotes to 0.0 / 1.0) and runs about 4x faster on CPU, and so does ``eq`` into it.
    """
    v = x / scale
    if zero_point.dim() == 0 or zero_point.shape == scale.shape:
        v.add_(zero_point)  # in place: on CPU ~6x faster than a broadcasting out-of-place add
    else:
        v = v + zero_point
    if not qmin < 0 < qmax:
        # A 0 bound (unsigned grids): clamp(round(-0.3), 0, 15) is -0.0 (torch.clamp keeps an
        # input equal to the bound), round(clamp(-0.3, 0, 15)) is +0.0; keep the reference order.
        code = torch.round(v).clamp_(qmin, qmax)
        inside = torch.eq(v.clamp(qmin, qmax), v, out=v) if mask else None
        return code.sub_(zero_point), inside
    code = v.clamp(qmin, qmax)
    # The mask overwrites v (same shape, element by element), saving an allocation: fresh large
    # CPU buffers cost page faults comparable to a pass.
    inside = torch.eq(code, v, out=v) if mask else None
    return code.round_().sub_(zero_point), inside


def _small_ste(x: torch.Tensor, scale: torch.Tensor, zero_point: torch.Tensor,
               qmin: int, qmax: int) -> torch.Tensor:
    """Fake quantization of a small ``x`` (requiring grad) from C++ autograd nodes only.

    ``x * inside`` makes the autograd node (``MulBackward0``: ``grad * inside``, the clipped STE);
    its values are then overwritten with ``x_q`` through a detached alias, which is safe because
    ``MulBackward0`` saves ``inside``, not its output.
    """
    code, inside = _shifted_codes(x.detach(), scale, zero_point, qmin, qmax)
    out = x.mul(inside)
    torch.mul(code, scale, out=out.detach())
    return out


def _fake_quant_rows(x, scale, zero_point, qmin, qmax, out, mask):  # pragma: no cover (numba)
    """Numba kernel body (see :func:`_rows_kernel`): the formula and the 1/0 STE mask in one pass.

    Args: ``x``, ``out``, ``mask``: (G, n) float32, C-contiguous; ``scale``, ``zero_point``: (G,)
    float32 (one per row group); ``qmin``, ``qmax``: float32. All arithmetic is float32, in the
    reference's order (no fastmath: IEEE division, no contraction); NaN stays NaN, mask 0.
    """
    for r in range(x.shape[0]):
        s = scale[r]
        z = zero_point[r]
        for c in range(x.shape[1]):
            v = x[r, c] / s + z
            code = np.rint(v)
            # torch.clamp: the bound only when strictly beyond it (keeps -0.0 at a 0 bound, NaN).
            if code < qmin:
                code = qmin
            elif code > qmax:
                code = qmax
            out[r, c] = (code - z) * s
            mask[r, c] = np.float32(1.0) if (v >= qmin and v <= qmax) else np.float32(0.0)


def _fake_quant_rows_reference(x: np.ndarray, scale: np.ndarray, zero_point: np.ndarray,
                               qmin: np.float32, qmax: np.float32) -> tuple[np.ndarray, np.ndarray]:
    """Plain numpy reference of :func:`_fake_quant_rows`: (out, mask), each (G, n) float32."""
    with np.errstate(all="ignore"):  # inf / NaN inputs are part of the contract
        v = x / scale[:, None] + zero_point[:, None]
        code = np.clip(np.rint(v), qmin, qmax)
        return (code - zero_point[:, None]) * scale[:, None], ((v >= qmin) & (v <= qmax)).astype(np.float32)


_ROWS_KERNEL = None


def _rows_kernel():
    """The compiled :func:`_fake_quant_rows` (numba imported and compiled on first use)."""
    global _ROWS_KERNEL
    if _ROWS_KERNEL is None:
        from numba import njit

        _ROWS_KERNEL = njit(cache=True, nogil=True)(_fake_quant_rows)
    return _ROWS_KERNEL


def _kernel_groups(x: torch.Tensor, scale: torch.Tensor, zero_point: torch.Tensor) -> int:
    """Row groups G for the kernel (1 per tensor, rows per channel), 0 when it does not apply."""
    if x.device.type != "cpu" or x.dtype != torch.float32 or not x.is_contiguous() or x.dim() == 0:
        return 0
    n = scale.numel()
    if (scale.dtype != torch.float32 or zero_point.dtype != torch.float32 or zero_point.numel() != n
            or scale.dim() > x.dim() or zero_point.dim() > x.dim()):
        return 0
    if n == 1:
        return 1
    per_row = (n,) + (1,) * (x.dim() - 1)
    return n if x.shape[0] == n and scale.shape == per_row and zero_point.shape == per_row else 0


class _FakeQuantSTE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, scale, zero_point, qmin, qmax):
        groups = _kernel_groups(x, scale, zero_point)
        if groups:
            out, inside = torch.empty_like(x), torch.empty_like(x)
            _rows_kernel()(x.detach().reshape(groups, -1).numpy(),
                           scale.detach().reshape(groups).contiguous().numpy(),
                           zero_point.detach().reshape(groups).contiguous().numpy(),
                           np.float32(qmin), np.float32(qmax),
                           out.view(groups, -1).numpy(), inside.view(groups, -1).numpy())
        else:
            code, inside = _shifted_codes(x, scale, zero_point, qmin, qmax)
            out = code.mul_(scale)
        ctx.save_for_backward(inside)
        return out

    @staticmethod
    def backward(ctx, grad):
        (inside,) = ctx.saved_tensors
        return grad * inside, None, None, None, None


def _fake_quant_ste(x: torch.Tensor, scale: torch.Tensor, zero_point: torch.Tensor,
                    qmin: int, qmax: int) -> torch.Tensor:
    """Fake quantization with the clipped STE; no gradient to ``scale`` / ``zero_point``.

    Small tensors (per-step activations: Python ``autograd.Function`` overhead dominates) get
    C++ autograd nodes (:func:`_small_ste`); large ones (weights, whole-sequence inputs: passes
    dominate) one Python ``autograd.Function``, which needs no extra pass.
    """
    if scale.requires_grad or zero_point.requires_grad:  # buffers never do: no detach op
        scale, zero_point = scale.detach(), zero_point.detach()
    if not (x.requires_grad and torch.is_grad_enabled()):
        return _shifted_codes(x.detach(), scale, zero_point, qmin, qmax, mask=False)[0].mul_(scale)
    if x.numel() >= _SMALL_NUMEL:
        return _FakeQuantSTE.apply(x, scale, zero_point, qmin, qmax)
    return _small_ste(x, scale, zero_point, qmin, qmax)


def fake_quant(x: torch.Tensor, scale: torch.Tensor, zero_point: torch.Tensor | float,
               qmin: int, qmax: int) -> torch.Tensor:
    """Quantize-dequantize with the clipped straight-through estimator (no grad to scale).

    Codes are ``clamp(round(x / scale + zp))``: the zero point is added before rounding, which
    differs from ``round(x / scale) + zp`` at ties when zp is odd (see ``quantize_codes``).
    """
    if not torch.is_tensor(zero_point):
        zero_point = torch.tensor(float(zero_point))
    return _fake_quant_ste(x, scale, zero_point, qmin, qmax)


def _reduce_to(g: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """Sum a broadcast gradient back to ``shape`` (a per-group parameter along dim 0)."""
    n = math.prod(shape)
    if n == 1:
        return g.sum().reshape(shape)
    return g.reshape(n, -1).sum(dim=1).reshape(shape)


class _PACT(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, alpha, alpha_b, qmin, qmax, two_sided):
        # alpha_b: alpha broadcast to x's group layout; scale = alpha / qmax in float32.
        scale = alpha_b / qmax
        out = (x / scale).round_().clamp_(qmin, qmax).mul_(scale)
        # Float 1/0 masks (same products as bool masks, ~4x faster on CPU; see _shifted_codes).
        if two_sided:
            beyond = x.abs()
            torch.ge(beyond, alpha_b, out=beyond)
        else:
            beyond = torch.ge(x, alpha_b, out=torch.empty_like(x))
        ctx.save_for_backward(beyond, x)
        ctx.two_sided = two_sided
        ctx.alpha_shape = alpha.shape
        return out

    @staticmethod
    def backward(ctx, grad):
        beyond, x = ctx.saved_tensors
        if ctx.two_sided:
            g_x = grad * (1 - beyond)
            g_alpha_elem = grad * torch.sign(x) * beyond
        else:
            # ~(beyond | x < 0) as 1/0 (1 for NaN x, as in the bool form).
            g_x = grad * (1 - torch.maximum(beyond, torch.lt(x, 0, out=torch.empty_like(x))))
            g_alpha_elem = grad * beyond
        return g_x, _reduce_to(g_alpha_elem, ctx.alpha_shape), None, None, None, None


def pact_quant(x: torch.Tensor, alpha: torch.Tensor, bits: int, two_sided: bool,
               narrow_range: bool = True) -> torch.Tensor:
    """PACT (Choi et al. 2018) with learnable clip ``alpha`` (shape () or (groups,) over dim 0).

    One-sided: clip to [0, alpha], unsigned grid 0..2**b-1. Two-sided: clip to [-alpha, alpha],
    symmetric grid (-2**(b-1)+1 if narrow_range)..2**(b-1)-1.
    """
    if two_sided:
        qmax = 2 ** (bits - 1) - 1
        qmin = -qmax if narrow_range else -qmax - 1
    else:
        qmin, qmax = 0, 2 ** bits - 1
    alpha_b = _broadcast_groups(alpha, x)
    return _PACT.apply(x, alpha, alpha_b, qmin, qmax, two_sided)


class _LSQ(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, step, step_b, qmin, qmax, grad_scale):
        v = x / step_b
        r = torch.round(v)
        ctx.save_for_backward(v, r)
        ctx.q = (qmin, qmax, grad_scale)
        ctx.step_like = step.shape
        return r.clamp(qmin, qmax).mul_(step_b)

    @staticmethod
    def backward(ctx, grad):
        v, r = ctx.saved_tensors
        qmin, qmax, g = ctx.q
        below, above = v < qmin, v > qmax
        inside = ~(below | above)
        d_step = torch.where(below, torch.full_like(v, qmin),
                             torch.where(above, torch.full_like(v, qmax), r - v))
        g_step = _reduce_to(grad * d_step, ctx.step_like) * g
        return grad * inside, g_step, None, None, None, None


def lsq_quant(x: torch.Tensor, step: torch.Tensor, qmin: int, qmax: int,
              grad_scale: float | None = None) -> torch.Tensor:
    """LSQ (Esser et al. 2020): learned step ``step`` (shape () or (groups,) over dim 0).

    ``grad_scale`` defaults to ``1 / sqrt(n * qmax)`` with ``n = x.numel() / step.numel()``.
    """
    if grad_scale is None:
        grad_scale = lsq_grad_scale(x.numel() // max(step.numel(), 1), qmax)
    return _LSQ.apply(x, step, _broadcast_groups(step, x), qmin, qmax, grad_scale)


def lsq_grad_scale(numel: int, qmax: int) -> float:
    """Esser et al.'s step-size gradient scale ``1 / sqrt(numel * Qp)``."""
    return 1.0 / math.sqrt(max(numel, 1) * qmax)


def _cast_ste(x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """``x.to(dtype).to(x.dtype)`` with an identity gradient.

    The gradient comes from ``x.clone()`` (C++ ``CloneBackward0``, which saves nothing); its values
    are replaced through a detached alias. A differentiable ``.to(dtype)`` would round the
    gradient to ``dtype`` on the way back.
    """
    if not (x.requires_grad and torch.is_grad_enabled()):
        return x.detach().to(dtype).to(x.dtype)
    out = x.clone()
    values = out.detach()
    values.copy_(values.half() if dtype is torch.float16 else values.to(dtype))
    return out


def float_cast(x: torch.Tensor, precision: str) -> torch.Tensor:
    """Round trip through a float format (fp16, bf16, fp8 e4m3) with an identity gradient."""
    dtype = FLOAT_DTYPES[precision]
    if dtype == x.dtype:
        return x
    return _cast_ste(x, dtype)


def _broadcast_groups(p: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Shape a per-group parameter (groups,) along dim 0 of ``x`` for broadcasting."""
    n = p.numel()
    if n == 1:
        return p.reshape(())
    rows = x.shape[0]
    if rows % n:
        raise ValueError(f"cannot split {rows} rows into {n} groups")
    if rows != n:
        p = p.repeat_interleave(rows // n)
    return p.reshape((rows,) + (1,) * (x.dim() - 1))


# --------------------------------------------------------------------------------------------
# Modules


class Quantizer(nn.Module):
    """Base of the slot quantizers.

    Attributes:
        spec: the ``QuantSpec`` it implements.
        role: the tensor role (``weight``, ``input``, ...).
        name: dotted module name + slot, for messages and the export.
    """

    def __init__(self, spec: QuantSpec, role: str, name: str = "") -> None:
        super().__init__()
        self.spec, self.role, self.name = spec, role, name

    def extra_repr(self) -> str:
        s = self.spec
        return f"{self.role}: {s.precision} {s.quantizer} {s.granularity}"


class FloatQuantizer(Quantizer):
    """A float precision: identity for fp32, else a cast round trip."""

    @functools.cached_property
    def _dtype(self) -> torch.dtype | None:
        # Cached on first use (not in __init__), so systems pickled before it existed still load.
        return None if self.spec.precision == "fp32" else FLOAT_DTYPES[self.spec.precision]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dtype = self._dtype
        if dtype is None or dtype == x.dtype:
            return x
        return _cast_ste(x, dtype)


class IntQuantizer(Quantizer):
    """An integer quantizer for one slot (weights: one scale per group of rows; activations: per tensor).

    States:
        - weights (``is_weight``): ``sawb``/``max``/``minmax`` recompute the scale from the weight
          at every forward until :meth:`freeze`; frozen, they use the stored ``scale``.
        - activations with observers (``minmax``, ``max``): while ``observing`` the input passes
          through unchanged and the running min/max is updated; in training (QAT) the running
          range keeps being updated until frozen.
        - learned (``pact``, ``pact2``, ``lsq``): ``alpha`` / ``step`` are ``nn.Parameter``s,
          initialized from the first tensor seen (or from calibration): PACT alpha = max|x|
          (max x for one-sided), LSQ step = 2 * mean|x| / sqrt(qmax).
        - ``fixed``: scale from ``spec.fixed_range``.

    Buffers ``scale`` and ``zero_point`` (shape (groups,)) always hold the parameters the last
    forward used; the export reads them. Scales computed from statistics are rounded to
    ``scale_precision`` (the policy's storage precision of scales), so that stored scales
    reproduce the fake-quantized values exactly.
    """

    scale_precision = "fp32"

    def __init__(self, spec: QuantSpec, role: str, name: str = "", groups: int = 1,
                 is_weight: bool = False) -> None:
        super().__init__(spec, role, name)
        q = spec.quantizer
        if not is_weight and spec.granularity != "tensor":
            raise ConfigError(f"{name}: activation role {role!r} supports granularity 'tensor' only, "
                              f"got {spec.granularity!r}")
        if q == "pact" and is_weight:
            raise ConfigError(f"{name}: one-sided 'pact' cannot quantize signed weights; use 'pact2'")
        if q == "lsq" and not spec.symmetric:
            raise ConfigError(f"{name}: 'lsq' is implemented for symmetric grids only")
        if q == "sawb" and spec.bits not in SAWB_COEFFS:
            raise ConfigError(f"{name}: SAWB has coefficients for {sorted(SAWB_COEFFS)} bits only, "
                              f"not {spec.bits}")
        self.groups, self.is_weight = groups, is_weight
        if q == "pact":
            self.qmin, self.qmax = 0, 2 ** spec.bits - 1
        else:
            self.qmin, self.qmax = spec.qmin, spec.qmax
        self.register_buffer("scale", torch.ones(groups))
        self.register_buffer("zero_point", torch.zeros(groups))
        self.register_buffer("lo", torch.full((groups,), math.inf))
        self.register_buffer("hi", torch.full((groups,), -math.inf))
        self.register_buffer("initialized", torch.tensor(q == "fixed"))
        self.observing = False
        self.frozen = False
        if q in ("pact", "pact2"):
            self.alpha = nn.Parameter(torch.ones(groups))
        elif q == "lsq":
            self.step = nn.Parameter(torch.ones(groups))
        if q == "fixed":
            lo, hi = spec.fixed_range
            s, z = scale_from_range(torch.full((groups,), lo), torch.full((groups,), hi),
                                    self.qmin, self.qmax, spec.symmetric)
            self.scale.copy_(s)
            self.zero_point.copy_(z)
        self._cache: tuple | None = None

    # ---- state transitions
    def freeze(self) -> None:
        """Stop recomputing / observing; use the stored (or learned) parameters from now on."""
        if not self.initialized:
            raise RuntimeError(f"{self.name}: quantizer never saw data (calibrate it first)")
        with torch.no_grad():
            # Learned clips: the frozen scale is exactly the one the learned forward used.
            if self.spec.quantizer in ("pact", "pact2"):
                self.scale.copy_((self.alpha.detach() / self.qmax).reshape(-1))
            elif self.spec.quantizer == "lsq":
                self.scale.copy_(self.step.detach().reshape(-1))
        self.observing = False
        self.frozen = True
        self._cache = None

    def _observe(self, x: torch.Tensor) -> None:
        with torch.no_grad():
            v = _groups_view(x.detach(), self.groups) if self.is_weight else x.detach().reshape(1, -1)
            self.lo.copy_(torch.minimum(self.lo, v.amin(dim=1)))
            self.hi.copy_(torch.maximum(self.hi, v.amax(dim=1)))
            self._update_scale_from_range()
            self.initialized.fill_(True)

    def _update_scale_from_range(self) -> None:
        sym = self.spec.symmetric or self.spec.quantizer == "max"
        s, z = scale_from_range(self.lo, self.hi, self.qmin, self.qmax, sym)
        self.scale.copy_(self._round_scale(s))
        self.zero_point.copy_(z)

    def _round_scale(self, s: torch.Tensor) -> torch.Tensor:
        if self.scale_precision == "fp32":
            return s
        r = s.to(FLOAT_DTYPES[self.scale_precision]).float()
        return torch.where(r > 0, r, s)

    def _init_learned(self, x: torch.Tensor) -> None:
        with torch.no_grad():
            v = _groups_view(x.detach(), self.groups) if self.is_weight else x.detach().reshape(1, -1)
            q = self.spec.quantizer
            if q == "pact":
                a = _safe_clip(v.amax(dim=1), torch.zeros(self.groups))
                self.alpha.copy_(a)
            elif q == "pact2":
                self.alpha.copy_(_safe_clip(v.abs().amax(dim=1), torch.zeros(self.groups)))
            elif q == "lsq":
                s = 2 * v.abs().mean(dim=1) / math.sqrt(self.qmax)
                self.step.copy_(_safe_clip(s, torch.zeros(self.groups)))
            self.initialized.fill_(True)

    def calibrate(self, x: torch.Tensor) -> None:
        """Update observers / initialize learned clips from ``x`` without quantizing."""
        q = self.spec.quantizer
        if q in ("minmax", "max"):
            self._observe(x)
        elif q in ("pact", "pact2", "lsq"):
            # PACT alpha from calibration: the running max over all calibration tensors.
            self._observe(x)
            with torch.no_grad():
                if q == "pact":
                    self.alpha.copy_(_safe_clip(self.hi, torch.zeros(self.groups)))
                elif q == "pact2":
                    self.alpha.copy_(_safe_clip(torch.maximum(self.lo.abs(), self.hi.abs()),
                                                torch.zeros(self.groups)))
                else:
                    self._init_learned(x)
        elif q == "sawb":
            self._weight_stats(x)

    def _weight_stats(self, w: torch.Tensor) -> None:
        q = self.spec.quantizer
        with torch.no_grad():
            if q == "sawb":
                clip = sawb_clip(w, self.spec.bits, per_channel=False, groups=self.groups).reshape(-1)
                self.scale.copy_(self._round_scale(clip / self.qmax))
                self.zero_point.zero_()
            else:
                v = _groups_view(w.detach(), self.groups)
                self.lo.copy_(v.amin(dim=1))
                self.hi.copy_(v.amax(dim=1))
                self._update_scale_from_range()
            self.initialized.fill_(True)

    # ---- forward
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.observing and not self.is_weight:
            self.calibrate(x)
            return x
        if self.frozen:
            if self.is_weight and not torch.is_grad_enabled():
                # Frozen weights in inference: the fake-quantized weight is the same every call.
                key = (x.data_ptr(), x._version, tuple(x.shape))
                if self._cache is not None and self._cache[0] == key:
                    return self._cache[1]
                out = self._fixed(x)
                self._cache = (key, out)
                return out
            return self._fixed(x)
        q = self.spec.quantizer
        if q in ("pact", "pact2", "lsq"):
            if not self.initialized:
                self._init_learned(x)
            return self._learned(x)
        if self.is_weight and q in ("sawb", "minmax", "max"):
            self._weight_stats(x)
        elif q in ("minmax", "max") and (self.training or not self.initialized):
            self._observe(x)
        return self._fixed(x)

    def _fixed(self, x: torch.Tensor) -> torch.Tensor:
        if self.is_weight:
            s, z = _broadcast_groups(self.scale, x), _broadcast_groups(self.zero_point, x)
        elif x.dim():
            s, z = self.scale, self.zero_point  # shape (1,): broadcasts like shape ()
        else:
            s, z = self.scale.reshape(()), self.zero_point.reshape(())
        return _fake_quant_ste(x, s, z, self.qmin, self.qmax)

    def _learned(self, x: torch.Tensor) -> torch.Tensor:
        q = self.spec.quantizer
        if q == "lsq":
            n = x.numel() // self.groups
            out = lsq_quant(x, self.step, self.qmin, self.qmax, lsq_grad_scale(n, self.qmax))
            with torch.no_grad():
                self.scale.copy_(self.step.detach())
            return out
        two_sided = q == "pact2"
        alpha = self.alpha if self.groups > 1 else self.alpha.reshape(())
        out = pact_quant(x, alpha, self.spec.bits, two_sided, narrow_range=self.qmin == -self.qmax)
        with torch.no_grad():
            self.scale.copy_((self.alpha.detach() / self.qmax).reshape(-1))
        return out

    # ---- for the export
    def codes(self, x: torch.Tensor) -> torch.Tensor:
        """Integer codes of ``x`` under the current parameters (int64)."""
        with torch.no_grad():
            if self.is_weight:
                s, z = _broadcast_groups(self.scale, x), _broadcast_groups(self.zero_point, x)
            else:
                s, z = self.scale.reshape(()), self.zero_point.reshape(())
            return quantize_codes(x.detach(), s, z, self.qmin, self.qmax).to(torch.int64)


def make_quantizer(spec: QuantSpec, role: str, name: str = "", groups: int = 1,
                   is_weight: bool = False) -> Quantizer:
    """The slot quantizer for ``spec``: :class:`FloatQuantizer` or :class:`IntQuantizer`."""
    if not spec.is_int:
        return FloatQuantizer(spec, role, name)
    return IntQuantizer(spec, role, name, groups=groups, is_weight=is_weight)
