"""Sub-byte integer storage: signed 2- and 4-bit codes packed along the last axis, low bits first.

The one layout of packed integer tensors: the export file (``models.quant.qexport``) stores it,
the integer kernels (``hwsim.kernels``) read it, and ``models.quant.policy.tensor_storage_bytes``
counts it. Element ``k`` of a row lives in byte ``k // per`` (``per = 8 // bits`` codes per byte) at
bits ``bits * (k % per)`` and up, in two's complement; a row whose length is not a multiple of
``per`` is padded with zero codes. INT4 example: ``[1, -1, 7] -> [0xF1, 0x07]``.

numpy only (no torch).
"""

from __future__ import annotations

import numpy as np

PACKED_BITS = (2, 4)


def _check_bits(bits: int) -> int:
    if bits not in PACKED_BITS:
        raise ValueError(f"bits must be 2 or 4, got {bits}")
    return 8 // bits


def pack_bits(codes: np.ndarray, bits: int, check: bool = True) -> np.ndarray:
    """Pack signed ``bits``-wide codes (2 or 4) along the last axis, low bits first.

    Args:
        codes: integer array (..., K) with values in -2**(bits-1)..2**(bits-1)-1.
        bits: 2 or 4.
        check: check the range (a caller that has checked it already passes False).

    Returns:
        uint8 array (..., ceil(K * bits / 8)).

    Raises:
        ValueError: bits not 2 or 4, a 0-d array, or a code outside the range.
    """
    per = _check_bits(bits)
    codes = np.asarray(codes)
    if codes.ndim == 0:
        raise ValueError("pack_bits: expected at least one axis")
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    if check and codes.size and (codes.min() < lo or codes.max() > hi):
        raise ValueError(f"pack_bits: codes outside {lo}..{hi}")
    k = codes.shape[-1]
    pad = (-k) % per
    mask = (1 << bits) - 1
    # two's complement: the low bits of an int8 are those of its uint8 view
    u = codes.view(np.uint8) & mask if codes.dtype == np.int8 else (codes.astype(np.int16) & mask).astype(np.uint8)
    if pad:
        u = np.concatenate([u, np.zeros(u.shape[:-1] + (pad,), np.uint8)], axis=-1)
    out = np.zeros(u.shape[:-1] + (u.shape[-1] // per,), np.uint8)
    for j in range(per):
        out |= (u[..., j::per] << np.uint8(bits * j)).astype(np.uint8)
    return out


def unpack_bits(packed: np.ndarray, k: int, bits: int) -> np.ndarray:
    """Inverse of :func:`pack_bits`: (..., ceil(k * bits / 8)) uint8 -> (..., k) int8, C-contiguous.

    Raises:
        ValueError: bits not 2 or 4, or the last axis is not ceil(k * bits / 8) long.
    """
    per = _check_bits(bits)
    packed = np.asarray(packed, np.uint8)
    if packed.ndim == 0 or packed.shape[-1] != -(-k // per):
        raise ValueError(f"packed: last axis must be ceil(k * {bits} / 8) = {-(-k // per)} for k = {k}, "
                         f"got shape {packed.shape}")
    mask, sign = (1 << bits) - 1, 1 << (bits - 1)
    out = np.empty(packed.shape[:-1] + (packed.shape[-1] * per,), np.int8)
    for j in range(per):
        nib = ((packed >> np.uint8(bits * j)) & np.uint8(mask)).astype(np.int8)
        out[..., j::per] = (nib ^ sign) - sign  # sign-extend
    return np.ascontiguousarray(out[..., :k])
