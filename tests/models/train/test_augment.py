"""Feature augmentation: the warp moves formants where the mel scale says, the stretch keeps
trajectories, masks use the fill value, draws are reproducible, and the trainer uses them."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import models
from models.features import log_mel
from models.train.augment import AugmentConfig, augment, stretch, warp_positions
from models.train.rnnt_trainer import RNNTTrainConfig, train_rnnt

torch.set_num_threads(1)


def test_parse():
    assert AugmentConfig.parse("none") is None
    assert AugmentConfig.parse("default") == AugmentConfig()
    c = AugmentConfig.parse("warp=0.05, time_masks=0")
    assert c.warp == 0.05 and c.time_masks == 0 and c.speed == AugmentConfig().speed
    with pytest.raises(ValueError, match="wrap=0.1.*one of"):
        AugmentConfig.parse("wrap=0.1")
    with pytest.raises(ValueError, match="time_masks='x': expected an int"):
        AugmentConfig.parse("time_masks=x")
    with pytest.raises(ValueError, match="must be >= 0"):
        AugmentConfig.parse("speed=-0.1")


def test_warp_positions_identity_and_direction():
    assert torch.allclose(warp_positions(80, 1.0), torch.arange(80, dtype=torch.float64), atol=1e-9)
    up = warp_positions(80, 1.1)  # spectrum stretched up: band i reads from a lower frequency
    assert torch.all(up[1:] <= torch.arange(1, 80)) and torch.all(torch.diff(up) >= 0)
    assert up[-1] < 79  # the top band reads from below Nyquist


def _peak_band(feats: torch.Tensor) -> int:
    return int(feats.mean(0).argmax())


@pytest.mark.parametrize("alpha", [0.88, 1.12])
def test_warp_moves_a_tone_to_alpha_times_its_frequency(alpha):
    sr, f0 = 16000, 1500.0
    t = torch.arange(sr // 2) / sr
    tone = torch.sin(2 * torch.pi * f0 * t)
    moved = torch.sin(2 * torch.pi * alpha * f0 * t)
    x = log_mel(tone)
    warped = augment(x, np.random.default_rng(0), AugmentConfig(warp=0, speed=0, freq_masks=0, time_masks=0), x[0])
    assert torch.equal(warped, x)  # all off: unchanged
    pos = warp_positions(80, alpha)
    w = x[:, pos.floor().long()] * (1 - (pos - pos.floor())).float() + x[:, (pos.floor().long() + 1).clamp(max=79)] * (pos - pos.floor()).float()
    # the warped tone peaks where a real tone at alpha * f0 peaks (within one band)
    assert abs(_peak_band(w) - _peak_band(log_mel(moved))) <= 1
    assert _peak_band(w) != _peak_band(x)


def test_stretch_keeps_a_linear_trajectory():
    x = torch.arange(100, dtype=torch.float32)[:, None].repeat(1, 3)
    y = stretch(x, 1.25)
    assert y.shape == (80, 3)
    assert torch.allclose(y[:, 0], torch.linspace(0, 99, 80), atol=1e-4)
    assert stretch(x, 1.0) is x


def test_masks_fill_and_reproducibility():
    x = torch.randn(200, 40) + 5.0
    fill = torch.full((40,), -7.0)
    cfg = AugmentConfig(warp=0, speed=0, freq_masks=2, freq_width=8, time_masks=2, time_width=20)
    a = augment(x, np.random.default_rng(3), cfg, fill)
    b = augment(x, np.random.default_rng(3), cfg, fill)
    assert torch.equal(a, b)
    masked = a == -7.0
    assert masked.any() and torch.equal(a[~masked], x[~masked])
    # masked cells form whole columns (bands) and whole rows (frames), nothing else
    cols, rows = masked.all(0), masked.all(1)
    assert torch.equal(masked, cols[None, :] | rows[:, None])
    assert int(rows.sum()) <= 2 * 20 and int(cols.sum()) <= 2 * 8
    c = augment(x, np.random.default_rng(4), AugmentConfig(), fill)
    assert c.shape[1] == 40 and 180 <= c.shape[0] <= 223  # speed 0.9 .. 1.1


def _data(n=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    feats = [torch.randn(40 + 4 * (i % 5), 16, generator=g).half() for i in range(n)]
    return {"feats": feats, "texts": ["ab c" if i % 2 else "ba" for i in range(n)]}


def test_trainer_augments_reproducibly_and_only_in_training(tmp_path):
    tc = RNNTTrainConfig(max_steps=2, time_budget_s=1e6, max_frames=200, max_batch=4, checkpoint_every=100,
                         eval_every=100, dev_utts=4, warmup_steps=1, augment="default", dropout=0.2)
    runs = []
    for name in ("a", "b", "c"):
        rnnt = models.build_system("tiny", seed=0).rnnt
        cfg = tc if name != "c" else RNNTTrainConfig(**{**tc.__dict__, "augment": "none", "dropout": 0.0})
        runs.append(train_rnnt(rnnt, rnnt.cfg, _data(), _data(4, 1), tmp_path / f"{name}.pt", cfg, progress=False))
    assert [h[1] for h in runs[0]["history"]] == [h[1] for h in runs[1]["history"]]  # same seed, same draws
    assert [h[1] for h in runs[0]["history"]] != [h[1] for h in runs[2]["history"]]  # augmentation is used
    rnnt.encoder.dropout = 0.5
    rnnt.eval()
    x = torch.randn(1, 30, 16)
    assert torch.equal(rnnt.encoder(x), rnnt.encoder(x))  # no dropout in eval mode
    rnnt.train()
    assert not torch.equal(rnnt.encoder(x), rnnt.encoder(x))


def test_trainer_rejects_warp_on_delta_features():
    cfg = models.load_config("swb300")
    with pytest.raises(ValueError, match="augment='default'.*plain log-mel"):
        train_rnnt(None, cfg, _data(), _data(), "/nonexistent/x.pt", RNNTTrainConfig(augment="default"),
                   progress=False)
