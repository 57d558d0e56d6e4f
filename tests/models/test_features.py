"""Log-mel front end, deltas, WAV reading."""

from __future__ import annotations

import dataclasses
import math
import wave

import numpy as np
import pytest
import torch

import models
from models.features import add_deltas, deltas, features_for, load_wav, log_mel, mel_filterbank


def test_log_mel_shape_one_second():
    feats = log_mel(torch.randn(16000), 16000, n_mels=80)
    assert feats.shape == (98, 80)  # 1 + (16000 - 400) // 160, no padding
    assert log_mel(torch.randn(300), 16000).shape == (0, 80)


def test_tone_peaks_in_the_right_band():
    sr, f0 = 16000, 1000.0
    t = torch.arange(sr) / sr
    feats = log_mel(torch.sin(2 * math.pi * f0 * t), sr, n_mels=40)
    fb = mel_filterbank(40, 512, sr)
    bin_1k = round(f0 / (sr / 2) * 256)
    assert int(feats.mean(0).argmax()) == int(fb[:, bin_1k].argmax())


def test_deltas_of_a_ramp():
    T = 20
    ramp = (3.0 * torch.arange(T, dtype=torch.float32) + 1.0)[:, None].repeat(1, 4)
    d = deltas(ramp)
    torch.testing.assert_close(d[2:-2], torch.full((T - 4, 4), 3.0))  # slope, away from the edges
    dd = deltas(d)
    torch.testing.assert_close(dd[4:-4], torch.zeros(T - 8, 4))
    assert add_deltas(torch.randn(7, 40)).shape == (7, 120)


def test_features_for_configs():
    wave_ = torch.randn(8000)
    swb = models.load_config("swb300")
    assert features_for(swb, wave_).shape == (48, 120)
    assert features_for(models.load_config("small"), wave_).shape == (48, 80)
    bad = dataclasses.replace(swb, features=dataclasses.replace(swb.features, input_dim=7))
    with pytest.raises(ValueError, match="input_dim=7"):
        features_for(bad, wave_)
    r = models.random_features(swb, 5, seed=1)
    assert r.shape == (5, 120) and torch.equal(r, models.random_features(swb, 5, seed=1))


def _write(path, data, channels=1, width=2, rate=16000):
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(data)


def test_load_wav(tmp_path):
    samples = np.array([0, 16384, -32768, 32767], dtype="<i2")
    _write(tmp_path / "a.wav", samples.tobytes())
    x, sr = load_wav(tmp_path / "a.wav")
    assert sr == 16000 and x.dtype == torch.float32
    torch.testing.assert_close(x, torch.tensor([0.0, 0.5, -1.0, 32767 / 32768]))
    _write(tmp_path / "st.wav", np.zeros(8, "<i2").tobytes(), channels=2)
    with pytest.raises(ValueError, match="mono"):
        load_wav(tmp_path / "st.wav")
    _write(tmp_path / "8b.wav", bytes(8), width=1)
    with pytest.raises(ValueError, match="16-bit"):
        load_wav(tmp_path / "8b.wav")
    (tmp_path / "no.wav").write_bytes(b"not a wav")
    with pytest.raises(ValueError, match="WAV"):
        load_wav(tmp_path / "no.wav")


def test_frames_are_aligned_to_their_window():
    x = torch.randn(4000)
    j = 5
    frame = x[j * 160: j * 160 + 400] * torch.hann_window(400)
    power = torch.fft.rfft(frame, n=512).abs() ** 2
    expected = torch.log(torch.clamp(mel_filterbank(40, 512, 16000) @ power, min=1e-10))
    torch.testing.assert_close(log_mel(x, 16000, n_mels=40)[j], expected, rtol=1e-4, atol=1e-4)
