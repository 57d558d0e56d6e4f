"""Export: packing layout, bytes == policy storage, dequantized == fake-quantized, round trip."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from models.features import random_features
from models.params import parameter_table
from models.quant import export, load, pack_bits, quant_slots, quantize, read_manifest, unpack_bits
from models.quant.policy import load_policy, policies, storage_bytes
from models.quant.qsystem import WEIGHT_SLOTS
from models.system import build_system

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def tiny():
    return build_system("tiny", 0)


def _feats(system):
    return [random_features(system.config, 40, seed=i) for i in range(2)]


def test_pack_int4_example_and_int2():
    assert pack_bits(np.array([1, -1, 7]), 4).tolist() == [0xF1, 0x07]
    assert pack_bits(np.array([1, -1, 0, -2, 1]), 2).tolist() == [0b10001101, 0b01]


@settings(max_examples=40, deadline=None)
@given(rows=st.integers(1, 4), k=st.integers(1, 9), bits=st.sampled_from([2, 4]), seed=st.integers(0, 999))
def test_pack_round_trip_and_agrees_with_hwsim(rows, k, bits, seed):
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    codes = np.random.default_rng(seed).integers(lo, hi + 1, (rows, k))
    packed = pack_bits(codes, bits)
    assert packed.shape == (rows, -(-k * bits // 8))
    assert np.array_equal(unpack_bits(packed, k, bits), codes)
    if bits == 4:
        kernels = pytest.importorskip("hwsim.kernels.pack")
        assert np.array_equal(packed, kernels.pack_int4(codes.astype(np.int8)))


def _weight_slots(qsys):
    return {(m, s): (mod, q) for m, mod, s, q in quant_slots(qsys) if s in WEIGHT_SLOTS and s != "q_bias"}


def _policies():
    fp16_scales = dataclasses.replace(load_policy("int4"), name="int4-fp16-scales", scale_precision="fp16")
    zp4 = dataclasses.replace(load_policy("int4-naive"), name="int4-naive-zp4", zero_point_bits=4)
    return [load_policy(p) for p in policies()] + [fp16_scales, zp4]


@pytest.mark.parametrize("policy", _policies(), ids=lambda p: p.name)
def test_export_bytes_and_exact_dequantization(tiny, policy, tmp_path):
    q = quantize(tiny, policy, "ptq", calib_features=_feats(tiny))
    manifest = export(q, tmp_path / "m.npz")
    assert manifest["weight_bytes"] == storage_bytes(parameter_table(tiny.config), policy)
    with np.load(tmp_path / "m.npz") as z:
        assert sum(z[k].nbytes for k in z.files if k != "manifest") == manifest["weight_bytes"]
    assert [t["name"] for t in manifest["tensors"]] == [p.name for p in parameter_table(tiny.config)]
    loaded = load(tmp_path / "m.npz")
    orig, back = _weight_slots(q), _weight_slots(loaded)
    assert orig.keys() == back.keys()
    with torch.no_grad():
        for key, (mod, qz) in orig.items():
            attr = WEIGHT_SLOTS[key[1]]
            fake = qz(getattr(mod, attr))
            mod2, qz2 = back[key]
            w2 = getattr(mod2, attr)
            assert torch.equal(w2, fake), key            # dequantized export == fake-quantized
            assert torch.equal(qz2(w2), w2), key         # and it stays put under the quantizer
        feats = random_features(tiny.config, 30, seed=5).unsqueeze(0)
        labels = torch.tensor([[3, 1, 4, 1, 5]])
        assert torch.equal(q.rnnt(feats, labels), loaded.rnnt(feats, labels))
        assert torch.equal(q.lm_ext.forward_sequence(labels), loaded.lm_ext.forward_sequence(labels))


def test_manifest_describes_int4_layout(tiny, tmp_path):
    q = quantize(tiny, "int4", "ptq", calib_features=_feats(tiny))
    export(q, tmp_path / "m.npz")
    m = read_manifest(tmp_path / "m.npz")
    t = next(t for t in m["tensors"] if t["name"] == "rnnt.encoder.layers.0.fwd.weight_ih")
    assert t["layout"] == "int4x2" and t["shape"] == [64, 32] and t["scales"] == 64
    assert t["data_bytes"] == 64 * 16 and t["scale_bytes"] == 64 * 4 and (t["qmin"], t["qmax"]) == (-7, 7)
    acts = {(a["module"], a["slot"]): a for a in m["activations"]}
    a = acts[("rnnt.encoder.layers.0.fwd", "q_input")]
    assert a["quantizer"] == "pact2" and a["scale"] == pytest.approx(a["alpha"] / 7)
    assert acts[("rnnt.encoder.layers.0.fwd", "q_cell")]["precision"] == "fp16"
    assert m["fp32_weight_bytes"] == 4 * sum(p.numel for p in parameter_table(tiny.config))


def test_export_of_live_qat_system(tiny, tmp_path):
    q = quantize(tiny, "int4", "qat", calib_features=_feats(tiny))
    export(q, tmp_path / "m.npz")
    loaded = load(tmp_path / "m.npz")
    with torch.no_grad():
        layer, layer2 = q.lm_src.layers[0], loaded.lm_src.layers[0]
        assert torch.equal(layer.q_weight_hh(layer.weight_hh), layer2.weight_hh)
