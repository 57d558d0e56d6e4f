import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwsim.kernels import pack_int4, unpack_int4


def test_hand_layout_low_nibble_first_odd_k_padded():
    assert pack_int4(np.array([1, -1, 7])).tolist() == [0xF1, 0x07]
    assert pack_int4(np.array([[-8, 7], [0, -1]])).tolist() == [[0x78], [0xF0]]
    assert unpack_int4(np.array([0xF1, 0x07], np.uint8), 3).tolist() == [1, -1, 7]


def test_pack_dtype_and_shape():
    packed = pack_int4(np.zeros((2, 3, 5), np.int8))
    assert packed.dtype == np.uint8 and packed.shape == (2, 3, 3)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 4), st.integers(1, 67), st.integers(0, 2**32 - 1))
def test_round_trip(rows, k, seed):
    x = np.random.default_rng(seed).integers(-8, 8, (rows, k), dtype=np.int8)
    y = unpack_int4(pack_int4(x), k)
    assert y.dtype == np.int8 and y.flags.c_contiguous
    np.testing.assert_array_equal(y, x)


@pytest.mark.parametrize("bad", [8, -9, 127])
def test_out_of_range_names_argument(bad):
    with pytest.raises(ValueError, match="weights"):
        pack_int4(np.array([0, bad]), name="weights")


def test_unpack_rejects_wrong_length():
    with pytest.raises(ValueError, match="ceil"):
        unpack_int4(np.zeros(3, np.uint8), 3)
