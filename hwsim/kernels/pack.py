"""INT4 packing: two's-complement nibbles, two per byte along the last axis.

Layout (the one every kernel in this package reads, and the export file stores: defined once in
``models.quant.packing``): element ``k`` of a row lives in byte ``k // 2``; even ``k`` in the low
nibble (bits 0-3), odd ``k`` in the high nibble (bits 4-7). An odd ``K`` is padded with a zero
nibble. Example: ``[1, -1, 7] -> [0xF1, 0x07]``. These wrappers add the kernels' argument checks.
:func:`unpack_int4` is numpy (``models.quant.packing``, also what the references read);
:func:`unpack_int4_weights` is the kernels' one-pass Numba reader for weight matrices.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from models.quant.packing import pack_bits, unpack_bits

INT4_MIN = -8
INT4_MAX = 7


def check_int_range(x: np.ndarray, lo: int, hi: int, name: str) -> None:
    """Raise ValueError naming ``name`` if any element of ``x`` is outside ``lo..hi``."""
    if x.size == 0:
        return
    xmin, xmax = int(x.min()), int(x.max())
    if xmin < lo or xmax > hi:
        bad = xmin if xmin < lo else xmax
        raise ValueError(f"{name}: value {bad} outside the range {lo}..{hi}")


def as_int8(x: np.ndarray, name: str, lo: int = -128, hi: int = 127) -> np.ndarray:
    """Validate an integer array and return it as int8 (no copy when already int8)."""
    x = np.asarray(x)
    if x.dtype == np.int8 and lo == -128 and hi == 127:
        return x
    if not np.issubdtype(x.dtype, np.integer):
        raise TypeError(f"{name}: expected an integer array, got dtype {x.dtype}")
    if x.dtype != np.int8 or lo > -128 or hi < 127:
        check_int_range(x, lo, hi, name)
    return x.astype(np.int8, copy=False)


def pack_int4(x: np.ndarray, name: str = "x") -> np.ndarray:
    """Pack signed 4-bit values two per byte along the last axis.

    Args:
        x: integer array (..., K) with values in -8..7.
        name: argument name used in error messages.

    Returns:
        uint8 array (..., ceil(K / 2)), low nibble first.

    Raises:
        ValueError: a value is outside -8..7 (the message names ``name``).
    """
    x = as_int8(x, name, INT4_MIN, INT4_MAX)
    if x.ndim == 0:
        raise ValueError(f"{name}: expected at least one axis")
    return pack_bits(x, 4, check=False)      # as_int8 checked the range


def unpack_int4(packed: np.ndarray, k: int) -> np.ndarray:
    """Unpack the layout of :func:`pack_int4`.

    Args:
        packed: uint8 array (..., ceil(k / 2)).
        k: number of 4-bit elements along the last axis.

    Returns:
        int8 array (..., k) with values in -8..7.
    """
    packed = np.asarray(packed)
    if packed.dtype != np.uint8:
        raise TypeError(f"packed: expected uint8, got {packed.dtype}")
    return unpack_bits(packed, k, 4)


def check_packed_int4(packed: np.ndarray, k: int, name: str = "w_packed") -> np.ndarray:
    """Check a packed INT4 matrix (N, ceil(k/2)) uint8 and return it as an array.

    Raises:
        TypeError: not uint8.
        ValueError: not two axes, or the last is not ceil(k / 2) long (the messages name ``name``).
    """
    packed = np.asarray(packed)
    if packed.dtype != np.uint8:
        raise TypeError(f"{name}: expected uint8, got {packed.dtype}")
    if k < 0 or packed.ndim != 2 or packed.shape[1] != (k + 1) // 2:
        raise ValueError(f"{name}: expected shape (N, ceil(k / 2)) = (N, {(k + 1) // 2}) for "
                         f"k = {k}, got {packed.shape}")
    return packed


def unpack_int4_weights(w_packed: np.ndarray, k: int) -> tuple[np.ndarray, int]:
    """Unpack INT4 weights (N, ceil(k/2)) uint8 to int8 (N, k) and max |w|, in one Numba pass.

    Same values as :func:`unpack_int4` (the pad nibble of an odd k is ignored).

    Raises:
        TypeError, ValueError: as :func:`check_packed_int4`.
    """
    w_packed = np.ascontiguousarray(check_packed_int4(w_packed, k))
    w = np.empty((w_packed.shape[0], k), np.int8)
    return w, int(_unpack_rows(w_packed, k, w))


@njit(cache=True)
def _unpack_rows(packed, k_, out):
    """out[n, k] = nibble k of row n, sign-extended; returns max |out| (0 when empty)."""
    lo = np.int8(0)
    hi = np.int8(0)
    for n in range(packed.shape[0]):
        row, o = packed[n], out[n]
        for j in range(k_ // 2):
            b = np.int8(row[j])
            even = np.int8(np.int8(b << 4) >> 4)  # b << 4 wraps to int8; >> 4 sign-extends
            odd = np.int8(b >> 4)
            o[2 * j] = even
            o[2 * j + 1] = odd
            lo = min(lo, min(even, odd))
            hi = max(hi, max(even, odd))
        if k_ % 2:
            even = np.int8(np.int8(np.int8(row[k_ // 2]) << 4) >> 4)
            o[k_ - 1] = even
            lo = min(lo, even)
            hi = max(hi, even)
    return max(-np.int64(lo), np.int64(hi))
