"""Raw (not prepacked) INT4 weights: the Numba conversions; raw vs prepacked vs reference GEMMs."""

import numpy as np
import pytest

from hwsim.kernels import (Dequant, Requant, gemm_int4, gemm_int4_ref, gemm_w4a8, gemm_w4a8_ref,
                           pack_int4, prepack_weights_int4, unpack_int4, vnni)
from hwsim.kernels.pack import unpack_int4_weights

NR = vnni.NR


def _nibble_panels_numpy(w):
    """The nibble panel layout of :func:`vnni.nibble_panels`, from int8 w (N, K), in numpy."""
    n_, k_ = w.shape
    npan, kp = (n_ + NR - 1) // NR, (k_ + 7) // 8 * 8
    u = np.full((npan * NR, kp), 8, np.uint8)
    u[:n_, :k_] = w.view(np.uint8) + np.uint8(8)  # wraps to 0..15 for -8..7
    u = u.reshape(npan, NR, kp // 8, 2, 4)
    byte = u[:, :, :, 0, :] | (u[:, :, :, 1, :] << np.uint8(4))
    return np.ascontiguousarray(byte.transpose(0, 2, 1, 3)).reshape(npan, kp * NR // 2)


def _packed(rng, n, k):
    """Random INT4 weights (n, k) and their packing, with a non-zero pad nibble for odd k."""
    w = rng.integers(-8, 8, (n, k), dtype=np.int8)
    wp = pack_int4(w)
    if k % 2:
        wp[:, -1] |= np.uint8(0xA0)  # the pad nibble must be ignored
    return w, wp


# K: below one 8-group, tails, exactly and beyond one 16 x 16 register block (128), odd.
# N: below, at and beyond one 16-row block and one 64-column panel.
K_RAW = [0, 1, 7, 8, 9, 127, 128, 129, 255, 257, 1029]
N_RAW = [0, 1, 15, 16, 17, 63, 64, 65, 130]


@pytest.mark.parametrize("kernel", ["parallel", "serial"])
@pytest.mark.parametrize("k", K_RAW)
def test_nibble_panels_match_numpy_layout(kernel, k):
    kern = vnni._nibble_panels if kernel == "parallel" else vnni._nibble_panels_serial
    rng = np.random.default_rng(k)
    for n in N_RAW:
        w, wp = _packed(rng, n, k)
        expect = _nibble_panels_numpy(w)
        got = np.empty_like(expect)
        kern(wp, k, got.view(np.uint32))
        np.testing.assert_array_equal(got, expect, err_msg=f"n={n}, k={k}")
        np.testing.assert_array_equal(vnni.nibble_panels(wp, k), expect)


def test_nibble_panels_non_contiguous_input():
    rng = np.random.default_rng(5)
    w, wp = _packed(rng, 140, 259)
    np.testing.assert_array_equal(vnni.nibble_panels(wp[::2], 259), _nibble_panels_numpy(w[::2]))


@pytest.mark.parametrize("k", K_RAW)
def test_unpack_int4_weights_matches_numpy(k):
    rng = np.random.default_rng(k)
    for n in N_RAW:
        w, wp = _packed(rng, n, k)
        got, max_abs = unpack_int4_weights(wp, k)
        assert got.dtype == np.int8 and got.flags.c_contiguous
        np.testing.assert_array_equal(got, unpack_int4(wp, k))
        np.testing.assert_array_equal(got, w)
        assert max_abs == (int(np.abs(w.astype(np.int64)).max()) if w.size else 0)


def test_unpack_int4_weights_max_abs_of_minus_eight():
    assert unpack_int4_weights(pack_int4(np.array([[3, -8, 1]])), 3)[1] == 8


def test_raw_int4_weights_checked():
    a = np.zeros((2, 6), np.int8)
    with pytest.raises(TypeError, match="w_packed: expected uint8"):
        gemm_w4a8(a, np.zeros((3, 3), np.int8))
    with pytest.raises(ValueError, match=r"w_packed: expected shape \(N, ceil\(k / 2\)\)"):
        gemm_w4a8(a, np.zeros((3, 4), np.uint8))
    with pytest.raises(ValueError, match="w_packed"):
        prepack_weights_int4(np.zeros((2, 3, 3), np.uint8), 6)


def _epilogues(rng, n):
    return [{}, dict(requant=Requant(scale=(rng.random(n) * 2e-3).astype(np.float32), bits=8,
                                     zero_point=-3, bias=rng.integers(-5000, 5000, n))),
            dict(dequant=Dequant(scale=(rng.random(n) * 1e-3).astype(np.float32),
                                 bias=rng.standard_normal(n).astype(np.float32)))]


@pytest.mark.parametrize("m", [1, 16, 64])
@pytest.mark.parametrize("k, n", [(1, 1), (7, 65), (129, 17), (257, 130), (1029, 70)])
def test_raw_vs_prepacked_vs_reference(path, m, k, n):
    rng = np.random.default_rng(1000 * m + k)
    w, wp = _packed(rng, n, k)
    pw = prepack_weights_int4(wp, k, path=path)
    a8 = rng.integers(-128, 128, (m, k), dtype=np.int8)
    a4p = pack_int4(rng.integers(-8, 8, (m, k), dtype=np.int8))
    for kw in _epilogues(rng, n):
        epi = dict(epilogue=kw.get("requant", kw.get("dequant")))
        ref = gemm_w4a8_ref(a8, wp, **epi)
        np.testing.assert_array_equal(gemm_w4a8(a8, wp, path=path, **kw), ref)
        np.testing.assert_array_equal(gemm_w4a8(a8, pw, path=path, **kw), ref)
        ref = gemm_int4_ref(a4p, wp, k, **epi)
        np.testing.assert_array_equal(gemm_int4(a4p, wp, k, path=path, **kw), ref)
        np.testing.assert_array_equal(gemm_int4(a4p, pw, k, path=path, **kw), ref)


def test_raw_int4_overflow_checks(path):
    # The raw VNNI path keeps no int8 weights: partial sums and saturation still need them.
    a = np.full((3, 9), -128, np.int8)
    wp = pack_int4(np.full((5, 9), -8))
    with pytest.raises(OverflowError, match=r"gemm_w4a8: 12-bit .* output \[0, 0\]: value 9216"):
        gemm_w4a8(a, wp, acc_bits=12, path=path)
    np.testing.assert_array_equal(gemm_w4a8(a, wp, acc_bits=12, on_overflow="saturate", path=path),
                                  np.full((3, 5), 2047))
    a = np.array([[100, 100, -100, -100]], np.int8)
    wp = pack_int4(np.array([[7, 7, 7, 7]]))
    assert gemm_w4a8(a, wp, acc_bits=12, path=path).tolist() == [[0]]
    with pytest.raises(OverflowError, match=r"after k = 1: value 1400"):
        gemm_w4a8(a, wp, acc_bits=11, overflow_check="partial", path=path)


def test_serial_and_parallel_kernels_cached_apart():
    # Numba's cache keys on the function name, not on parallel=True: same name, shared entries.
    for par, ser in ((vnni.gemm_vnni, vnni.gemm_vnni_serial),
                     (vnni._nibble_panels, vnni._nibble_panels_serial)):
        assert par.targetoptions.get("parallel") and not ser.targetoptions.get("parallel")
        assert par.py_func.__qualname__ != ser.py_func.__qualname__
