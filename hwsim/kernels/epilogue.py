"""GEMM epilogues: integer requantization and float dequantization, fused into the kernels.

Requantization (exact formula, shared by the Numba kernels and the numpy reference)::

    v   = fl32(acc + bias[n])                 # int64 sum, then rounded to float32 (RNE)
    r   = rint(fl32(v * scale[n]))            # float32 product, round half to even
    out = clamp(r + zero_point, qmin, qmax)

``fl32`` is IEEE round-to-nearest-even to float32. This is what a fake-quantized torch model
computes with ``torch.round((acc + bias).float() * scale)`` on float32 tensors, so the integer
kernels reproduce it bit for bit (note that ``acc + bias`` beyond 2**24 in magnitude is rounded
by the float32 conversion, as in torch).

Dequantization: ``out = fl32(fl32(acc) * scale[n]) (+ bias[n], float32 add)`` with ``scale`` the
product of activation and weight scales, computed by the caller in float32
(``np.float32(scale_a) * scale_w``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

__all__ = ["Requant", "Dequant", "acc_range"]


def acc_range(acc_bits: int) -> tuple[int, int]:
    """Signed range (lo, hi) of an accumulator of ``acc_bits`` bits (8..32)."""
    if not 8 <= int(acc_bits) <= 32:
        raise ValueError(f"acc_bits: must be within 8..32, got {acc_bits}")
    return -(1 << (acc_bits - 1)), (1 << (acc_bits - 1)) - 1


@dataclass(frozen=True)
class Requant:
    """Requantize the INT32 accumulator to a ``bits``-wide integer.

    Attributes:
        scale: float scale, per tensor (scalar) or per output channel (N,); used as float32.
        bits: output bit width (2..32).
        signed: signed output (-2**(bits-1)..2**(bits-1)-1) or unsigned (0..2**bits-1).
        narrow: drop the most negative value (e.g. -7..7 for signed 4 bits).
        zero_point: integer added after rounding.
        bias: optional int32 bias (N,), added to the accumulator before scaling.
    """

    scale: np.ndarray | float
    bits: int = 8
    signed: bool = True
    narrow: bool = False
    zero_point: int = 0
    bias: np.ndarray | None = None

    @property
    def qrange(self) -> tuple[int, int]:
        """(qmin, qmax) of the output."""
        if not 2 <= self.bits <= 32:
            raise ValueError(f"Requant.bits: must be within 2..32, got {self.bits}")
        if self.signed:
            return -(1 << (self.bits - 1)) + int(self.narrow), (1 << (self.bits - 1)) - 1
        return int(self.narrow), (1 << self.bits) - 1

    @property
    def out_dtype(self) -> np.dtype:
        """Smallest numpy integer dtype holding the output range."""
        for dt in ((np.int8, np.int16, np.int32) if self.signed else (np.uint8, np.uint16, np.int64)):
            info = np.iinfo(dt)
            if info.min <= self.qrange[0] and self.qrange[1] <= info.max:
                return np.dtype(dt)
        return np.dtype(np.int64)


@dataclass(frozen=True)
class Dequant:
    """Convert the INT32 accumulator to float32.

    Attributes:
        scale: float32 scale, per tensor or per output channel (N,), typically
            ``np.float32(scale_a) * scale_w``.
        bias: optional float32 bias (N,), added after scaling.
    """

    scale: np.ndarray | float
    bias: np.ndarray | None = None


def _per_channel(x, n: int, dtype, name: str) -> np.ndarray:
    arr = np.asarray(x, dtype=dtype)
    if arr.ndim == 0 or arr.size == 1:
        return np.full(n, arr.reshape(-1)[0] if arr.size else 0, dtype)
    if arr.shape != (n,):
        raise ValueError(f"{name}: expected a scalar or shape ({n},), got {arr.shape}")
    return np.ascontiguousarray(arr)


def kernel_params(epi: Requant | Dequant | None, n: int) -> tuple:
    """Flatten an epilogue into the plain arrays and scalars the Numba kernels take.

    Returns:
        (mode, scale float32 (N,), ibias int64 (N,), fbias float32 (N,), zp, qmin, qmax), mode
        0 = raw int32, 1 = requant, 2 = dequant.
    """
    zeros_i = np.zeros(n, np.int64)
    zeros_f = np.zeros(n, np.float32)
    if epi is None:
        return 0, zeros_f, zeros_i, zeros_f, 0, 0, 0
    if isinstance(epi, Requant):
        scale = _per_channel(epi.scale, n, np.float32, "Requant.scale")
        bias = zeros_i if epi.bias is None else _per_channel(epi.bias, n, np.int64, "Requant.bias")
        if epi.bias is not None:
            b = np.asarray(epi.bias)
            if b.size and (b.min() < np.iinfo(np.int32).min or b.max() > np.iinfo(np.int32).max):
                raise ValueError("Requant.bias: must fit in int32")
        qmin, qmax = epi.qrange
        return 1, scale, bias, zeros_f, int(epi.zero_point), qmin, qmax
    if isinstance(epi, Dequant):
        scale = _per_channel(epi.scale, n, np.float32, "Dequant.scale")
        fb = zeros_f if epi.bias is None else _per_channel(epi.bias, n, np.float32, "Dequant.bias")
        return 2, scale, zeros_i, fb, 0, 0, 0
    raise TypeError(f"epilogue: expected Requant, Dequant or None, got {type(epi).__name__}")


@njit(inline="always", cache=True)
def requant_one(acc, bias, scale, zp, qmin, qmax):
    """Requantize one accumulator (see the module docstring); returns int64."""
    v = np.float32(np.int64(acc) + bias)
    r = np.rint(v * scale)
    lo = np.float32(qmin - zp)
    hi = np.float32(qmax - zp)
    # Clamp in float first so huge products never reach an undefined float->int conversion.
    if r < lo:
        r = lo
    if r > hi:
        r = hi
    q = np.int64(r) + zp
    return min(max(q, qmin), qmax)


@njit(inline="always", cache=True)
def dequant_one(acc, scale, bias):
    """Dequantize one accumulator: fl32(fl32(acc) * scale) + bias (float32)."""
    return np.float32(np.float32(acc) * scale) + bias


def apply_epilogue_ref(acc: np.ndarray, epi: Requant | Dequant | None) -> np.ndarray:
    """Numpy reference of the epilogue on an int64/int32 accumulator (M, N)."""
    n = acc.shape[-1]
    mode, scale, ibias, fbias, zp, qmin, qmax = kernel_params(epi, n)
    if mode == 0:
        return acc.astype(np.int32)
    if mode == 2:
        return (acc.astype(np.float32) * scale) + fbias
    v = (acc.astype(np.int64) + ibias).astype(np.float32)
    r = np.rint(v * scale)
    r = np.clip(r, np.float32(qmin - zp), np.float32(qmax - zp))
    q = np.clip(r.astype(np.int64) + zp, qmin, qmax)
    return q.astype(epi.out_dtype)
