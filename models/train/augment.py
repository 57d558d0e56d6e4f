"""On-the-fly augmentation of log-mel training features against voice overfitting.

The synthetic corpus has a few hundred voices; the first FP32 model learned them (train loss 0.11
vs dev 0.69 nats/label, CER 9% on training voices vs 33% on held-out ones). Three standard,
cheap feature-domain perturbations, drawn per utterance from a seeded generator:

- **frequency warp** (VTLP, Jaitly & Hinton 2013): the spectrum is scaled by ``alpha`` (a formant
  at f moves to alpha * f), which mimics a shorter or longer vocal tract, i.e. another speaker.
  Done exactly on the HTK-mel axis of ``models.features.mel_filterbank``: output band i takes
  the log energy at source frequency f_i / alpha, linearly interpolated between bands. The
  default range 0.8-1.2 is wider than VTLP's usual 0.9-1.1 on purpose: it spans the
  female/male formant ratio (about 1.15-1.2 for vowel formants, Peterson & Barney 1952), and the
  first model's worst voice by far (65% CER) was the held-out female flite voice ``slt``, every
  flite training voice being male. [assumption: chosen from that breakdown, not tuned]
- **speed** (time stretch of the feature sequence by linear interpolation between frames): a
  faster or slower talker (Ko et al. 2015 perturb the waveform; stretching frames leaves the
  pitch alone, which the warp covers).
- **SpecAugment** masks (Park et al. 2019): a few bands and a few frame spans set to the
  training mean (0 after normalization), so that no single band or instant is relied on.

All perturbations act on raw log-mel (before normalization); the utterance length changes
only through ``speed``, so batch padding and encoder lengths are computed afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import torch
from torch import Tensor

from models.features import hz_to_mel, mel_edges_hz


@dataclass(frozen=True)
class AugmentConfig:
    """Augmentation strengths (0 turns a perturbation off).

    Attributes:
        warp: frequency-warp factor drawn uniformly from [1 - warp, 1 + warp].
        speed: time-stretch factor drawn uniformly from [1 - speed, 1 + speed] (> 1 = faster).
        freq_masks, freq_width: SpecAugment frequency masks: count and largest width in bands.
        time_masks, time_width: time masks: count and largest width in frames, each also at most
            ``time_ratio`` of the utterance.
        sample_rate, f_min_hz: of the log-mel front end (``models.features.log_mel``).
    """

    warp: float = 0.2
    speed: float = 0.1
    freq_masks: int = 2
    freq_width: int = 12
    time_masks: int = 2
    time_width: int = 30
    time_ratio: float = 0.1
    sample_rate: int = 16000
    f_min_hz: float = 20.0

    @classmethod
    def parse(cls, spec: str) -> "AugmentConfig | None":
        """``"none"`` -> None; ``"default"`` -> defaults; ``"warp=0.1,time_masks=0"`` -> defaults
        with those fields changed.

        Raises:
            ValueError: naming an unknown field or a value of the wrong type.
        """
        spec = spec.strip()
        if spec == "none":
            return None
        if spec in ("", "default"):
            return cls()
        kinds = {f.name: f.type for f in fields(cls)}
        values = {}
        for item in spec.split(","):
            key, sep, val = item.partition("=")
            key = key.strip()
            if not sep or key not in kinds:
                raise ValueError(f"augmentation {item!r}: expected NAME=VALUE with NAME one of "
                                 f"{sorted(kinds)} (or the whole spec 'none' / 'default')")
            kind = int if kinds[key] in (int, "int") else float
            try:
                values[key] = kind(val)
            except ValueError:
                raise ValueError(f"augmentation {key}={val!r}: expected a{'n int' if kind is int else ' number'}") from None
            if values[key] < 0:
                raise ValueError(f"augmentation {key}={val!r}: must be >= 0")
        return cls(**values)

def warp_positions(n_mels: int, alpha: float, sample_rate: int = 16000, f_min_hz: float = 20.0) -> Tensor:
    """Fractional source band of every output band when the spectrum is scaled by ``alpha``.

    Band centres are those of ``models.features.mel_filterbank`` (HTK mel, f_min .. Nyquist);
    positions outside the band range are clamped to the edge bands.
    """
    centres_hz = mel_edges_hz(n_mels, sample_rate, f_min_hz)[1:-1]
    centres_mel = hz_to_mel(centres_hz)
    step = float(centres_mel[1] - centres_mel[0]) if n_mels > 1 else 1.0  # equal spacing in mel
    return ((hz_to_mel(centres_hz / alpha) - centres_mel[0]) / step).clamp(0, n_mels - 1)


def _interp(x: Tensor, pos: Tensor, dim: int) -> Tensor:
    """Linear interpolation of ``x`` at fractional indices ``pos`` along ``dim`` (0 or 1)."""
    i0 = pos.floor().long().clamp(max=x.shape[dim] - 1)
    i1 = (i0 + 1).clamp(max=x.shape[dim] - 1)
    w = (pos - i0).to(x.dtype)
    if dim == 1:
        return x[:, i0] * (1 - w) + x[:, i1] * w
    return x[i0] * (1 - w)[:, None] + x[i1] * w[:, None]


def stretch(x: Tensor, factor: float) -> Tensor:
    """(T, D) -> (round(T / factor), D) by linear interpolation between frames."""
    T = x.shape[0]
    n = max(1, int(round(T / factor)))
    if n == T or T < 2:
        return x
    pos = torch.linspace(0, T - 1, n, dtype=torch.float64)
    return _interp(x, pos, 0)


def augment(x: Tensor, rng: np.random.Generator, cfg: AugmentConfig, fill: Tensor) -> Tensor:
    """One perturbed copy of raw log-mel features ``x`` (T, D) (float32 out).

    Args:
        x: features as ``models.features.log_mel`` returns them (plain log-mel bands).
        rng: draws every random choice (seed it per step for reproducible, resumable training).
        cfg: strengths.
        fill: (D,) value of masked cells (the training mean: 0 after normalization).
    """
    x = x.float()
    T, D = x.shape
    if cfg.warp > 0:
        alpha = float(rng.uniform(1 - cfg.warp, 1 + cfg.warp))
        x = _interp(x, warp_positions(D, alpha, cfg.sample_rate, cfg.f_min_hz), 1)
    if cfg.speed > 0:
        x = stretch(x, float(rng.uniform(1 - cfg.speed, 1 + cfg.speed)))
    T = x.shape[0]
    if (cfg.freq_masks and cfg.freq_width) or (cfg.time_masks and cfg.time_width):
        x = x.clone()
    for _ in range(cfg.freq_masks if cfg.freq_width else 0):
        w = int(rng.integers(0, min(cfg.freq_width, D) + 1))
        f0 = int(rng.integers(0, D - w + 1))
        x[:, f0:f0 + w] = fill[f0:f0 + w]
    widest = min(cfg.time_width, int(cfg.time_ratio * T))
    for _ in range(cfg.time_masks if widest > 0 else 0):
        w = int(rng.integers(0, widest + 1))
        t0 = int(rng.integers(0, T - w + 1))
        x[t0:t0 + w] = fill
    return x


__all__ = ["AugmentConfig", "augment", "stretch", "warp_positions"]
