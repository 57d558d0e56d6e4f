"""Per layer: integer accumulators and requantized hidden codes against the fake-quant torch layer."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hwsim.funcsim import IntSystem
from hwsim.funcsim.system import stack_frames
from models.quant import load


def _codes(t: torch.Tensor, q) -> np.ndarray:
    """Codes of a fake-quantized tensor: value / scale rounds to the code (value = fl32(code * scale))."""
    v = t.detach().numpy().astype(np.float64) / float(q.scale.reshape(-1)[0])
    codes = np.rint(v)
    assert np.abs(v - codes).max() < 1e-5
    return codes.astype(np.int64)


class _Capture:
    """Outputs of a torch layer's q_input / q_hidden quantizers, in call order."""

    def __init__(self, layer) -> None:
        self.inputs, self.hidden = [], []
        self.handles = [layer.q_input.register_forward_hook(lambda m, i, o: self.inputs.append(_codes(o, m))),
                        layer.q_hidden.register_forward_hook(lambda m, i, o: self.hidden.append(_codes(o, m)))]

    def close(self) -> None:
        for h in self.handles:
            h.remove()


def _rec():
    store = {}

    def rec(module, slot, value):
        store.setdefault(slot, []).append(np.array(value, copy=True))
    return store, rec


@pytest.mark.parametrize("policy", ["int4", "int8"])
@pytest.mark.parametrize("direction", ["fwd", "bwd"])
def test_encoder_layer_accumulators_and_hidden_codes(exports, policy, direction):
    """200 recurrence steps of encoder layer 0: acc == int64 matmul of the torch model's codes."""
    ref, sim = load(exports[policy]), IntSystem.from_export(exports[policy])
    layer = ref.rnnt.encoder.layers[0][direction]
    name = f"rnnt.encoder.layers.0.{direction}"
    ilayer = sim.encoder.layers[0][direction]
    feats = torch.randn(400, sim.config.features.input_dim, generator=torch.Generator().manual_seed(3)) * 2
    x = stack_frames(feats.numpy(), 2, 2)  # (200, 32)
    assert x.shape[0] == 200
    cap = _Capture(layer)
    with torch.inference_mode():
        layer(torch.from_numpy(x).unsqueeze(1))
    cap.close()
    store, rec = _rec()
    out = ilayer.sequence(ilayer.q_in.quantize(x), rec)
    x_codes = cap.inputs[0].reshape(200, -1)
    w_ih = layer.q_weight_ih.codes(layer.weight_ih).numpy()
    w_hh = layer.q_weight_hh.codes(layer.weight_hh).numpy()
    h_ref = np.concatenate(cap.hidden)  # processing order
    h_prev = np.concatenate([np.zeros_like(h_ref[:1]), h_ref[:-1]])
    assert np.array_equal(store["q_input"][0], x_codes)
    assert np.array_equal(store["acc_ih"][0], x_codes @ w_ih.T)
    assert np.array_equal(np.concatenate(store["acc_hh"]), h_prev @ w_hh.T)
    assert np.array_equal(np.concatenate(store["q_hidden"]), h_ref)
    order = np.arange(200)[::-1] if direction == "bwd" else np.arange(200)
    assert np.array_equal(out[order], h_ref)
    assert len(np.unique(h_ref)) > 5 and np.abs(x_codes).max() >= 6  # the grids are really used
    assert name == ilayer.name


@pytest.mark.parametrize("policy", ["int4", "int8"])
def test_lm_layers_step_by_step(exports, policy):
    """300 single steps through both layers of lm_ext with random labels: codes and accumulators."""
    ref, sim = load(exports[policy]), IntSystem.from_export(exports[policy])
    labels = np.random.default_rng(0).integers(0, sim.config.num_labels, 300)
    caps = [_Capture(layer) for layer in ref.lm_ext.layers]
    state_r, state_s = None, None
    store, rec = _rec()
    logp_diff = 0.0
    with torch.inference_mode():
        for y in labels:
            lp_r, state_r = ref.lm_ext(torch.tensor([int(y)]), state_r)
            lp_s, state_s = sim.lm_ext(np.array([y]), state_s, rec)
            logp_diff = max(logp_diff, float(np.abs(lp_r.numpy() - lp_s).max()))
    for cap in caps:
        cap.close()
    for i, (layer, cap) in enumerate(zip(ref.lm_ext.layers, caps)):
        x = np.concatenate(cap.inputs)
        h = np.concatenate(cap.hidden)
        h_prev = np.concatenate([np.zeros_like(h[:1]), h[:-1]])
        w_ih = layer.q_weight_ih.codes(layer.weight_ih).numpy()
        w_hh = layer.q_weight_hh.codes(layer.weight_hh).numpy()
        # rec interleaves the two layers step by step: layer i's records are every other one
        acc_ih = np.concatenate(store["acc_ih"][i::2])
        acc_hh = np.concatenate(store["acc_hh"][i::2])
        assert np.array_equal(acc_ih, x @ w_ih.T)
        assert np.array_equal(acc_hh, h_prev @ w_hh.T)
        assert np.array_equal(np.concatenate(store["q_hidden"][i::2]), h)
    # log-probs: float32 log-softmax of fp16 logits, differences of float32 rounding only
    assert logp_diff < 1e-5
