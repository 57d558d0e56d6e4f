"""A surrogate QAT loss on random data: the plumbing check behind ``hwsim quantize --synthetic``.

``surrogate_loss`` = joint cross-entropy + LM cross-entropies: at every lattice point (t, u) the
joint is pushed towards label u + 1 (blank after the last label), and each LM towards the next
label of the same sequence. It exercises every quantizer of the system (encoder, prediction net,
joint, both LMs) with a gradient and needs no data; it is NOT a speech recognition objective. Real
QAT (RNN-T loss and LM cross-entropy on a corpus or WAV list) is ``models.train.qat``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from models.config import ModelConfig
from models.features import random_features

__all__ = ["surrogate_loss", "random_batches"]


def _lm_ce(lm, labels: Tensor) -> Tensor:
    inputs = torch.cat([labels.new_zeros(labels.shape[0], 1), labels[:, :-1]], 1)
    logp = lm.forward_sequence(inputs)
    return F.nll_loss(logp.reshape(-1, logp.shape[-1]), labels.reshape(-1))


def surrogate_loss(system, batch: dict[str, Tensor]) -> Tensor:
    """Scalar loss of ``batch`` = {"feats": (B, T, D), "labels": (B, U) in 1..V-1}."""
    feats, labels = batch["feats"], batch["labels"]
    logp = system.rnnt(feats, labels)  # (B, T', U + 1, V)
    target = torch.cat([labels, labels.new_zeros(labels.shape[0], 1)], 1)
    target = target[:, None, :].expand(logp.shape[:3])
    loss = F.nll_loss(logp.reshape(-1, logp.shape[-1]), target.reshape(-1))
    return loss + _lm_ce(system.lm_ext, labels) + _lm_ce(system.lm_src, labels)


def random_batches(config: ModelConfig, n: int, batch: int, frames: int, labels: int,
                   seed: int = 0) -> list[dict[str, Tensor]]:
    """``n`` batches of standard-normal features and random label sequences."""
    gen = torch.Generator().manual_seed(seed)
    out = []
    for i in range(n):
        feats = torch.stack([random_features(config, frames, seed=seed * 1000 + i * batch + b)
                             for b in range(batch)])
        out.append({"feats": feats,
                    "labels": torch.randint(1, config.num_labels, (batch, labels), generator=gen)})
    return out
