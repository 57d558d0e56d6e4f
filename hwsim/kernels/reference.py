"""Plain numpy references of the integer kernels (int64 matmul, then the same checks).

They define what the Numba kernels must reproduce bit for bit; they are slow and simple.
"""

from __future__ import annotations

import numpy as np

from hwsim.kernels.epilogue import Dequant, Requant, acc_range, apply_epilogue_ref
from hwsim.kernels.pack import unpack_int4


def overflow_message(kernel: str, index, value: int, acc_bits: int, k=None) -> str:
    """The one wording of accumulator-overflow errors (reference and kernels)."""
    lo, hi = acc_range(acc_bits)
    where = f"output [{index[0]}, {index[1]}]" + ("" if k is None else f" after k = {k}")
    return (f"{kernel}: {acc_bits}-bit accumulator overflow at {where}: value {value} outside "
            f"{lo}..{hi} (use a wider acc_bits or on_overflow='saturate')")


def gemm_ref(a: np.ndarray, w: np.ndarray, *, acc_bits: int = 32, on_overflow: str = "raise",
             overflow_check: str = "final", epilogue: Requant | Dequant | None = None,
             kernel: str = "gemm_ref") -> np.ndarray:
    """Reference integer GEMM ``a @ w.T`` with accumulator-overflow handling and epilogue.

    Args:
        a: integer activations (M, K).
        w: integer weights (N, K), as in ``nn.Linear``.
        acc_bits: accumulator width in bits.
        on_overflow: "raise" (OverflowError) or "saturate" (clamp to the accumulator range).
        overflow_check: "final" checks the finished sums; "partial" runs the sums in k order
            and checks (or saturates) every partial sum.
        epilogue: optional :class:`Requant` or :class:`Dequant`.
        kernel: name used in error messages.

    Returns:
        (M, N) int32, or the epilogue's dtype.
    """
    lo, hi = acc_range(acc_bits)
    a64 = np.asarray(a).astype(np.int64)
    w64 = np.asarray(w).astype(np.int64)
    if overflow_check == "final":
        acc = a64 @ w64.T
        bad = (acc < lo) | (acc > hi)
        if bad.any():
            if on_overflow == "raise":
                m, n = np.argwhere(bad)[0]
                raise OverflowError(overflow_message(kernel, (m, n), int(acc[m, n]), acc_bits))
            acc = np.clip(acc, lo, hi)
    elif overflow_check == "partial":
        prods = a64[:, None, :] * w64[None, :, :]  # (M, N, K): tests use small shapes
        if on_overflow == "raise":
            cums = np.cumsum(prods, axis=2)
            bad = (cums < lo) | (cums > hi)
            hit = bad.any(axis=2)
            if hit.any():
                m, n = np.argwhere(hit)[0]
                k = int(np.argmax(bad[m, n]))
                raise OverflowError(overflow_message(kernel, (m, n), int(cums[m, n, k]),
                                                     acc_bits, k))
            acc = cums[:, :, -1] if prods.shape[2] else np.zeros(prods.shape[:2], np.int64)
        else:
            acc = np.zeros(prods.shape[:2], np.int64)
            for k in range(prods.shape[2]):
                acc = np.clip(acc + prods[:, :, k], lo, hi)
    else:
        raise ValueError(f"overflow_check: expected 'final' or 'partial', got {overflow_check!r}")
    return apply_epilogue_ref(acc, epilogue)


def gemm_int4_ref(a_packed: np.ndarray, w_packed: np.ndarray, k: int, **kw) -> np.ndarray:
    """Reference of :func:`hwsim.kernels.gemm_int4` (both operands packed INT4)."""
    return gemm_ref(unpack_int4(a_packed, k), unpack_int4(w_packed, k), **kw)


def gemm_w4a8_ref(a: np.ndarray, w_packed: np.ndarray, **kw) -> np.ndarray:
    """Reference of :func:`hwsim.kernels.gemm_w4a8` (INT8 activations, packed INT4 weights)."""
    return gemm_ref(a, unpack_int4(w_packed, np.asarray(a).shape[1]), **kw)
