"""Zero-point GEMM (asymmetric operands) against its numpy reference, bit for bit, and by hand."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwsim.kernels import gemm_zp, gemm_zp_ref, prepare_zp_weights

K_EDGE = [1, 3, 7, 8, 9, 64, 65, 129]


def test_hand_values():
    # a - za = [[1, 2]], w - zw = [[3, -1], [0, 5]] -> [1*3 + 2*-1, 1*0 + 2*5] = [1, 10]
    a = np.array([[3, 4]], np.int8)
    w = np.array([[2, -2], [-1, 4]], np.int8)
    pw = prepare_zp_weights(w, [-1, -1], bits=4)
    assert gemm_zp(a, pw, 2, a_bits=4).tolist() == [[1, 10]]
    assert gemm_zp_ref(a, w, 2, -1).tolist() == [[1, 10]]


@settings(max_examples=60, deadline=None)
@given(st.sampled_from([1, 2, 5, 17]), st.sampled_from(K_EDGE), st.sampled_from([1, 3, 16, 33]),
       st.sampled_from([(4, 4), (8, 4), (8, 8)]), st.sampled_from(["random", "extreme"]),
       st.integers(0, 2**31 - 1), st.booleans())
def test_matches_reference(m, k, n, bits, style, seed, per_row):
    a_bits, w_bits = bits
    rng = np.random.default_rng(seed)
    lo_a, hi_a = (-8, 7) if a_bits == 4 else (-128, 127)
    lo_w, hi_w = (-8, 7) if w_bits == 4 else (-128, 127)
    if style == "extreme":
        a = rng.choice(np.array([lo_a, hi_a], np.int8), (m, k))
        w = rng.choice(np.array([lo_w, hi_w], np.int8), (n, k))
        za = int(rng.choice([lo_a, hi_a]))
        zw = rng.choice(np.array([lo_w, hi_w]), n) if per_row else int(rng.choice([lo_w, hi_w]))
    else:
        a = rng.integers(lo_a, hi_a + 1, (m, k), dtype=np.int8)
        w = rng.integers(lo_w, hi_w + 1, (n, k), dtype=np.int8)
        za = int(rng.integers(lo_a, hi_a + 1))
        zw = rng.integers(lo_w, hi_w + 1, n) if per_row else int(rng.integers(lo_w, hi_w + 1))
    for path in ("portable", None):
        got = gemm_zp(a, prepare_zp_weights(w, zw, w_bits, path=path), za, a_bits=a_bits, path=path)
        assert got.dtype == np.int32
        np.testing.assert_array_equal(got, gemm_zp_ref(a, w, za, zw))


def test_extremes_and_overflow():
    # every factor at its extreme: (-128 - 127) * (127 - -128) = -65025 per k
    k = 300
    a = np.full((2, k), -128, np.int8)
    w = np.full((3, k), 127, np.int8)
    pw = prepare_zp_weights(w, -128, bits=8)
    want = gemm_zp_ref(a, w, 127, -128)
    assert want[0, 0] == k * (-255) * 255
    np.testing.assert_array_equal(gemm_zp(a, pw, 127), want)
    # a 24-bit accumulator holds -2**23..2**23-1: -19,507,500 is outside
    with pytest.raises(OverflowError, match=r"gemm_zp: 24-bit accumulator overflow at output \[0, 0\]"):
        gemm_zp(a, pw, 127, acc_bits=24)
    with pytest.raises(OverflowError, match=r"gemm_zp: 24-bit accumulator overflow at output \[0, 0\]"):
        gemm_zp_ref(a, w, 127, -128, acc_bits=24)
    sat = gemm_zp(a, pw, 127, acc_bits=24, on_overflow="saturate")
    np.testing.assert_array_equal(sat, gemm_zp_ref(a, w, 127, -128, acc_bits=24, on_overflow="saturate"))
    assert (sat == -(2**23)).all()
    # the corrected sum fits although the raw codes' sum would not have fitted 16 bits: raw is
    # checked too (the engine's accumulator), so both raise
    a2, w2 = np.full((1, 8), 100, np.int8), np.full((1, 8), 100, np.int8)
    with pytest.raises(OverflowError):
        gemm_zp(a2, prepare_zp_weights(w2, 100, bits=8), 100, acc_bits=16)
    with pytest.raises(OverflowError):
        gemm_zp_ref(a2, w2, 100, 100, acc_bits=16)


def test_rejects_bad_arguments():
    w = np.zeros((2, 4), np.int8)
    with pytest.raises(ValueError, match="within -8..7"):
        prepare_zp_weights(np.full((2, 4), 9, np.int8), 0, bits=4)
    with pytest.raises(ValueError, match="integers"):
        prepare_zp_weights(w, 0.5, bits=8)
    with pytest.raises(ValueError, match="disagree"):
        gemm_zp(np.zeros((1, 3), np.int8), prepare_zp_weights(w, 0, bits=8), 0)
