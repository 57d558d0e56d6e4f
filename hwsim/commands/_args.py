"""Argument types and groups shared by the sub-commands (one definition of each option)."""

from __future__ import annotations

import argparse


def _number(text: str, kind: type, minimum: float, strict: bool):
    try:
        value = kind(text)
    except ValueError:
        name = "an integer" if kind is int else "a number"
        raise argparse.ArgumentTypeError(f"expected {name}, got {text!r}") from None
    if value < minimum or (strict and value == minimum):
        raise argparse.ArgumentTypeError(f"must be {'>' if strict else '>='} {minimum:g}, got {text}")
    return value


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    return _number(text, int, 1, strict=False)


def count(text: str) -> int:
    """argparse type: an integer >= 0."""
    return _number(text, int, 0, strict=False)


def positive_float(text: str) -> float:
    """argparse type: a number > 0."""
    return _number(text, float, 0.0, strict=True)


def add_search_args(p: argparse.ArgumentParser, methods=("alsd", "tsd", "greedy")) -> None:
    """--beam, --lm-fusion, --method."""
    p.add_argument("--beam", type=positive_int, default=4, help="beam width (default 4)")
    p.add_argument("--lm-fusion", choices=["none", "dr"], default="none", help="LM fusion (default none)")
    p.add_argument("--method", choices=list(methods), default=methods[0],
                   help=f"search method (default {methods[0]})")


def add_input_args(p: argparse.ArgumentParser) -> None:
    """(--audio WAV | --frames N) and --seed."""
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--audio", help="16-bit PCM mono WAV file to decode")
    src.add_argument("--frames", type=positive_int, help="decode N frames (10 ms each) of random features")
    p.add_argument("--seed", type=int, default=0, help="seed of random weights (when no checkpoint) and random features (default 0)")


def input_features(config, args: argparse.Namespace):
    """The features selected by ``add_input_args``: (T, input_dim) float tensor."""
    import models.features as feats

    if args.audio:
        wave, rate = feats.load_wav(args.audio)
        return feats.features_for(config, wave, rate)
    return feats.random_features(config, args.frames, args.seed)
