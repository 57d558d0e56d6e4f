"""Integer GEMMs of asymmetric operands (zero points), exact, with accumulator-overflow checks.

An asymmetric quantizer stores ``code = round(x / s) + z``; the GEMM the model needs is over
``code - z``. Expanding the product keeps the matrix engine on the raw codes (which fit the 4- or
8-bit datapath; ``code - z`` may not) and moves the zero points into per-row and per-column
corrections, the standard form::

    acc[m, n] = sum_k (a[m, k] - za) (w[n, k] - zw[n])
              = raw[m, n] - zw[n] * sa[m] - za * sw[n] + K * za * zw[n]

    raw = sum_k a[m, k] w[n, k]   (the symmetric kernels: gemm_int8 / gemm_w4a8 / gemm_int4)
    sa  = sum_k a[m, k]           (one per input row, computed per call)
    sw  = sum_k w[n, k]           (one per weight row, computed once: :class:`ZeroPointWeights`)

All terms are int64 in the correction kernel, so the result is exact; two accumulators are checked
against the ``acc_bits`` range: the raw sum (the engine's accumulator, checked by the symmetric
kernel: it raises, as it does for symmetric operands) and the corrected sum (raised or saturated
as ``on_overflow`` says). :func:`gemm_zp_ref` is the plain numpy reference: an int64 matmul of
``(a - za) @ (w - zw).T`` with the same checks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from hwsim.kernels.epilogue import acc_range
from hwsim.kernels.gemm import (PackedWeights, gemm_int4, gemm_int8, gemm_w4a8, prepack_weights,
                                prepack_weights_int4)
from hwsim.kernels.pack import as_int8, pack_int4
from hwsim.kernels.reference import gemm_ref, overflow_message

__all__ = ["ZeroPointWeights", "prepare_zp_weights", "gemm_zp", "gemm_zp_ref"]


@dataclass(frozen=True, eq=False)
class ZeroPointWeights:
    """Weights with zero points, prepared once.

    Attributes:
        packed: :class:`PackedWeights` of the raw codes (N, K).
        bits: 4 (packed INT4 codes, -8..7) or 8.
        zero_point: int64 (N,), the zero point of each row.
        row_sums: int64 (N,), ``sum_k w[n, k]`` of the raw codes.
    """

    packed: PackedWeights
    bits: int
    zero_point: np.ndarray
    row_sums: np.ndarray


def prepare_zp_weights(codes: np.ndarray, zero_point, bits: int, *, path: str | None = None
                       ) -> ZeroPointWeights:
    """Prepare raw weight codes (N, K) int8 (INT4 codes within -8..7 when ``bits`` is 4) and
    their zero points (scalar or (N,)) for :func:`gemm_zp`."""
    codes = np.ascontiguousarray(as_int8(codes, "w"))
    if codes.ndim != 2:
        raise ValueError(f"w: expected 2 axes (N, K), got shape {codes.shape}")
    n, k = codes.shape
    zp = _zero_points(zero_point, n, "w_zero_point")
    if bits == 4:
        if codes.size and (codes.min() < -8 or codes.max() > 7):
            raise ValueError("w: INT4 codes must lie within -8..7")
        packed = prepack_weights_int4(pack_int4(codes), k, path=path)
    elif bits == 8:
        packed = prepack_weights(codes, path=path)
    else:
        raise ValueError(f"bits: expected 4 or 8, got {bits}")
    return ZeroPointWeights(packed, bits, zp, codes.astype(np.int64).sum(axis=1))


def _zero_points(zp, n: int, name: str) -> np.ndarray:
    arr = np.asarray(zp)
    if arr.size and not np.array_equal(arr, np.rint(arr)):
        raise ValueError(f"{name}: zero points must be integers")
    arr = arr.astype(np.int64)
    if arr.ndim == 0 or arr.size == 1:
        return np.full(n, arr.reshape(-1)[0] if arr.size else 0, np.int64)
    if arr.shape != (n,):
        raise ValueError(f"{name}: expected a scalar or shape ({n},), got {arr.shape}")
    return np.ascontiguousarray(arr)


@njit(cache=True, nogil=True)
def _correct(raw, a, za, zw, sw, lo, hi, sat, out, ovf):  # pragma: no cover (numba)
    """out[m, n] = raw - zw[n] sa[m] - za sw[n] + K za zw[n] in int64, checked against [lo, hi].

    ``ovf`` (4,) int64 receives (1, m, n, value) of the first out-of-range sum in row-major order
    when ``sat`` is false; with ``sat`` the sum is clamped.
    """
    m_, n_ = raw.shape
    k_ = a.shape[1]
    for m in range(m_):
        sa = np.int64(0)
        for kk in range(k_):
            sa += np.int64(a[m, kk])
        row_term = np.int64(za) * np.int64(k_)
        for n in range(n_):
            v = (np.int64(raw[m, n]) - zw[n] * sa - np.int64(za) * sw[n] + row_term * zw[n])
            if v < lo or v > hi:
                if sat:
                    v = lo if v < lo else hi
                elif ovf[0] == 0:
                    ovf[0] = 1
                    ovf[1] = m
                    ovf[2] = n
                    ovf[3] = v
            out[m, n] = v


def gemm_zp(a: np.ndarray, w: ZeroPointWeights, a_zero_point: int, *, a_bits: int = 8,
            acc_bits: int = 32, on_overflow: str = "raise", path: str | None = None) -> np.ndarray:
    """``sum_k (a[m, k] - a_zero_point) (w[n, k] - w.zero_point[n])`` (M, N) int32, exactly.

    Args:
        a: int8 activation codes (M, K) (within -8..7 when ``a_bits`` is 4, then run packed).
        w: :func:`prepare_zp_weights` output.
        a_zero_point: integer zero point of the activations.
        a_bits: 4 or 8: the activation datapath (INT4 x INT4 runs ``gemm_int4``).
        acc_bits: accumulator width in bits (8..32), for the raw and the corrected sums.
        on_overflow: "raise" (OverflowError naming the output and value) or "saturate" (clamp
            the corrected sum; the raw sum always raises).
        path: kernel path of the raw GEMM ("auto" | "vnni" | "portable").

    Returns:
        (M, N) int32.
    """
    a = np.ascontiguousarray(as_int8(a, "a"))
    if a.ndim != 2 or a.shape[1] != w.packed.shape[1]:
        raise ValueError(f"gemm_zp: a (M, K) and w (N, K) disagree: {a.shape} vs {w.packed.shape}")
    if on_overflow not in ("raise", "saturate"):
        raise ValueError(f"on_overflow: expected 'raise' or 'saturate', got {on_overflow!r}")
    za = int(a_zero_point)
    if za != a_zero_point:
        raise ValueError(f"a_zero_point: must be an integer, got {a_zero_point!r}")
    lo, hi = acc_range(acc_bits)
    k = a.shape[1]
    if w.bits == 4 and a_bits == 4:
        if a.size and (a.min() < -8 or a.max() > 7):
            raise ValueError("a: INT4 codes must lie within -8..7")
        raw = gemm_int4(pack_int4(a), w.packed, k, acc_bits=acc_bits, path=path)
    elif w.bits == 4:
        raw = gemm_w4a8(a, w.packed, acc_bits=acc_bits, path=path)
    else:
        raw = gemm_int8(a, w.packed, acc_bits=acc_bits, path=path)
    out = np.empty(raw.shape, np.int32)
    ovf = np.zeros(4, np.int64)
    _correct(raw, a, za, w.zero_point, w.row_sums, lo, hi, on_overflow == "saturate", out, ovf)
    if ovf[0]:
        raise OverflowError(overflow_message("gemm_zp", (int(ovf[1]), int(ovf[2])), int(ovf[3]), acc_bits))
    return out


def gemm_zp_ref(a: np.ndarray, w: np.ndarray, a_zero_point: int, w_zero_point, *,
                acc_bits: int = 32, on_overflow: str = "raise") -> np.ndarray:
    """Numpy reference of :func:`gemm_zp`: int64 ``(a - za) @ (w - zw).T`` with the same checks.

    Args:
        a: integer codes (M, K). w: integer codes (N, K). a_zero_point: integer.
        w_zero_point: scalar or (N,) integers.
    """
    lo, hi = acc_range(acc_bits)
    a64, w64 = np.asarray(a).astype(np.int64), np.asarray(w).astype(np.int64)
    gemm_ref(a64, w64, acc_bits=acc_bits, kernel="gemm_int8")  # the raw accumulator must fit
    zw = _zero_points(w_zero_point, w64.shape[0], "w_zero_point")
    acc = (a64 - int(a_zero_point)) @ (w64 - zw[:, None]).T
    bad = (acc < lo) | (acc > hi)
    if bad.any():
        if on_overflow == "raise":
            m, n = np.argwhere(bad)[0]
            raise OverflowError(overflow_message("gemm_zp", (int(m), int(n)), int(acc[m, n]), acc_bits))
        acc = np.clip(acc, lo, hi)
    return acc.astype(np.int32)
