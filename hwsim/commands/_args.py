"""Argument types and groups shared by the sub-commands (one definition of each option)."""

from __future__ import annotations

import argparse
import math

from hwsim.limits import MAX_AUDIO_S, MAX_BEAM, MAX_FRAMES


def _number(text: str, kind: type, minimum: float, strict: bool, maximum: float | None = None):
    try:
        value = kind(text)
    except ValueError:
        name = "an integer" if kind is int else "a number"
        raise argparse.ArgumentTypeError(f"expected {name}, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    if value < minimum or (strict and value == minimum):
        raise argparse.ArgumentTypeError(f"must be {'>' if strict else '>='} {_show(minimum)}, got {text}")
    if maximum is not None and value > maximum:
        raise argparse.ArgumentTypeError(f"must be <= {_show(maximum)}, got {text}")
    return value


def _show(bound: float) -> str:
    return f"{bound:g}" if isinstance(bound, float) else str(bound)


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    return _number(text, int, 1, strict=False)


def count(text: str) -> int:
    """argparse type: an integer >= 0."""
    return _number(text, int, 0, strict=False)


def positive_float(text: str) -> float:
    """argparse type: a finite number > 0."""
    return _number(text, float, 0.0, strict=True)


def seed(text: str) -> int:
    """argparse type: a random seed, 0 .. 2**63 - 1 (numpy's generators take no negative seed;
    ``torch.manual_seed`` takes any 64-bit value)."""
    return _number(text, int, 0, strict=False, maximum=2**63 - 1)


def audio_seconds(text: str) -> float:
    """argparse type: an utterance length in seconds, > 0 and <= ``hwsim.limits.MAX_AUDIO_S``."""
    return _number(text, float, 0.0, strict=True, maximum=MAX_AUDIO_S)


def beam_width(text: str) -> int:
    """argparse type: a beam width, 1 .. ``hwsim.limits.MAX_BEAM``."""
    return _number(text, int, 1, strict=False, maximum=MAX_BEAM)


def frame_count(text: str) -> int:
    """argparse type: a number of input frames, 1 .. ``hwsim.limits.MAX_FRAMES``."""
    return _number(text, int, 1, strict=False, maximum=MAX_FRAMES)


def add_search_args(p: argparse.ArgumentParser, methods=("alsd", "tsd", "greedy")) -> None:
    """--beam, --lm-fusion, --method."""
    p.add_argument("--beam", type=beam_width, default=4, help="beam width (default 4)")
    p.add_argument("--lm-fusion", choices=["none", "dr"], default="none", help="LM fusion (default none)")
    p.add_argument("--method", choices=list(methods), default=methods[0],
                   help=f"search method (default {methods[0]})")


def add_input_args(p: argparse.ArgumentParser) -> None:
    """(--audio WAV | --frames N) and --seed."""
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--audio", help="16-bit PCM mono WAV file to decode")
    src.add_argument("--frames", type=frame_count, help="decode N frames (10 ms each) of random features")
    p.add_argument("--seed", type=seed, default=0, help="seed of random weights (when no checkpoint) and random features (default 0)")


def input_features(config, args: argparse.Namespace):
    """The features selected by ``add_input_args``: (T, input_dim) float tensor.

    Raises:
        UserError: ``--audio`` is unreadable, not 16 kHz mono 16-bit PCM, or longer than
            ``hwsim.limits.MAX_AUDIO_S``.
    """
    import models.features as feats
    from models.yamlio import UserError

    if args.audio:
        wave, rate = feats.load_wav(args.audio, expected_rate_hz=feats.SAMPLE_RATE_HZ)
        if wave.numel() > MAX_AUDIO_S * rate:
            raise UserError(f"--audio {args.audio}: {wave.numel() / rate:.1f} s long; at most "
                            f"{MAX_AUDIO_S:g} s is accepted (split the recording into utterances)")
        features = feats.features_for(config, wave, rate)
        check_frames(config, features.shape[0], f"--audio {args.audio} ({wave.numel() / rate:.3g} s)")
        return features
    check_frames(config, args.frames, f"--frames {args.frames}")
    return feats.random_features(config, args.frames, args.seed)


def check_frames(config, frames: int, what: str) -> None:
    """``UserError`` naming ``what`` unless ``frames`` input frames give an encoder output frame."""
    from models.yamlio import UserError
    from workloads.stats import encoder_frames

    try:
        encoder_frames(config, frames)
    except ValueError as exc:  # the one check encoder_frames makes: too few frames
        raise UserError(f"{what}: {exc}") from None
