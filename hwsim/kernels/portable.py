"""Portable Numba GEMM kernels (any x86/ARM CPU LLVM supports).

The inner loop is a plain int8 x int8 dot product accumulated in int32, which LLVM vectorizes
(``vpmaddwd`` on x86). Numba types ``int32 + int32`` as int64, so the accumulator is cast back
to int32 every step; only the low 32 bits are ever used, which lets LLVM keep 32-bit lanes. The
caller guarantees that ``K * max|a| * max|w|`` fits in int32 (else ``wide=True`` selects int64
accumulation), so the int32 sum never wraps.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from hwsim.kernels.epilogue import dequant_one, requant_one

COL_BLOCK = 16  # output columns per parallel work item


@njit(inline="always", cache=True)
def finish(acc, m, n, lo, hi, sat, mode, scale, ibias, fbias, zp, qmin, qmax,
           out_acc, out_q, out_f, ovf, slot):
    """Check one finished accumulator against lo..hi, then store it through the epilogue.

    An overflow either saturates (``sat``) or is recorded once per ``slot`` in
    ``ovf[slot] = (1, m * N + n, value)`` for the caller to raise: exceptions cannot leave a
    parallel region cleanly.
    """
    v = acc  # a fresh name: rebinding an argument of an inline="always" function is unsafe
    if v < lo or v > hi:
        if sat:
            v = lo if v < lo else hi
        elif ovf[slot, 0] == 0:
            ovf[slot, 0] = 1
            ovf[slot, 1] = m * scale.shape[0] + n  # scale has one entry per column
            ovf[slot, 2] = v
    if mode == 0:
        out_acc[m, n] = v
    elif mode == 1:
        out_q[m, n] = requant_one(v, ibias[n], scale[n], zp, qmin, qmax)
    else:
        out_f[m, n] = dequant_one(v, scale[n], fbias[n])


@njit(inline="always", cache=True)
def _dot32(a, w, m, n, k_):
    acc = np.int32(0)
    for k in range(k_):
        acc = np.int32(acc + np.int32(a[m, k]) * np.int32(w[n, k]))
    return acc


@njit(inline="always", cache=True)
def _dot64(a, w, m, n, k_):
    acc = np.int64(0)
    for k in range(k_):
        acc += np.int64(a[m, k]) * np.int64(w[n, k])
    return acc


@njit(parallel=True, cache=True)
def gemm_portable(a, w, wide, lo, hi, sat, mode, scale, ibias, fbias, zp, qmin, qmax,
                  out_acc, out_q, out_f, ovf):
    """out[m, n] = epilogue(sum_k a[m, k] * w[n, k]); a (M, K) int8, w (N, K) int8.

    Parallel over blocks of COL_BLOCK output columns; ``ovf`` has one row per block.
    """
    m_, k_ = a.shape
    n_ = w.shape[0]
    nblocks = (n_ + COL_BLOCK - 1) // COL_BLOCK
    for b in prange(nblocks):
        n1 = min(n_, (b + 1) * COL_BLOCK)
        for m in range(m_):
            for n in range(b * COL_BLOCK, n1):
                if wide:
                    acc = _dot64(a, w, m, n, k_)
                else:
                    acc = np.int64(_dot32(a, w, m, n, k_))
                finish(acc, m, n, lo, hi, sat, mode, scale, ibias, fbias, zp, qmin, qmax,
                       out_acc, out_q, out_f, ovf, b)


@njit(parallel=True, cache=True)
def gemm_partial_checked(a, w, lo, hi, sat, out, ovf):
    """Accumulate in k order, checking every partial sum against lo..hi.

    Models a sequential accumulator of limited width: with ``sat`` each partial sum saturates
    (a saturating accumulator); otherwise the first out-of-range partial sum per row ``m`` is
    recorded in ``ovf[m] = (1, n, value, k)``. out (M, N) int64 receives the final sums.
    """
    m_, k_ = a.shape
    n_ = w.shape[0]
    for m in prange(m_):
        for n in range(n_):
            acc = np.int64(0)
            for k in range(k_):
                acc += np.int64(a[m, k]) * np.int64(w[n, k])
                if acc < lo or acc > hi:
                    if sat:
                        acc = lo if acc < lo else hi
                    elif ovf[m, 0] == 0:
                        ovf[m, 0] = 1
                        ovf[m, 1] = n
                        ovf[m, 2] = acc
                        ovf[m, 3] = k
            out[m, n] = acc
