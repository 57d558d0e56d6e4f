"""Batches for training: length-bucketed acoustic batches and padded LM text batches.

The bidirectional encoder has no lengths argument, so utterances are sorted by length and cut
into batches of near-equal length; shorter members are padded at the end with copies of their
own last frame (trailing silence: every utterance ends in noise-only frames). The loss uses each
utterance's true encoder length, so padded frames are never scored.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from models.config import ModelConfig
from models.system import text_to_labels


@dataclass
class AcousticBatch:
    """feats (B, T, D) float32, labels (B, U) int64 (padded with 1), T_out (B,) encoder frames,
    U_len (B,) labels."""

    feats: Tensor
    labels: Tensor
    T_out: Tensor
    U_len: Tensor

    @property
    def size(self) -> int:
        return int(self.feats.shape[0])


@dataclass(frozen=True)
class FeatureNorm:
    """Global per-dimension mean and standard deviation of the training features."""

    mean: Tensor
    std: Tensor

    @classmethod
    def estimate(cls, feats: Sequence[Tensor], max_utts: int = 2000, seed: int = 0) -> "FeatureNorm":
        rng = np.random.default_rng(seed)
        pick = rng.choice(len(feats), min(max_utts, len(feats)), replace=False)
        x = torch.cat([feats[i].float() for i in pick])
        return cls(x.mean(0), x.std(0).clamp(min=1e-3))

    def apply(self, x: Tensor) -> Tensor:
        return (x - self.mean) / self.std

    def state(self) -> dict:
        return {"mean": self.mean, "std": self.std}


def fold_norm_into_encoder(rnnt, norm: FeatureNorm) -> None:
    """Fold ``(x - mean) / std`` into the first encoder layer, in place, so that the model takes
    raw ``features_for`` output: W' = W / s, b' = b - W' m, with m, s repeated ``stack`` times."""
    stack = rnnt.cfg.features.stack
    m, s = norm.mean.repeat(stack), norm.std.repeat(stack)
    with torch.no_grad():
        for layer in rnnt.encoder.layers[0].values():
            w = layer.weight_ih / s
            layer.weight_ih.copy_(w)
            layer.bias.sub_(w @ m)


def labels_of(cfg: ModelConfig, text: str) -> list[int]:
    return list(text_to_labels(cfg, text))


def make_acoustic_batches(cfg: ModelConfig, feats: Sequence[Tensor], texts: Sequence[str],
                          max_frames: int, max_batch: int, min_frames: int = 8) -> list[list[int]]:
    """Index lists of batches: utterances sorted by length, each batch at most ``max_frames``
    padded input frames (B x longest) and ``max_batch`` utterances."""
    order = sorted((i for i in range(len(feats)) if feats[i].shape[0] >= min_frames),
                   key=lambda i: feats[i].shape[0])
    batches, cur = [], []
    for i in order:
        longest = feats[i].shape[0]
        if cur and ((len(cur) + 1) * longest > max_frames or len(cur) >= max_batch):
            batches.append(cur)
            cur = []
        cur.append(i)
    if cur:
        batches.append(cur)
    return batches


def collate(cfg: ModelConfig, encoder, feats: Sequence[Tensor], label_seqs: Sequence[Sequence[int]],
            norm: FeatureNorm | None) -> AcousticBatch:
    """Pad a batch (end-padding with each utterance's last frame) and normalize."""
    T = max(f.shape[0] for f in feats)
    out = []
    for f in feats:
        f = f.float()
        if f.shape[0] < T:
            f = torch.cat([f, f[-1:].expand(T - f.shape[0], -1)])
        out.append(f)
    x = torch.stack(out)
    if norm is not None:
        x = norm.apply(x)
    U = max(1, max(len(y) for y in label_seqs))
    labels = torch.ones(len(feats), U, dtype=torch.long)
    for b, y in enumerate(label_seqs):
        labels[b, : len(y)] = torch.tensor(y, dtype=torch.long)
    T_out = torch.tensor([encoder.output_frames(f.shape[0]) for f in feats])
    U_len = torch.tensor([len(y) for y in label_seqs])
    return AcousticBatch(x, labels, T_out, U_len)


def epoch_batches(batches: list[list[int]], seed: int, epoch: int) -> list[list[int]]:
    """Batch order of one epoch (a seeded shuffle of the bucketed batches)."""
    rng = np.random.default_rng([seed, epoch])
    return [batches[i] for i in rng.permutation(len(batches))]


def lm_batch(label_seqs: Sequence[Sequence[int]]) -> tuple[Tensor, Tensor, Tensor]:
    """(inputs (B, U+1) = <s> y, targets (B, U+1) = y </s>, mask (B, U+1)) with <s> = </s> = 0."""
    U = max(len(y) for y in label_seqs) + 1
    inputs = torch.zeros(len(label_seqs), U, dtype=torch.long)
    targets = torch.zeros_like(inputs)
    mask = torch.zeros(len(label_seqs), U, dtype=torch.bool)
    for b, y in enumerate(label_seqs):
        t = torch.tensor(list(y), dtype=torch.long)
        inputs[b, 1 : len(y) + 1] = t
        targets[b, : len(y)] = t
        mask[b, : len(y) + 1] = True
    return inputs, targets, mask


def lm_batches(label_seqs: Sequence[Sequence[int]], batch: int, seed: int) -> Iterator[list[int]]:
    """Endless stream of index lists of ``batch`` sentences of similar length (seeded)."""
    order = sorted(range(len(label_seqs)), key=lambda i: len(label_seqs[i]))
    chunks = [order[k : k + batch] for k in range(0, len(order), batch)]
    epoch = 0
    while True:
        rng = np.random.default_rng([seed, epoch])
        for i in rng.permutation(len(chunks)):
            yield chunks[i]
        epoch += 1


__all__ = ["AcousticBatch", "FeatureNorm", "fold_norm_into_encoder", "make_acoustic_batches", "collate",
           "epoch_batches", "lm_batch", "lm_batches", "labels_of"]
