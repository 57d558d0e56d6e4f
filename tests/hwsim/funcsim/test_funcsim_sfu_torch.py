"""The float SFU against torch's float32 sigmoid / tanh, which the fake-quantized model uses.

At fp16 and bf16 the gate signals of the torch model are ``round_p(torch.sigmoid(x))`` of inputs
that are themselves fp16 / bf16 values (the rounded pre-activations), so every input can be
tried: the SFU must give the same value for each (``hwsim.kernels.sfu`` docstring).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hwsim.kernels import sfu_sigmoid, sfu_tanh

torch.set_num_threads(1)


def _all_finite(precision: str) -> np.ndarray:
    if precision == "fp16":
        x = np.arange(1 << 16, dtype=np.uint16).view(np.float16).astype(np.float32)
    else:
        x = (np.arange(1 << 16, dtype=np.uint32) << 16).view(np.float32)
    return x[np.isfinite(x)]


@pytest.mark.parametrize("precision", ["fp16", "bf16"])
@pytest.mark.parametrize("func", ["sigmoid", "tanh"])
def test_sfu_equals_torch_for_every_input(precision, func):
    x = _all_finite(precision)
    dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}[precision]
    torch_fn, sfu = {"sigmoid": (torch.sigmoid, sfu_sigmoid), "tanh": (torch.tanh, sfu_tanh)}[func]
    ref = torch_fn(torch.from_numpy(x.copy())).to(dtype).float().numpy()
    got = sfu(x, precision)
    bad = np.flatnonzero(ref != got)
    assert bad.size == 0, f"{func} at {precision} differs from torch at x = {x[bad][:8]}"
    # the case a twice-rounded float64 sigmoid got wrong (one ulp16 low)
    if precision == "fp16" and func == "sigmoid":
        i = int(np.flatnonzero(x == np.float32(-0.00146484375))[0])
        assert got[i] == np.float32(0.49975586) == ref[i]
