"""Integer GEMMs ``out = epilogue(a @ w.T)`` with exact INT32 accumulation, and path dispatch.

Two implementations compute the same bits: a portable Numba kernel (:mod:`.portable`) and an
AVX512-VNNI kernel (:mod:`.vnni`). The path is chosen at run time: VNNI when the host CPU has it,
unless the environment variable ``HWSIM_KERNELS=portable`` (or the ``path=`` argument) says
otherwise. The VNNI path needs weights in a panel layout: pass :func:`prepack_weights` /
:func:`prepack_weights_int4` output for repeated calls. Raw weights are repacked per call: INT4
ones straight from their packed bytes into nibble panels (one Numba pass,
:func:`.vnni.nibble_panels`), int8 ones likewise except that in "auto" mode calls with fewer
than ``SMALL_M`` rows run the portable kernel instead (repacking would dominate). Numba threads
are used as configured (``numba.set_num_threads``); on few shared cores set
``OMP_WAIT_POLICY=passive`` (or ``NUMBA_THREADING_LAYER=workqueue``) so small parallel calls do
not stall in OpenMP's spin wait.

Accumulator width: sums are computed exactly (int32, or int64 when ``K * max|a| * max|w|`` does
not fit int32) and then checked against the ``acc_bits`` range. ``overflow_check="final"``
(default) checks the finished sums only; that is exact for a two's-complement (wrap-around)
accumulator, whose intermediate wraps cancel when the final sum fits, and cheap (one compare per
output, fused in the epilogue). ``overflow_check="partial"`` models a sequential accumulator
that sees the partial sums in k order, checking (or saturating) each of them; it runs a slow
portable kernel with the epilogue applied afterwards.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numba
import numpy as np

from hwsim.kernels import portable, vnni
from hwsim.kernels.epilogue import Dequant, Requant, acc_range, apply_epilogue_ref, kernel_params
from hwsim.kernels.pack import INT4_MIN, as_int8, unpack_int4, unpack_int4_weights
from hwsim.kernels.reference import overflow_message

_INT32_MAX = np.iinfo(np.int32).max


def kernel_path(path: str | None = None) -> str:
    """Resolve the GEMM implementation: "vnni" or "portable".

    Args:
        path: "auto", "vnni", "portable" or None (read ``HWSIM_KERNELS``, default "auto").

    Raises:
        RuntimeError: "vnni" was requested on a host without usable AVX512-VNNI.
    """
    choice = (path or os.environ.get("HWSIM_KERNELS", "auto")).lower()
    if choice not in ("auto", "vnni", "portable"):
        raise ValueError(f"kernel path: expected auto, vnni or portable, got {choice!r}")
    if choice == "portable":
        return "portable"
    if vnni.vnni_available():
        return "vnni"
    if choice == "vnni":
        raise RuntimeError("kernel path 'vnni' requested but the host has no usable AVX512-VNNI")
    return "portable"


PARALLEL_MIN_MACS = 1 << 22  # smaller VNNI calls run on one thread: waking a team costs more

SMALL_M = 16  # below this, repacking raw int8 weights per call costs more than VNNI saves


def _pack_path(path: str | None, m: int) -> str | None:
    """Path for int8 weights passed raw: with few rows, skip the VNNI repacking (auto mode only)."""
    auto = (path or os.environ.get("HWSIM_KERNELS", "auto")).lower() == "auto"
    return "portable" if auto and m < SMALL_M else path


def _max_abs(x: np.ndarray) -> int:
    return 0 if x.size == 0 else max(-int(x.min()), int(x.max()))


@dataclass(frozen=True, eq=False)
class PackedWeights:
    """Weights prepared once for repeated GEMMs (what an inference engine keeps resident).

    Attributes:
        w: int8 weights (N, K) for the portable kernels; None only in the weights a GEMM prepares
            for one VNNI call from raw INT4 weights (:func:`_raw_int4_weights`: panels only).
        max_abs: max |w|, for the accumulator bound (8, the INT4 bound, where ``w`` is None).
        panels: VNNI panel layout (see :mod:`.vnni`), or None when the VNNI path is unavailable.
        nibbles: ``panels`` hold INT4 values two per byte (:func:`.vnni.nibble_panels`, half the
            bytes of the int8 layout), else int8 (:func:`.vnni.prepack_panels`).
        shape: (N, K).
    """

    w: np.ndarray | None
    max_abs: int
    panels: np.ndarray | None
    nibbles: bool
    shape: tuple[int, int]


def prepack_weights(w: np.ndarray, *, path: str | None = None) -> PackedWeights:
    """Prepare int8 weights (N, K) (values -128..127) for :func:`gemm_int8` and friends."""
    w = np.ascontiguousarray(as_int8(w, "w"))
    if w.ndim != 2:
        raise ValueError(f"w: expected 2 axes (N, K), got shape {w.shape}")
    panels = None
    if kernel_path(path) == "vnni" and (w.shape[1] + 3) // 4 * 4 <= vnni.MAX_KP:
        panels = vnni.prepack_panels(w)
    return PackedWeights(w, _max_abs(w), panels, False, w.shape)


def prepack_weights_int4(w_packed: np.ndarray, k: int, *, path: str | None = None) -> PackedWeights:
    """Prepare packed INT4 weights (N, ceil(k/2)) uint8 for :func:`gemm_int4` / :func:`gemm_w4a8`.

    On the VNNI path the panels stay 4-bit (two values per byte, expanded in registers), so the
    kernels move half the weight bytes of INT8; they are built from the packed bytes directly.
    """
    w, max_abs = unpack_int4_weights(w_packed, k)
    panels = vnni.nibble_panels(w_packed, k) if _int4_panels(k, path) else None
    return PackedWeights(w, max_abs, panels, True, w.shape)


def _int4_panels(k: int, path: str | None) -> bool:
    """Whether INT4 weights with K = k get VNNI nibble panels."""
    return kernel_path(path) == "vnni" and (k + 7) // 8 * 8 <= vnni.MAX_KP


def _raw_int4_weights(w_packed: np.ndarray, k: int, path: str | None,
                      overflow_check: str) -> PackedWeights:
    """Weights for one GEMM given raw packed INT4 weights (N, ceil(k/2)).

    Where the VNNI kernel will run, only its nibble panels are built (one Numba pass over the
    packed bytes, at any M); ``max_abs`` is then the INT4 bound 8, which selects int32
    accumulation exactly as max |w| would for every K the panels allow. Else as
    :func:`prepack_weights_int4` (the int8 weights the portable kernels read).
    """
    if overflow_check != "final" or not _int4_panels(k, path):
        return prepack_weights_int4(w_packed, k, path="portable")
    panels = vnni.nibble_panels(w_packed, k)
    return PackedWeights(None, -INT4_MIN, panels, True, (len(w_packed), k))


def _run(kernel: str, a: np.ndarray, pw: PackedWeights, *, acc_bits: int, on_overflow: str,
         overflow_check: str, requant: Requant | None, dequant: Dequant | None,
         path: str | None) -> np.ndarray:
    if a.ndim != 2 or a.shape[1] != pw.shape[1]:
        raise ValueError(f"{kernel}: a (M, K) and w (N, K) disagree: {a.shape} vs {pw.shape}")
    if on_overflow not in ("raise", "saturate"):
        raise ValueError(f"on_overflow: expected 'raise' or 'saturate', got {on_overflow!r}")
    if requant is not None and dequant is not None:
        raise ValueError(f"{kernel}: give requant or dequant, not both")
    epi = requant if requant is not None else dequant
    lo, hi = acc_range(acc_bits)
    sat = on_overflow == "saturate"
    (m_, k_), n_ = a.shape, pw.shape[0]
    mode, scale, ibias, fbias, zp, qmin, qmax = kernel_params(epi, n_)
    if overflow_check == "partial":
        acc = np.empty((m_, n_), np.int64)
        ovf = np.zeros((m_, 4), np.int64)
        portable.gemm_partial_checked(a, pw.w, lo, hi, sat, acc, ovf)
        hit = np.flatnonzero(ovf[:, 0])
        if hit.size:
            m = hit[0]
            raise OverflowError(overflow_message(kernel, (m, ovf[m, 1]), int(ovf[m, 2]),
                                                 acc_bits, int(ovf[m, 3])))
        return apply_epilogue_ref(acc, epi)
    if overflow_check != "final":
        raise ValueError(f"overflow_check: expected 'final' or 'partial', got {overflow_check!r}")

    out_acc = np.empty((m_, n_) if mode == 0 else (0, 0), np.int32)
    out_q = np.empty((m_, n_), requant.out_dtype) if mode == 1 else np.empty((0, 0), np.int8)
    out_f = np.empty((m_, n_) if mode == 2 else (0, 0), np.float32)
    outs = (out_acc, out_q, out_f)[mode]
    if m_ == 0 or n_ == 0:
        return outs
    # |a| <= 128 settles the common case without a pass over a.
    wide = k_ * 128 * pw.max_abs > _INT32_MAX and k_ * _max_abs(a) * pw.max_abs > _INT32_MAX
    kp = (k_ + 7) // 8 * 8 if pw.nibbles else (k_ + 3) // 4 * 4
    use_vnni = (kernel_path(path) == "vnni" and not wide and pw.panels is not None)
    args = (lo, hi, sat, mode, scale, ibias, fbias, zp, qmin, qmax, out_acc, out_q, out_f)
    if use_vnni:
        a_pad = a if kp == k_ and a.flags.c_contiguous else _pad_k(a, kp)
        ovf = np.zeros((pw.panels.shape[0], 3), np.int64)
        parallel = m_ * n_ * k_ >= PARALLEL_MIN_MACS and numba.get_num_threads() > 1
        kern = vnni.gemm_vnni if parallel else vnni.gemm_vnni_serial
        kern(a_pad, pw.panels, pw.nibbles, n_, *args, ovf)
    else:
        ovf = np.zeros(((n_ + portable.COL_BLOCK - 1) // portable.COL_BLOCK, 3), np.int64)
        portable.gemm_portable(np.ascontiguousarray(a), pw.w, wide, *args, ovf)
    hit = ovf[:, 0] != 0
    if hit.any():
        flat = int(ovf[hit, 1].min())
        value = int(ovf[hit][np.argmin(ovf[hit, 1]), 2])
        raise OverflowError(overflow_message(kernel, divmod(flat, n_), value, acc_bits))
    return outs


def _pad_k(a: np.ndarray, kp: int) -> np.ndarray:
    out = np.zeros((a.shape[0], kp), np.int8)
    out[:, : a.shape[1]] = a
    return out


def _with_common_args(fn):
    """Append the keyword arguments shared by all GEMMs to ``fn``'s Args section."""
    fn.__doc__ = fn.__doc__.replace("        (common keyword arguments: see below)\n", _DOC_ARGS.lstrip("\n"))
    return fn


_DOC_ARGS = """
        acc_bits: accumulator width in bits (8..32); default 32.
        on_overflow: "raise" (OverflowError naming the kernel, output index and value) or
            "saturate" (clamp the accumulator to its range). Never wraps silently.
        overflow_check: "final" (cheap, fused) or "partial" (every k-ordered partial sum; slow).
        requant: optional :class:`Requant` epilogue -> integer output of its ``out_dtype``.
        dequant: optional :class:`Dequant` epilogue -> float32 output.
        path: "auto" | "vnni" | "portable"; default from ``HWSIM_KERNELS``.
"""


@_with_common_args
def gemm_int8(a: np.ndarray, w: np.ndarray | PackedWeights, *, acc_bits: int = 32,
              on_overflow: str = "raise", overflow_check: str = "final",
              requant: Requant | None = None, dequant: Dequant | None = None,
              path: str | None = None) -> np.ndarray:
    """INT8 x INT8 GEMM: ``out[m, n] = sum_k a[m, k] * w[n, k]``.

    Args:
        a: int8 activations (M, K).
        w: int8 weights (N, K) as in ``nn.Linear``, or :func:`prepack_weights` output.
        (common keyword arguments: see below)

    Returns:
        (M, N) int32, or the epilogue's dtype.
    """
    a = as_int8(a, "a")
    pw = w if isinstance(w, PackedWeights) else prepack_weights(w, path=_pack_path(path, len(a)))
    return _run("gemm_int8", a, pw, acc_bits=acc_bits, on_overflow=on_overflow,
                overflow_check=overflow_check, requant=requant, dequant=dequant, path=path)


@_with_common_args
def gemm_w4a8(a: np.ndarray, w_packed: np.ndarray | PackedWeights, *, acc_bits: int = 32,
              on_overflow: str = "raise", overflow_check: str = "final",
              requant: Requant | None = None, dequant: Dequant | None = None,
              path: str | None = None) -> np.ndarray:
    """INT8 activations x packed INT4 weights.

    Args:
        a: int8 activations (M, K).
        w_packed: uint8 (N, ceil(K/2)) from :func:`pack_int4`, or
            :func:`prepack_weights_int4` output.
        (common keyword arguments: see below)

    Returns:
        (M, N) int32, or the epilogue's dtype.
    """
    a = as_int8(a, "a")
    pw = (w_packed if isinstance(w_packed, PackedWeights)
          else _raw_int4_weights(w_packed, a.shape[-1], path, overflow_check))
    return _run("gemm_w4a8", a, pw, acc_bits=acc_bits, on_overflow=on_overflow,
                overflow_check=overflow_check, requant=requant, dequant=dequant, path=path)


@_with_common_args
def gemm_int4(a_packed: np.ndarray, w_packed: np.ndarray | PackedWeights, k: int, *,
              acc_bits: int = 32, on_overflow: str = "raise", overflow_check: str = "final",
              requant: Requant | None = None, dequant: Dequant | None = None,
              path: str | None = None) -> np.ndarray:
    """Packed INT4 x packed INT4 GEMM (the paper's W4A4).

    A is unpacked to int8 per call and runs through the INT8-activation kernels with W (VNNI:
    nibble panels; portable: int8): the products and sums are the same integers.

    Args:
        a_packed: uint8 (M, ceil(k/2)) from :func:`pack_int4`.
        w_packed: uint8 (N, ceil(k/2)) from :func:`pack_int4`, or a :class:`PackedWeights`.
        k: reduction length K.
        (common keyword arguments: see below)

    Returns:
        (M, N) int32, or the epilogue's dtype.
    """
    a = unpack_int4(a_packed, k)
    pw = (w_packed if isinstance(w_packed, PackedWeights)
          else _raw_int4_weights(w_packed, k, path, overflow_check))
    return _run("gemm_int4", a, pw, acc_bits=acc_bits,
                on_overflow=on_overflow, overflow_check=overflow_check, requant=requant,
                dequant=dequant, path=path)
