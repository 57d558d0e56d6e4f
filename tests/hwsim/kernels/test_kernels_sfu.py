import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwsim.kernels import SfuLut, round_bf16, sfu_lut_ref, sfu_sigmoid, sfu_tanh


def test_round_bf16_ties_to_even():
    x = np.array([1 + 2**-8, 1 + 3 * 2**-8, -(1 + 2**-8), 1 + 2**-8 + 2**-20], np.float32)
    np.testing.assert_array_equal(round_bf16(x), [1.0, 1 + 2**-6, -1.0, 1 + 2**-7])
    assert np.isnan(round_bf16(np.array([np.nan], np.float32)))[0]


@pytest.mark.parametrize("fn", [sfu_sigmoid, sfu_tanh])
@pytest.mark.parametrize("precision", ["fp32", "fp16", "bf16"])
def test_outputs_representable_and_monotone(fn, precision):
    x = np.linspace(-12, 12, 4001, dtype=np.float32)
    y = fn(x, precision)
    assert y.dtype == np.float32
    if precision == "fp16":
        np.testing.assert_array_equal(y.astype(np.float16).astype(np.float32), y)
    if precision == "bf16":
        assert not np.any(y.view(np.uint32) & 0xFFFF)
    assert np.all(np.diff(y) >= 0)


def test_hand_values_and_input_rounding():
    assert sfu_sigmoid(np.float32(0.0), "bf16") == 0.5
    assert sfu_tanh(np.float32(0.0), "fp16") == 0.0
    # fp16 input rounding: 1 + 2**-12 rounds to 1.0 before tanh is evaluated.
    assert sfu_tanh(np.float32(1 + 2**-12), "fp16") == sfu_tanh(np.float32(1.0), "fp16")
    x = np.float64(0.3)
    assert sfu_sigmoid(x, "fp32") == np.float32(1 / (1 + np.exp(-np.float64(np.float32(x)))))


@settings(max_examples=20, deadline=None)
@given(st.sampled_from(["sigmoid", "tanh"]), st.sampled_from([4, 8]),
       st.floats(1e-3, 1.0), st.sampled_from(["fp32", "fp16", "bf16"]), st.integers(-3, 3))
def test_lut_matches_direct_formula(func, in_bits, in_scale, precision, in_zp):
    lut = SfuLut(func, in_bits=in_bits, in_scale=in_scale, out_scale=1 / 127, out_bits=8,
                 in_zero_point=in_zp, precision=precision)
    assert lut.table.shape == (2**in_bits,)
    xs = np.arange(-(2 ** (in_bits - 1)), 2 ** (in_bits - 1))
    ref = sfu_lut_ref(xs, func, in_bits=in_bits, in_scale=in_scale, out_scale=1 / 127,
                      in_zero_point=in_zp, precision=precision)
    np.testing.assert_array_equal(lut(xs), ref)


def test_lut_hand_case_round_half_even_and_clamp():
    # sigmoid(0) / 1.0 = 0.5 -> 0 (half to even); sigmoid(7) / 0.125 = 7.99 -> 8 -> clamp to 7.
    lut = SfuLut("sigmoid", in_bits=4, in_scale=1.0, out_scale=1.0, out_bits=4)
    assert lut(np.array([0, 7])).tolist() == [0, 1]
    lut = SfuLut("sigmoid", in_bits=4, in_scale=1.0, out_scale=0.125, out_bits=4)
    assert lut(np.array([0, 7, -8])).tolist() == [4, 7, 0]
    lut_n = SfuLut("tanh", in_bits=8, in_scale=0.25, out_scale=1 / 8, out_bits=4)
    assert lut_n(np.array([-128, 0, 127])).tolist() == [-8, 0, 7]
    lut_u = SfuLut("sigmoid", in_bits=8, in_scale=0.25, out_scale=1 / 256, out_bits=8,
                   out_signed=False)
    assert lut_u(np.array([-128, 0, 127])).tolist() == [0, 128, 255]


def test_lut_rejects_out_of_range_inputs():
    lut = SfuLut("tanh", in_bits=4, in_scale=0.5, out_scale=1 / 7, out_bits=4)
    with pytest.raises(ValueError, match="x"):
        lut(np.array([8]))
