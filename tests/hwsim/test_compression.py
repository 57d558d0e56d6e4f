"""Compression of the whole system and per sub-model."""

from __future__ import annotations

import pytest

from hwsim import compression
from models.params import parameter_count


def test_swb300_int4_between_7_and_8():
    c = compression("swb300", "int4")
    assert 7.0 < c.compression_x < 8.0
    assert c.fp32_weight_bytes == 4 * parameter_count(c_config())
    assert set(c.by_submodel) == {"rnnt", "lm_ext", "lm_src"}
    assert c.tensors["bytes"].sum() == c.weight_bytes


def c_config():
    from models.config import load_config

    return load_config("swb300")


def test_fp16_exactly_two():
    assert compression("swb300", "fp16").compression_x == 2.0
    assert compression("swb300", "fp32").compression_x == 1.0


def test_int4_counts_scales():
    # Per-channel INT4 weights: each row of a (4H, I) LSTM weight stores ceil(I/2) bytes plus one
    # FP32 scale. Check one tensor by hand: rnnt.encoder.layers.0.fwd.weight_ih is (2560, 240).
    t = compression("swb300", "int4").tensors.set_index("name")
    row = t.loc["rnnt.encoder.layers.0.fwd.weight_ih"]
    assert row["data_bytes"] == 2560 * 120 and row["scale_bytes"] == 2560 * 4
    assert row["zero_point_bytes"] == 0
    bias = t.loc["rnnt.encoder.layers.0.fwd.bias"]
    assert bias["bytes"] == 2560 * 4       # biases stay FP32 under the int4 policy
