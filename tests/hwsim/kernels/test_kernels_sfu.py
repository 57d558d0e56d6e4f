import math
import struct

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
    e = np.float32(np.exp(-np.float64(np.float32(x))))
    assert sfu_sigmoid(x, "fp32") == np.float32(1) / (np.float32(1) + e)
    # fp16: sigmoid(-0.00146484375) = 0.49963379... lies just above the tie between the fp16
    # values 0.49951172 and 0.49975586; float32 arithmetic rounds it up (as torch does), a
    # float64 value rounded to fp32 first lands on the tie and rounds to the even 0.49951172.
    assert sfu_sigmoid(np.float32(-0.00146484375), "fp16") == np.float32(0.49975586)


def _round_scalar(v: float, precision: str) -> float:
    """Round one float64 to ``precision`` with the standard library only (an independent
    reference: struct packs with IEEE round-to-nearest-even; bf16 picks the nearer of the two
    neighbouring bf16 values of the float32, the even one on a tie)."""
    if precision == "fp16":
        return struct.unpack("<e", struct.pack("<e", v))[0]
    f32 = struct.unpack("<f", struct.pack("<f", v))[0]
    if precision == "fp32":
        return f32
    bits = struct.unpack("<I", struct.pack("<f", f32))[0]
    lo_bits = bits & 0xFFFF0000
    lo = struct.unpack("<f", struct.pack("<I", lo_bits))[0]
    hi = struct.unpack("<f", struct.pack("<I", lo_bits + 0x10000))[0]
    d_lo, d_hi = abs(f32 - lo), abs(hi - f32)
    if d_lo != d_hi:
        return lo if d_lo < d_hi else hi
    return lo if not (lo_bits >> 16) & 1 else hi


def _lut_entry(x: int, func: str, in_scale: float, in_zp: int, out_scale: float, out_bits: int,
               precision: str) -> int:
    """One table entry from the module docstring's formula, in plain Python floats."""
    real = _round_scalar(in_scale * (x - in_zp), precision)
    if func == "tanh":
        y = _round_scalar(math.tanh(real), "fp32")
    else:  # float32 ops on a float32 exp; float64 then fp32 is exact rounding for + and /
        try:
            e = _round_scalar(math.exp(-real), "fp32")
        except OverflowError:  # beyond float32 (struct refuses only what rounds to inf)
            e = math.inf
        y = _round_scalar(1.0 / _round_scalar(1.0 + e, "fp32"), "fp32")
    y = _round_scalar(y, precision)
    q = round(y / out_scale)  # Python's round: half to even
    return min(max(q, -(2 ** (out_bits - 1))), 2 ** (out_bits - 1) - 1)


def test_scalar_reference_rounds_like_the_hardware_formats():
    # fp16 tie 1 + 2**-11 (halfway between 1 and 1 + 2**-10) goes to the even 1.0.
    assert _round_scalar(1 + 2**-11, "fp16") == 1.0
    assert _round_scalar(1 + 3 * 2**-11, "fp16") == 1 + 2**-9
    assert _round_scalar(1 + 2**-8, "bf16") == 1.0 and _round_scalar(1 + 3 * 2**-8, "bf16") == 1 + 2**-6


@settings(max_examples=20, deadline=None)
@given(st.sampled_from(["sigmoid", "tanh"]), st.sampled_from([4, 8]),
       st.floats(1e-3, 1.0), st.sampled_from(["fp32", "fp16", "bf16"]), st.integers(-3, 3))
def test_lut_matches_a_scalar_reimplementation(func, in_bits, in_scale, precision, in_zp):
    lut = SfuLut(func, in_bits=in_bits, in_scale=in_scale, out_scale=1 / 127, out_bits=8,
                 in_zero_point=in_zp, precision=precision)
    assert lut.table.shape == (2**in_bits,)
    xs = list(range(-(2 ** (in_bits - 1)), 2 ** (in_bits - 1)))
    ref = [_lut_entry(x, func, in_scale, in_zp, 1 / 127, 8, precision) for x in xs]
    assert lut(np.array(xs)).tolist() == ref
    # The table-free path is the same formula.
    assert sfu_lut_ref(np.array(xs), func, in_bits=in_bits, in_scale=in_scale, out_scale=1 / 127,
                       in_zero_point=in_zp, precision=precision).tolist() == ref


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
