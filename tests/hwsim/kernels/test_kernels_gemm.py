import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwsim.kernels import (Dequant, Requant, gemm_int4, gemm_int4_ref, gemm_int8, gemm_ref,
                           gemm_w4a8, gemm_w4a8_ref, kernel_path, pack_int4, prepack_weights,
                           prepack_weights_int4)

K_EDGE = [1, 2, 3, 4, 5, 63, 64, 65, 127, 128, 129]


def _values(rng, shape, lo, hi, style):
    if style == "extreme":
        return rng.choice(np.array([lo, hi], np.int8), shape)
    if style == "min":
        return np.full(shape, lo, np.int8)
    return rng.integers(lo, hi + 1, shape, dtype=np.int8)


def _epilogue(rng, n, kind):
    if kind == "requant":
        return dict(requant=Requant(scale=(rng.random(n) * 2e-3).astype(np.float32),
                                    bits=int(rng.choice([4, 8])), narrow=bool(rng.random() < 0.5),
                                    zero_point=int(rng.integers(-3, 4)),
                                    bias=rng.integers(-5000, 5000, n)))
    if kind == "requant_tensor_unsigned":
        return dict(requant=Requant(scale=np.float32(rng.random() * 1e-3), bits=8, signed=False,
                                    zero_point=128))
    if kind == "dequant":
        return dict(dequant=Dequant(scale=(rng.random(n) * 1e-3).astype(np.float32),
                                    bias=rng.standard_normal(n).astype(np.float32)))
    return {}


def _ref_kw(kw):
    return dict(epilogue=kw.get("requant", kw.get("dequant")))


shapes = st.tuples(st.sampled_from([1, 2, 5, 6, 7, 13]),
                   st.one_of(st.sampled_from(K_EDGE), st.integers(1, 300)),
                   st.sampled_from([1, 3, 16, 63, 64, 65, 130]))
styles = st.sampled_from(["uniform", "extreme", "min"])
epilogues = st.sampled_from(["none", "requant", "requant_tensor_unsigned", "dequant"])


@settings(max_examples=25, deadline=None)
@given(shapes, styles, epilogues, st.integers(0, 2**32 - 1))
def test_int8_bit_exact(path, shape, style, epi, seed):
    rng = np.random.default_rng(seed)
    m, k, n = shape
    a, w = _values(rng, (m, k), -128, 127, style), _values(rng, (n, k), -128, 127, style)
    kw = _epilogue(rng, n, epi)
    got, ref = gemm_int8(a, w, path=path, **kw), gemm_ref(a, w, **_ref_kw(kw))
    assert got.dtype == ref.dtype and got.shape == (m, n)
    np.testing.assert_array_equal(got, ref)


@settings(max_examples=25, deadline=None)
@given(shapes, styles, epilogues, st.integers(0, 2**32 - 1))
def test_int4_and_w4a8_bit_exact(path, shape, style, epi, seed):
    rng = np.random.default_rng(seed)
    m, k, n = shape
    a4, w4 = _values(rng, (m, k), -8, 7, style), _values(rng, (n, k), -8, 7, style)
    a8 = _values(rng, (m, k), -128, 127, style)
    kw = _epilogue(rng, n, epi)
    got = gemm_int4(pack_int4(a4), pack_int4(w4), k, path=path, **kw)
    np.testing.assert_array_equal(got, gemm_int4_ref(pack_int4(a4), pack_int4(w4), k, **_ref_kw(kw)))
    got = gemm_w4a8(a8, pack_int4(w4), path=path, **kw)
    np.testing.assert_array_equal(got, gemm_w4a8_ref(a8, pack_int4(w4), **_ref_kw(kw)))


def test_prepacked_weights_are_reusable(path):
    rng = np.random.default_rng(1)
    a, w = rng.integers(-128, 128, (9, 70), dtype=np.int8), rng.integers(-8, 8, (33, 70), dtype=np.int8)
    pw = prepack_weights_int4(pack_int4(w), 70, path=path)
    np.testing.assert_array_equal(gemm_w4a8(a, pw, path=path), gemm_ref(a, w))
    np.testing.assert_array_equal(gemm_int8(a, prepack_weights(w, path=path), path=path),
                                  gemm_ref(a, w))


def test_larger_shape_all_minimum_values(path):
    a, w = np.full((17, 1000), -128, np.int8), np.full((70, 1000), -128, np.int8)
    np.testing.assert_array_equal(gemm_int8(a, w, path=path), np.full((17, 70), 16384000))


def test_empty_shapes(path):
    assert gemm_int8(np.zeros((0, 5), np.int8), np.zeros((3, 5), np.int8), path=path).shape == (0, 3)
    out = gemm_int8(np.zeros((2, 0), np.int8), np.zeros((3, 0), np.int8), path=path)
    np.testing.assert_array_equal(out, np.zeros((2, 3), np.int32))


def test_acc16_overflow_raises_names_kernel_index_value(path):
    a = np.zeros((2, 8), np.int8)
    a[1] = 127
    w = np.full((3, 8), 127, np.int8)
    with pytest.raises(OverflowError, match=r"gemm_int8: 16-bit .* output \[1, 0\]: value 129032"):
        gemm_int8(a, w, acc_bits=16, path=path)
    sat = gemm_int8(a, w, acc_bits=16, on_overflow="saturate", path=path)
    np.testing.assert_array_equal(sat, [[0, 0, 0], [32767] * 3])
    with pytest.raises(OverflowError, match="gemm_w4a8"):
        gemm_w4a8(a, pack_int4(np.full((3, 8), -8)), acc_bits=8, path=path)


def test_partial_sums_checked_only_when_asked(path):
    # Partial sums 10000, 20000, 10000, 0: the final sum fits 15 bits, the second partial does not.
    a = np.array([[100, 100, -100, -100]], np.int8)
    w = np.array([[100, 100, 100, 100]], np.int8)
    assert gemm_int8(a, w, acc_bits=15, path=path).tolist() == [[0]]
    with pytest.raises(OverflowError, match=r"after k = 1: value 20000"):
        gemm_int8(a, w, acc_bits=15, overflow_check="partial", path=path)
    sat = gemm_int8(a, w, acc_bits=15, overflow_check="partial", on_overflow="saturate", path=path)
    assert sat.tolist() == [[16383 - 20000]]
    ref = gemm_ref(a, w, acc_bits=15, overflow_check="partial", on_overflow="saturate")
    np.testing.assert_array_equal(sat, ref)


def test_int32_overflow_is_never_wrapped(path):
    k = 140_000  # 140000 * 128 * 128 > 2**31
    a, w = np.full((1, k), -128, np.int8), np.full((2, k), -128, np.int8)
    with pytest.raises(OverflowError, match="32-bit"):
        gemm_int8(a, w, path=path)
    assert gemm_int8(a, w, path=path, on_overflow="saturate").tolist() == [[2**31 - 1] * 2]


def test_requant_round_half_even_hand_cases(path):
    a = np.array([[5], [7], [-5], [-7], [3], [100], [-100]], np.int8)
    w = np.array([[1]], np.int8)
    out = gemm_int8(a, w, requant=Requant(scale=0.5, bits=4, narrow=True), path=path)
    assert out[:, 0].tolist() == [2, 4, -2, -4, 2, 7, -7]
    assert out.dtype == np.int8
    # Bias is added in int32 before scaling; the zero point after rounding.
    out = gemm_int8(a, w, requant=Requant(scale=0.5, bits=8, zero_point=10, bias=[1]), path=path)
    assert out[:, 0].tolist() == [13, 14, 8, 7, 12, 60, -40]
    out = gemm_int8(a, w, requant=Requant(scale=1.0, bits=4, signed=False), path=path)
    assert out[:, 0].tolist() == [5, 7, 0, 0, 3, 15, 0] and out.dtype == np.uint8


def test_requant_matches_torch_fake_quant(path):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    a, w = rng.integers(-128, 128, (8, 200), dtype=np.int8), rng.integers(-128, 128, (24, 200), dtype=np.int8)
    scale = (rng.random(24) * 1e-3).astype(np.float32)
    bias = rng.integers(-10_000, 10_000, 24)
    acc = torch.from_numpy(a.astype(np.int64) @ w.astype(np.int64).T + bias)
    expect = torch.clamp(torch.round(acc.float() * torch.from_numpy(scale)), -128, 127)
    got = gemm_int8(a, w, requant=Requant(scale=scale, bias=bias), path=path)
    np.testing.assert_array_equal(got, expect.to(torch.int8).numpy())


def test_rejects_out_of_range_and_bad_arguments():
    with pytest.raises(ValueError, match="a:"):
        gemm_int8(np.array([[200]]), np.array([[1]], np.int8))
    with pytest.raises(ValueError, match="acc_bits"):
        gemm_int8(np.ones((1, 1), np.int8), np.ones((1, 1), np.int8), acc_bits=40)
    with pytest.raises(ValueError, match="disagree"):
        gemm_int8(np.ones((1, 2), np.int8), np.ones((1, 3), np.int8))


def test_env_forces_portable(monkeypatch):
    monkeypatch.setenv("HWSIM_KERNELS", "portable")
    assert kernel_path() == "portable"


@pytest.mark.parametrize("m, k, n", [(1, 1100, 70), (7, 1029, 130), (13, 2 * 512 + 8, 64)])
def test_k_blocked_shapes_bit_exact(path, m, k, n):
    # K beyond one K block of the VNNI kernel (vnni.KC = 512), with K and N tails.
    rng = np.random.default_rng(k)
    a, w = rng.integers(-128, 128, (m, k), dtype=np.int8), rng.integers(-128, 128, (n, k), dtype=np.int8)
    w4 = rng.integers(-8, 8, (n, k), dtype=np.int8)
    kw = _epilogue(rng, n, "requant")
    np.testing.assert_array_equal(gemm_int8(a, prepack_weights(w, path=path), path=path, **kw),
                                  gemm_ref(a, w, **_ref_kw(kw)))
    pw4 = prepack_weights_int4(pack_int4(w4), k, path=path)
    np.testing.assert_array_equal(gemm_w4a8(a, pw4, path=path, **kw), gemm_ref(a, w4, **_ref_kw(kw)))
    np.testing.assert_array_equal(gemm_w4a8(np.full((m, k), -128, np.int8), pw4, path=path),
                                  gemm_ref(np.full((m, k), -128, np.int8), w4))


def test_int4_panels_hold_half_the_bytes():
    w = np.random.default_rng(0).integers(-8, 8, (128, 256), dtype=np.int8)
    pw8, pw4 = prepack_weights(w), prepack_weights_int4(pack_int4(w), 256)
    if pw8.panels is None:
        pytest.skip("no VNNI panels on this host")
    assert pw4.nibbles and pw4.panels.nbytes * 2 == pw8.panels.nbytes
