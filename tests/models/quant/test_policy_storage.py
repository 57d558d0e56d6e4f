"""Precision policies: role resolution with overrides, storage bytes by hand, compression bounds."""

from math import ceil

import pytest

from models.config import load_config
from models.params import ParamSpec, parameter_table
from models.quant.policy import (
    Override, PrecisionPolicy, QuantSpec, ROLES, compression_x, load_policy, policies,
    storage_bytes, tensor_storage_bytes,
)
from models.yamlio import ConfigError

W = ParamSpec("m.layers.0.weight_ih", (8, 5), "m.layers.0", "weight", "encoder", gates=4)


def _policy(weight: QuantSpec, **kw) -> PrecisionPolicy:
    roles = {r: QuantSpec("fp32") for r in ROLES}
    roles["weight"] = weight
    return PrecisionPolicy("t", roles, **kw)


def test_shipped_policies_load():
    assert {"fp32", "fp16", "int8", "int4", "int4-naive"} <= set(policies())
    for name in policies():
        assert load_policy(name).name == name


def test_int4_packing_pads_odd_rows_and_counts_scales():
    # 8 rows of 5 INT4 codes: ceil(5/2) = 3 bytes per row -> 24 bytes; per-channel fp32 scales: 8*4.
    pol = _policy(QuantSpec("int4", "sawb", "channel"))
    assert tensor_storage_bytes(W, pol.param_spec(W), pol) == {"data": 24, "scales": 32, "zero_points": 0}
    # per gate: 4 scales; asymmetric -> 4 zero points of 8 bits
    pol = _policy(QuantSpec("int4", "minmax", "gate", symmetric=False))
    assert tensor_storage_bytes(W, pol.param_spec(W), pol) == {"data": 24, "scales": 16, "zero_points": 4}
    # fp16 scales halve the scale bytes; int2 packs 4 per byte: ceil(10/8) = 2 bytes per row
    pol = _policy(QuantSpec("int2", "sawb", "tensor"), scale_precision="fp16")
    assert tensor_storage_bytes(W, pol.param_spec(W), pol) == {"data": 16, "scales": 2, "zero_points": 0}


def test_overrides_last_match_wins():
    pol = _policy(
        QuantSpec("int4", "sawb", "channel"),
        overrides=(
            Override("rnnt.joint.*", {"weight": QuantSpec("int8", "max")}),
            Override("rnnt.joint.out", {"weight": QuantSpec("fp16")}),
        ),
    )
    assert pol.spec("rnnt.encoder.layers.0.fwd", "weight").precision == "int4"
    assert pol.spec("rnnt.joint.enc_proj", "weight").precision == "int8"
    assert pol.spec("rnnt.joint.out", "weight").precision == "fp16"
    with pytest.raises(KeyError, match="unknown tensor role"):
        pol.spec("x", "gates")


def test_compression_of_paper_model():
    table = parameter_table(load_config("swb300"))
    assert compression_x(table, load_policy("fp32")) == 1.0
    assert compression_x(table, load_policy("fp16")) == 2.0
    # Ideal INT4 is 8x; FP32 biases and per-channel scales cost the rest.
    x = compression_x(table, load_policy("int4"))
    assert 7.0 < x < 8.0
    n_bias = sum(p.numel for p in table if p.role == "bias")
    n_rows = sum(p.shape[0] for p in table if p.role in ("weight", "embedding"))
    data = sum(p.shape[0] * ceil(p.shape[1] / 2) for p in table if p.role in ("weight", "embedding"))
    assert storage_bytes(table, load_policy("int4")) == data + 4 * n_bias + 4 * n_rows


def test_invalid_specs_are_rejected(tmp_path):
    with pytest.raises(ValueError, match="needs a quantizer"):
        QuantSpec("int4")
    with pytest.raises(ValueError, match="takes quantizer 'none'"):
        QuantSpec("fp16", "sawb")
    with pytest.raises(ValueError, match="fixed_range"):
        QuantSpec("int4", "fixed")
    bad = tmp_path / "p.yaml"
    bad.write_text("name: p\nroles:\n  weight: {precision: int3, quantizer: sawb}\n")
    with pytest.raises(ConfigError, match=r"p.yaml: roles.weight precision must be one of"):
        load_policy(bad)
    bad.write_text("name: p\nroles:\n  weight: {precision: fp32}\n")
    with pytest.raises(ConfigError, match="roles missing"):
        load_policy(bad)
