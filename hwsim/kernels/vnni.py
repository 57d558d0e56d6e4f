"""AVX512-VNNI fast path: an ``@intrinsic`` micro-kernel around ``vpdpbusd``.

LLVM does not form ``vpdpbusd`` from loop reductions, so the register tile is emitted directly
as LLVM IR calling ``llvm.x86.avx512.vpdpbusd.512``. ``vpdpbusd`` multiplies *unsigned* bytes
of its second operand by *signed* bytes of its third (the one that may be a broadcast memory
operand) and adds groups of four into int32 lanes. So:

* weights go to the unsigned slot as ``w + 128`` (uint8), prepacked in panels of NR = 64
  output columns: ``panels[p, ((k // 4) * NR + c) * 4 + k % 4] = w[p * NR + c, k] + 128``
  (zero-padded in N and K, i.e. stored as 128);
* activations stay signed int8, row-major (M, Kp) with Kp = K rounded up to a multiple of 4
  (zero-padded); four consecutive bytes of a row are broadcast to all 16 lanes;
* ``sum_k (w + 128) * a = sum_k w * a + 128 * sum_k a``, so each row subtracts
  ``128 * sum_k a[m, k]`` afterwards. The int32 lanes never wrap as long as
  ``Kp * 255 * 128 < 2**31`` (Kp <= 65792); the dispatcher checks this.

INT4 weights can instead be prepacked as nibbles (``w + 8``, two per byte, see
:func:`nibble_panels`): the tile splits each loaded vector into its low and high
nibbles in registers, so INT4 moves half the weight bytes; the row correction is then
``8 * sum_k a[m, k]``.

The register tile is MR = 6 rows x 4 zmm (64 columns): 24 accumulators. Row tails use tiles of
1..5 rows. K is split in blocks of KC so that a panel's block stays in L1 while every row tile
reads it; the partial sums of a panel wait in a small (M, NR) int32 buffer. The epilogue
(overflow check, requantization) runs on each finished panel row while it is in L1, which is
what "fused" means here.
"""

from __future__ import annotations

import functools
import llvmlite.binding as llvm
import numba
import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.core import cgutils
from numba.extending import intrinsic

from hwsim.kernels.epilogue import dequant_one, requant_one
from hwsim.kernels.pack import check_packed_int4
from hwsim.kernels.portable import finish

MR = 6
NRV = 4
NR = 16 * NRV
MAX_KP = 65792  # Kp * 255 * 128 < 2**31
_VEC = ir.VectorType(ir.IntType(32), 16)
_BYTES = ir.VectorType(ir.IntType(8), 64)
_I64 = ir.IntType(64)
_VPDPBUSD = "llvm.x86.avx512.vpdpbusd.512"


@functools.cache
def vnni_available() -> bool:
    """True if the host CPU has AVX512-VNNI and Numba compiles for the host CPU (cached)."""
    feats = llvm.get_host_cpu_features()
    host_ok = all(feats.get(f, False) for f in ("avx512f", "avx512bw", "avx512vnni"))
    cpu_name = numba.config.CPU_NAME
    targets_host = cpu_name in (None, "", "host") or "+avx512vnni" in (numba.config.CPU_FEATURES or "")
    return bool(host_ok and targets_host)


def _parallel_and_serial(fn):
    """Numba dispatchers of ``fn`` with and without ``parallel=True`` (for calls too small to wake
    a thread team). The serial one compiles a renamed copy: Numba's cache tells functions apart
    by name and signature, not by options, so otherwise each would load the other's machine code.
    """
    serial = type(fn)(fn.__code__, fn.__globals__, fn.__name__ + "_serial", fn.__defaults__)
    serial.__qualname__ = fn.__qualname__ + "_serial"
    return njit(parallel=True, cache=True)(fn), njit(cache=True)(serial)


def _vpdpbusd(builder):
    fnty = ir.FunctionType(_VEC, [_VEC, _VEC, _VEC])
    return cgutils.get_or_insert_function(builder.module, fnty, _VPDPBUSD)


def _make_tile_kernel(mr: int, nibbles: bool):
    """Intrinsic ``tile(a, a_off, lda, panels, w_off, steps, out)`` for an mr x NR register tile.

    ``a``/``panels`` are byte arrays addressed by byte offsets; ``out`` is an int32 array of at
    least mr * NR entries, row-major (row i, column c at ``i * NR + c``), that the tile *adds*
    to (so one output tile can be accumulated over several K blocks). One step covers 4 values
    of k (int8 panels, 256 panel bytes) or 8 (``nibbles``: INT4 panels, also 256 bytes, whose
    low and high nibbles are split into two 64-byte vectors in registers).
    """

    @intrinsic
    def tile(typingctx, a, a_off, lda, panels, w_off, steps, out):
        sig = types.void(a, a_off, lda, panels, w_off, steps, out)

        def codegen(context, builder, signature, args):
            ty = signature.args
            i8p = ir.IntType(8).as_pointer()
            a_data = context.make_array(ty[0])(context, builder, args[0]).data
            w_data = context.make_array(ty[3])(context, builder, args[3]).data
            c_data = context.make_array(ty[6])(context, builder, args[6]).data
            a_off_, lda_, w_off_, steps_ = (context.cast(builder, args[i], ty[i], types.int64)
                                            for i in (1, 2, 4, 5))
            abase = builder.gep(builder.bitcast(a_data, i8p), [a_off_])
            wbase = builder.gep(builder.bitcast(w_data, i8p), [w_off_])
            cbase = builder.bitcast(c_data, _VEC.as_pointer())
            fn = _vpdpbusd(builder)
            accs = []
            for idx in range(mr * NRV):
                slot = cgutils.alloca_once(builder, _VEC)  # promoted to a register by SROA
                cptr = builder.gep(cbase, [ir.Constant(_I64, idx)])
                builder.store(builder.load(cptr, align=4), slot)
                accs.append(slot)
            low4 = ir.Constant(_VEC, [0x0F0F0F0F] * 16)
            four = ir.Constant(_VEC, [4] * 16)
            kstep = 8 if nibbles else 4
            with cgutils.for_range(builder, steps_) as loop:
                k = loop.index
                wrow = builder.gep(wbase, [builder.mul(k, ir.Constant(_I64, NR * 4))])
                wvecs = [builder.load(builder.bitcast(builder.gep(wrow, [ir.Constant(_I64, 64 * j)]),
                                                      _VEC.as_pointer()), align=1)
                         for j in range(NRV)]
                if nibbles:  # k..k+3 in the low nibbles, k+4..k+7 in the high ones
                    halves = [[builder.and_(v, low4) for v in wvecs],
                              [builder.and_(builder.lshr(v, four), low4) for v in wvecs]]
                else:
                    halves = [wvecs]
                acol = builder.gep(abase, [builder.mul(k, ir.Constant(_I64, kstep))])
                for h, ws in enumerate(halves):
                    for i in range(mr):
                        p = builder.gep(acol, [builder.add(builder.mul(lda_, ir.Constant(_I64, i)),
                                                           ir.Constant(_I64, 4 * h))])
                        a4 = builder.load(builder.bitcast(p, ir.IntType(32).as_pointer()), align=1)
                        v = builder.insert_element(ir.Constant(_VEC, ir.Undefined), a4,
                                                   ir.Constant(ir.IntType(32), 0))
                        v = builder.shuffle_vector(v, ir.Constant(_VEC, ir.Undefined),
                                                   ir.Constant(_VEC, None))
                        for j in range(NRV):
                            slot = accs[i * NRV + j]
                            builder.store(builder.call(fn, [builder.load(slot), ws[j], v]), slot)
            for idx, slot in enumerate(accs):
                builder.store(builder.load(slot), builder.gep(cbase, [ir.Constant(_I64, idx)]),
                              align=4)
            return context.get_dummy_value()

        return sig, codegen

    return tile


_tile1, _tile2, _tile3, _tile4, _tile5, _tile6 = (_make_tile_kernel(r, False) for r in range(1, 7))
_ntile1, _ntile2, _ntile3, _ntile4, _ntile5, _ntile6 = (_make_tile_kernel(r, True)
                                                        for r in range(1, 7))


def prepack_panels(w: np.ndarray) -> np.ndarray:
    """Panel layout of w (N, K) int8: uint8 (ceil(N / NR), Kp // 4 * NR * 4), see module doc."""
    n_, k_ = w.shape
    npan, kp = (n_ + NR - 1) // NR, (k_ + 3) // 4 * 4
    src = np.ascontiguousarray(w).view(np.uint8)
    if kp != k_:
        src = np.zeros((n_, kp), np.uint8)
        src[:, :k_] = w.view(np.uint8)
    out = np.empty((npan, kp * NR), np.uint8)
    _transpose_groups(src.view(np.uint32), n_, out.view(np.uint32))
    return out


@njit(parallel=True, cache=True)
def _transpose_groups(src, n_, dst):
    """dst[p, g * NR + c] = src[p * NR + c, g] ^ 0x80808080 on 4-byte groups (uint32 views).

    Flipping the top bit of each byte is int8 + 128 as uint8; missing rows (n >= N) are zero
    weights, stored as 0x80 bytes.
    """
    flip = np.uint32(0x80808080)
    for p in prange(dst.shape[0]):
        d = dst[p]
        for g in range(src.shape[1]):
            for c in range(NR):
                n = p * NR + c
                d[g * NR + c] = (src[n, g] ^ flip) if n < n_ else flip


PARALLEL_MIN_PANEL_BYTES = 1 << 21  # smaller weights are converted on one thread
_PAD_WORD = 0x88888888  # a group of eight zero weights (u = 8)


def nibble_panels(w_packed: np.ndarray, k: int) -> np.ndarray:
    """INT4 panel layout of packed INT4 weights (N, ceil(k/2)) uint8 (``pack_int4`` layout).

    Returns uint8 (ceil(N / NR), Kp8 * NR // 2), Kp8 = k rounded up to a multiple of 8. With
    ``u = w + 8`` (0..15, zero padding stored as 8):
    ``panels[p, ((k // 8) * NR + c) * 4 + k % 4] = u[p * NR + c, k] | u[p * NR + c, k + 4] << 4``
    for ``k % 8 < 4``: one 256-byte step holds 8 values of k for NR columns, half the bytes of
    the int8 layout. One Numba pass over the packed bytes (no int8 copy); the pad nibble of an
    odd k is ignored.

    Raises:
        TypeError, ValueError: as :func:`hwsim.kernels.pack.check_packed_int4`.
    """
    w_packed = check_packed_int4(w_packed, k)
    n_ = w_packed.shape[0]
    npan, kp = (n_ + NR - 1) // NR, (k + 7) // 8 * 8
    out = np.empty((npan, kp * NR // 2), np.uint8)
    parallel = w_packed.size >= PARALLEL_MIN_PANEL_BYTES and numba.get_num_threads() > 1
    kern = _nibble_panels if parallel else _nibble_panels_serial
    kern(np.ascontiguousarray(w_packed), k, out.view(np.uint32))
    return out


def _splat(value: int):
    return ir.Constant(_VEC, [value - (1 << 32) if value >> 31 else value] * 16)


@njit(inline="always", cache=True)
def _panel_word(x):
    """The panel word of eight nibbles k..k+7 (nibble i of x = value k + i, two's complement).

    Nibble i goes to nibble 2i (i < 4) or 2(i - 4) + 1: swap the middle bytes, then the middle
    nibbles of each half; the xor is ``w + 8`` on every nibble.
    """
    x = ((x & np.uint32(0xFF0000FF)) | ((x >> np.uint32(8)) & np.uint32(0x0000FF00))
         | ((x << np.uint32(8)) & np.uint32(0x00FF0000)))
    x = ((x & np.uint32(0xF00FF00F)) | ((x >> np.uint32(4)) & np.uint32(0x00F000F0))
         | ((x << np.uint32(4)) & np.uint32(0x0F000F00)))
    return x ^ np.uint32(_PAD_WORD)


@intrinsic
def _nibble_block(typingctx, src, s_off, lds, dst, d_off):
    """16 rows x 16 groups of eight nibbles -> 16 panel steps x 16 columns, in zmm registers.

    Loads 16 rows of 64 bytes (``src`` from byte ``s_off``, row stride ``lds`` bytes),
    transposes the 16 x 16 matrix of 32-bit groups (four rounds of two-input shuffles), applies
    :func:`_panel_word` lane-wise (a byte shuffle, then masks and shifts) and stores step j at
    byte ``d_off + j * NR * 4`` of ``dst``.
    """
    sig = types.void(src, s_off, lds, dst, d_off)

    def codegen(context, builder, signature, args):
        ty = signature.args
        i8p = ir.IntType(8).as_pointer()
        s_data = context.make_array(ty[0])(context, builder, args[0]).data
        d_data = context.make_array(ty[3])(context, builder, args[3]).data
        s_off_, lds_, d_off_ = (context.cast(builder, args[i], ty[i], types.int64)
                                for i in (1, 2, 4))
        sbase = builder.gep(builder.bitcast(s_data, i8p), [s_off_])
        dbase = builder.gep(builder.bitcast(d_data, i8p), [d_off_])
        rows = []
        for i in range(16):
            p = builder.gep(sbase, [builder.mul(lds_, ir.Constant(_I64, i))])
            rows.append(builder.load(builder.bitcast(p, _VEC.as_pointer()), align=1))
        for b in (1, 2, 4, 8):  # swap bit b of the row and the column index
            lo = ir.Constant(_VEC, [j if not j & b else 16 + (j ^ b) for j in range(16)])
            hi = ir.Constant(_VEC, [j ^ b if not j & b else 16 + j for j in range(16)])
            for i in range(16):
                if not i & b:
                    x, y = rows[i], rows[i | b]
                    rows[i], rows[i | b] = (builder.shuffle_vector(x, y, lo),
                                            builder.shuffle_vector(x, y, hi))
        swap = ir.Constant(ir.VectorType(ir.IntType(32), 64),
                           [4 * (j // 4) + (0, 2, 1, 3)[j % 4] for j in range(64)])
        for j, v in enumerate(rows):
            v = builder.bitcast(v, _BYTES)
            v = builder.bitcast(builder.shuffle_vector(v, ir.Constant(_BYTES, ir.Undefined), swap),
                                _VEC)
            v = builder.or_(builder.and_(v, _splat(0xF00FF00F)), builder.or_(
                builder.and_(builder.lshr(v, _splat(4)), _splat(0x00F000F0)),
                builder.and_(builder.shl(v, _splat(4)), _splat(0x0F000F00))))
            v = builder.xor(v, _splat(_PAD_WORD))
            p = builder.gep(dbase, [ir.Constant(_I64, j * NR * 4)])
            builder.store(v, builder.bitcast(p, _VEC.as_pointer()), align=1)
        return context.get_dummy_value()

    return sig, codegen


def _nibble_panels_impl(src, k_, dst):
    """dst (npan, Kp8 // 8 * NR) uint32 = :func:`nibble_panels` of src (N, ceil(k_/2)) uint8.

    Per panel: 16 x 16 blocks of (rows, groups of eight k) in registers (:func:`_nibble_block`),
    the remaining full groups one word at a time, then the group with the k tail (pad nibbles
    masked to zero weights) and the missing columns of the last panel.
    """
    n_, kb = src.shape
    ng = dst.shape[1] // NR
    full = k_ // 8
    kblk = full // 16 * 16
    for p in prange(dst.shape[0]):
        n0 = p * NR
        nc = min(NR, n_ - n0)
        cblk = nc // 16 * 16
        d = dst[p]
        for c0 in range(0, cblk, 16):
            for g0 in range(0, kblk, 16):
                _nibble_block(src, (n0 + c0) * kb + 4 * g0, kb, dst,
                              4 * (p * dst.shape[1] + g0 * NR + c0))
        for c in range(nc):
            row = src[n0 + c]
            for g in range(kblk if c < cblk else 0, full):
                x = (np.uint32(row[4 * g]) | (np.uint32(row[4 * g + 1]) << np.uint32(8))
                     | (np.uint32(row[4 * g + 2]) << np.uint32(16))
                     | (np.uint32(row[4 * g + 3]) << np.uint32(24)))
                d[g * NR + c] = _panel_word(x)
            if full < ng:
                x = np.uint32(0)
                for j in range(4 * full, kb):
                    x |= np.uint32(row[j]) << np.uint32(8 * (j - 4 * full))
                d[full * NR + c] = _panel_word(x & np.uint32((1 << (4 * (k_ - 8 * full))) - 1))
        for g in range(ng):
            for c in range(nc, NR):
                d[g * NR + c] = np.uint32(_PAD_WORD)


_nibble_panels, _nibble_panels_serial = _parallel_and_serial(_nibble_panels_impl)


KC = 512  # K block: an int8 panel block (KC * NR bytes = 32 KiB) stays in L1 across row tiles


def _gemm_vnni(a, panels, nibbles, n_, lo, hi, sat, mode, scale, ibias, fbias, zp, qmin, qmax,
               out_acc, out_q, out_f, ovf):
    """out[m, n] = epilogue(sum_k a[m, k] * w[n, k]) from a (M, Kp) int8 and prepacked panels.

    ``nibbles``: INT4 panels (:func:`nibble_panels`, Kp a multiple of 8), else int8
    panels (:func:`prepack_panels`). Loops: panel p (parallel) > K block > row tile, so the
    panel's K block is read from L1 by every row tile; partial sums wait in ``acc`` (M, NR).
    ``ovf`` has one row per panel (see ``finish``).
    """
    m_, kp = a.shape
    wbias = 8 if nibbles else 128  # stored weight = w + wbias
    kstep = 8 if nibbles else 4
    pstride = panels.shape[1]
    rowcorr = np.empty(m_, np.int64)
    for m in range(m_):
        s = np.int32(0)
        for k in range(kp):
            s = np.int32(s + np.int32(a[m, k]))
        rowcorr[m] = wbias * np.int64(s)
    for p in prange(panels.shape[0]):
        acc = np.zeros(m_ * NR, np.int32)
        ncols = min(NR, n_ - p * NR)
        for k0 in range(0, kp, KC):
            steps = min(KC, kp - k0) // kstep
            woff = p * pstride + k0 * NR // (kstep // 4)
            for m0 in range(0, m_, MR):
                mr = min(MR, m_ - m0)
                aoff = m0 * kp + k0
                t = acc[m0 * NR:]
                if nibbles:
                    if mr == 6:
                        _ntile6(a, aoff, kp, panels, woff, steps, t)
                    elif mr == 5:
                        _ntile5(a, aoff, kp, panels, woff, steps, t)
                    elif mr == 4:
                        _ntile4(a, aoff, kp, panels, woff, steps, t)
                    elif mr == 3:
                        _ntile3(a, aoff, kp, panels, woff, steps, t)
                    elif mr == 2:
                        _ntile2(a, aoff, kp, panels, woff, steps, t)
                    else:
                        _ntile1(a, aoff, kp, panels, woff, steps, t)
                elif mr == 6:
                    _tile6(a, aoff, kp, panels, woff, steps, t)
                elif mr == 5:
                    _tile5(a, aoff, kp, panels, woff, steps, t)
                elif mr == 4:
                    _tile4(a, aoff, kp, panels, woff, steps, t)
                elif mr == 3:
                    _tile3(a, aoff, kp, panels, woff, steps, t)
                elif mr == 2:
                    _tile2(a, aoff, kp, panels, woff, steps, t)
                else:
                    _tile1(a, aoff, kp, panels, woff, steps, t)
        for m in range(m_):
            _finish_row(acc, m * NR, rowcorr[m], m, p * NR, ncols, lo, hi, sat, mode, scale,
                        ibias, fbias, zp, qmin, qmax, out_acc, out_q, out_f, ovf, p)


gemm_vnni, gemm_vnni_serial = _parallel_and_serial(_gemm_vnni)


@njit(inline="always", cache=True)
def _finish_row(tile, t0, corr, m, n0, ncols, lo, hi, sat, mode, scale, ibias, fbias, zp, qmin,
                qmax, out_acc, out_q, out_f, ovf, slot):
    """Epilogue of one tile row: a branch-free range check, then a vectorizable store loop.

    The corrected sums fit int32 (the dispatcher's bound), so the wrapping int32 arithmetic is
    exact and LLVM keeps 16 lanes per register. Rows with an overflow take the scalar path.
    """
    corr32 = np.int32(corr)
    amin = np.int32(0)
    amax = np.int32(0)
    for j in range(ncols):
        acc = np.int32(tile[t0 + j] - corr32)
        amin = min(amin, acc)
        amax = max(amax, acc)
    if amin < lo or amax > hi:
        for j in range(ncols):
            finish(np.int64(tile[t0 + j]) - corr, m, n0 + j, lo, hi, sat, mode, scale, ibias,
                   fbias, zp, qmin, qmax, out_acc, out_q, out_f, ovf, slot)
        return
    # Slices (not out[m, n0 + j]) so indices are provably non-negative: Numba's wraparound of
    # negative indices otherwise turns these loops into gathers and scatters.
    t = tile[t0:t0 + ncols]
    if mode == 0:
        o = out_acc[m, n0:n0 + ncols]
        for j in range(ncols):
            o[j] = np.int32(t[j] - corr32)
    elif mode == 1:
        oq, b, sc = out_q[m, n0:n0 + ncols], ibias[n0:n0 + ncols], scale[n0:n0 + ncols]
        for j in range(ncols):
            oq[j] = requant_one(np.int32(t[j] - corr32), b[j], sc[j], zp, qmin, qmax)
    else:
        of, sc, fb = out_f[m, n0:n0 + ncols], scale[n0:n0 + ncols], fbias[n0:n0 + ncols]
        for j in range(ncols):
            of[j] = dequant_one(np.int32(t[j] - corr32), sc[j], fb[j])


@intrinsic
def _peak_loop(typingctx, n_iter, seed):
    """24 independent vpdpbusd chains on registers, n_iter times; returns a checksum."""
    sig = types.int64(n_iter, seed)

    def codegen(context, builder, signature, args):
        n = context.cast(builder, args[0], signature.args[0], types.int64)
        s = builder.trunc(context.cast(builder, args[1], signature.args[1], types.int64),
                          ir.IntType(32))
        x = builder.insert_element(ir.Constant(_VEC, ir.Undefined), s, ir.Constant(ir.IntType(32), 0))
        x = builder.shuffle_vector(x, ir.Constant(_VEC, ir.Undefined), ir.Constant(_VEC, None))
        fn = _vpdpbusd(builder)
        slots = []
        for i in range(24):
            slot = cgutils.alloca_once(builder, _VEC)
            builder.store(builder.add(x, ir.Constant(_VEC, [i] * 16)), slot)
            slots.append(slot)
        with cgutils.for_range(builder, n):
            for slot in slots:
                builder.store(builder.call(fn, [builder.load(slot), x, x]), slot)
        total = builder.load(slots[0])
        for slot in slots[1:]:
            total = builder.xor(total, builder.load(slot))
        lane = builder.extract_element(total, ir.Constant(ir.IntType(32), 0))
        return builder.sext(lane, _I64)

    return sig, codegen


@njit(cache=True)
def vnni_peak_loop(n_iter, seed):
    """Run ``n_iter`` x 24 independent ``vpdpbusd`` (each 64 int8 MACs); returns a checksum."""
    return _peak_loop(n_iter, seed)


OPS_PER_PEAK_ITER = 24 * 64 * 2  # 24 instructions x 64 MACs x 2 ops
