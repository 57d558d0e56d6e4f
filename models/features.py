"""Log-mel acoustic front end (torch.stft, no torchaudio) and WAV reading (stdlib ``wave``).

Frames are cut without padding ("snip edges", as Kaldi does): a wave of N samples gives
``1 + (N - win) // shift`` frames (98 frames for 1 s at 16 kHz with 25 ms windows, 10 ms shift).
"""

from __future__ import annotations

import wave as _wave
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from models.config import ModelConfig
from models.yamlio import UserError

LOG_FLOOR = 1e-10
#: Sample rate of the audio the models' front end is trained at (the synthetic corpus's rate).
SAMPLE_RATE_HZ = 16000


def _hz_to_mel(f: Tensor) -> Tensor:
    return 2595.0 * torch.log10(1.0 + f / 700.0)


def _mel_to_hz(m: Tensor) -> Tensor:
    return 700.0 * (10.0 ** (m / 2595.0) - 1.0)


def mel_edges_hz(n_mels: int, sample_rate: int, f_min_hz: float = 20.0, f_max_hz: float | None = None) -> Tensor:
    """The n_mels + 2 band edges (float64 Hz) of :func:`mel_filterbank`, equally spaced in HTK mel
    from f_min to f_max (default Nyquist); band i rises from edge i, peaks at edge i + 1 (its
    centre) and falls to edge i + 2."""
    f_max_hz = sample_rate / 2 if f_max_hz is None else f_max_hz
    return _mel_to_hz(torch.linspace(float(_hz_to_mel(torch.tensor(f_min_hz))),
                                     float(_hz_to_mel(torch.tensor(f_max_hz))), n_mels + 2,
                                     dtype=torch.float64))


def hz_to_mel(f: Tensor) -> Tensor:
    """HTK mel of frequencies in Hz."""
    return _hz_to_mel(f)


def mel_filterbank(n_mels: int, n_fft: int, sample_rate: int, f_min_hz: float = 20.0,
                   f_max_hz: float | None = None) -> Tensor:
    """Triangular HTK-mel filters, (n_mels, n_fft // 2 + 1), applied to a power spectrum."""
    edges = mel_edges_hz(n_mels, sample_rate, f_min_hz, f_max_hz)
    bins = torch.linspace(0, sample_rate / 2, n_fft // 2 + 1, dtype=torch.float64)
    lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    up = (bins - lo) / (mid - lo)
    down = (hi - bins) / (hi - mid)
    return torch.clamp(torch.minimum(up, down), min=0.0).float()


def log_mel(wave: Tensor, sample_rate: int = 16000, n_mels: int = 80, frame_shift_s: float = 0.01,
            win_s: float = 0.025) -> Tensor:
    """Log mel filterbank energies.

    Args:
        wave: (N,) samples (any scale; float).
        sample_rate: in Hz.
        n_mels: number of mel bands.
        frame_shift_s, win_s: frame shift and Hann window length, in seconds.

    Returns:
        (T, n_mels) float32, T = 1 + (N - win) // shift (0 if the wave is shorter than a window).
    """
    wave = torch.as_tensor(wave, dtype=torch.float32).reshape(-1)
    shift = int(round(frame_shift_s * sample_rate))
    win = int(round(win_s * sample_rate))
    if wave.numel() < win:
        return torch.zeros(0, n_mels)
    n_fft = 1 << (win - 1).bit_length()
    # torch.stft centres the win-long window inside each n_fft-long frame: pad so that frame j's
    # window covers samples [j * shift, j * shift + win) exactly
    left = (n_fft - win) // 2
    wave = torch.nn.functional.pad(wave, (left, n_fft - win - left))
    spec = torch.stft(wave, n_fft=n_fft, hop_length=shift, win_length=win,
                      window=torch.hann_window(win), center=False, return_complex=True)
    power = spec.abs().pow(2)  # (n_fft/2+1, T)
    mel = mel_filterbank(n_mels, n_fft, sample_rate) @ power
    return torch.log(torch.clamp(mel, min=LOG_FLOOR)).T.contiguous()


def deltas(feats: Tensor, window: int = 2) -> Tensor:
    """Regression deltas over time: d_t = sum_n n (x_{t+n} - x_{t-n}) / (2 sum_n n^2), edges
    replicated. feats (T, D) -> (T, D)."""
    T = feats.shape[0]
    if T == 0:
        return feats.clone()
    idx = torch.arange(T)
    denom = 2.0 * sum(n * n for n in range(1, window + 1))
    out = torch.zeros_like(feats)
    for n in range(1, window + 1):
        out += n * (feats[(idx + n).clamp(max=T - 1)] - feats[(idx - n).clamp(min=0)])
    return out / denom


def add_deltas(feats: Tensor, order: int = 2, window: int = 2) -> Tensor:
    """Append deltas up to ``order``: (T, D) -> (T, D * (order + 1)) (40 -> 120 for order 2)."""
    out, cur = [feats], feats
    for _ in range(order):
        cur = deltas(cur, window)
        out.append(cur)
    return torch.cat(out, dim=1)


def features_for(config: ModelConfig, wave: Tensor, sample_rate: int = 16000) -> Tensor:
    """Encoder input features (T, config.features.input_dim) for a wave.

    120 columns = 40 log-mel + deltas + double deltas; otherwise ``input_dim`` plain log-mel bands
    when that is one of 40, 64, 80 (or any even count 16..128).

    Raises:
        UserError (a ValueError): an input_dim this front end cannot produce.
    """
    f = config.features
    kw = dict(sample_rate=sample_rate, frame_shift_s=f.frame_shift_s)
    if f.input_dim == 120:
        return add_deltas(log_mel(wave, n_mels=40, **kw), order=2)
    if 16 <= f.input_dim <= 128:
        return log_mel(wave, n_mels=f.input_dim, **kw)
    raise UserError(
        f"model {config.name!r}: features.input_dim={f.input_dim} cannot be produced by the log-mel "
        "front end (120 = 40 log-mel + deltas + double deltas, or 16..128 plain log-mel bands)"
    )


def random_features(config: ModelConfig, frames: int, seed: int = 0) -> Tensor:
    """Standard-normal features (frames, input_dim) from a private generator (tests, CLIs)."""
    gen = torch.Generator().manual_seed(int(seed))
    return torch.randn(frames, config.features.input_dim, generator=gen)


def load_wav(path: str | Path, expected_rate_hz: int | None = None) -> tuple[Tensor, int]:
    """Read a 16-bit PCM mono WAV file.

    Args:
        path: the file.
        expected_rate_hz: if given, a file at another sample rate is rejected (the models' front
            end is trained at ``SAMPLE_RATE_HZ``; features of other rates would not match).

    Returns:
        (wave (N,) float32 in [-1, 1), sample_rate_hz).

    Raises:
        UserError (a ValueError): missing, a directory, not a WAV file, not mono, not 16-bit PCM,
            or not at ``expected_rate_hz``; the message names the file.
    """
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{path}: is a directory; expected a 16-bit PCM mono WAV file")
    try:
        with _wave.open(str(path), "rb") as w:
            channels, width, rate, n = w.getnchannels(), w.getsampwidth(), w.getframerate(), w.getnframes()
            if w.getcomptype() != "NONE":
                raise UserError(f"{path}: compressed WAV ({w.getcompname()}) is not supported")
            raw = w.readframes(n)
    except OSError as exc:
        raise UserError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    except (_wave.Error, EOFError) as exc:
        raise UserError(f"{path}: not a readable PCM WAV file ({exc})") from exc
    if channels != 1:
        raise UserError(f"{path}: {channels} channels; only mono is supported")
    if width != 2:
        raise UserError(f"{path}: {8 * width}-bit samples; only 16-bit PCM is supported")
    if expected_rate_hz is not None and rate != expected_rate_hz:
        raise UserError(f"{path}: sample rate {rate} Hz; expected {expected_rate_hz} Hz "
                        "(resample the file, e.g. sox in.wav -r 16000 out.wav)")
    data = np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0
    return torch.from_numpy(data.copy()), rate


def duration_s(frames: int, config: ModelConfig) -> float:
    """Audio seconds covered by ``frames`` input feature frames."""
    return frames * config.features.frame_shift_s


__all__ = ["log_mel", "add_deltas", "deltas", "features_for", "random_features", "load_wav",
           "mel_filterbank", "mel_edges_hz", "hz_to_mel", "duration_s"]
