"""System building, determinism, checkpoints, lazy torch import, module names."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

import models
from models.yamlio import ConfigError


def test_presets_and_unknown():
    assert {"tiny", "small", "swb300", "swb300-stream"} <= set(models.presets())
    with pytest.raises(ConfigError, match="unknown model preset"):
        models.build_system("nope")


def test_build_is_deterministic_and_eval():
    a, b, c = models.build_system("tiny", 0), models.build_system("tiny", 0), models.build_system("tiny", 1)
    for (n, p), (_, q), (_, r) in zip(a.named_parameters(), b.named_parameters(), c.named_parameters()):
        assert torch.equal(p, q), n
        assert not torch.equal(p, r), n
    assert not any(m.training for _, m in a.named_modules())
    w = a.rnnt.encoder.layers[0]["fwd"].weight_hh
    assert w.abs().max() <= 1 / 16 ** 0.5  # uniform(-1/sqrt(H), 1/sqrt(H)), H = 16


def test_named_modules_are_prefixed(tiny):
    names = dict(tiny.named_modules())
    for n in ("rnnt", "rnnt.encoder.layers.0.fwd", "rnnt.encoder.layers.1.bwd", "rnnt.prediction.layers.0",
              "rnnt.joint.enc_proj", "rnnt.joint.pred_proj", "rnnt.joint.out", "lm_ext.layers.1",
              "lm_src.out", "lm_ext.embedding", "rnnt.encoder.layers.0.fwd.q_hidden"):
        assert n in names, n


def test_checkpoint_roundtrip(tmp_path):
    sys_a = models.build_system("tiny", seed=3)
    path = sys_a.save(tmp_path / "ck.pt")
    sys_b = models.load_system(path)
    sys_c = models.build_system("tiny", seed=9, checkpoint=path)
    assert sys_b.config == sys_a.config
    for (n, p), (_, q), (_, r) in zip(sys_a.named_parameters(), sys_b.named_parameters(), sys_c.named_parameters()):
        assert torch.equal(p, q) and torch.equal(p, r), n
    with pytest.raises(ValueError, match="differs"):
        models.build_system("small", checkpoint=path)
    torch.save({"x": 1}, tmp_path / "bad.pt")
    with pytest.raises(ValueError, match="not a"):
        models.load_system(tmp_path / "bad.pt")


def test_importing_models_does_not_import_torch():
    code = ("import sys, models, models.config, models.params, models.quant.policy; "
            "models.load_config('tiny'); assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_labels_text_roundtrip(tiny):
    labels = models.text_to_labels(tiny.config, "it's ok")
    assert models.labels_to_text(tiny.config, (0,) + labels + (0,)) == "it's ok"
    with pytest.raises(ValueError, match="alphabet"):
        models.text_to_labels(tiny.config, "A")
