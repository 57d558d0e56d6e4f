"""RNN transducer: encoder, prediction network, joint network.

Parameter names and shapes are those of ``models.params.rnnt_parameters`` (without the ``rnnt.``
prefix). Blank is label 0 and doubles as the prediction network's start symbol <sos>.

Where the joint's work happens during search (``models.search``):

- ``joint.enc_proj`` runs ONCE per utterance on the whole encoder output (one GEMM with
  M = frames), before the first search step (step -1), module ``rnnt.joint.enc_proj``;
- ``joint.pred_proj`` runs once per NEW prefix, right after the prediction network call that
  produced it (same batch), module ``rnnt.joint.pred_proj``; its rows are cached per prefix;
- ``joint(enc_rows, pred_rows, projected=True)`` runs once per search step on the gathered rows:
  add, tanh, ``out`` (GEMM), log_softmax.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from models.config import ModelConfig, encoder_frames, reduced_frames, stacked_frames
from models.lstm import Embedding, Linear, LSTMLayer, stack_initial_state, stack_step
from models.params import encoder_layer_input_dims

FlatState = tuple[Tensor, ...]


def stack_frames(feats: Tensor, stack: int, stride: int) -> Tensor:
    """Concatenate ``stack`` consecutive frames every ``stride`` frames.

    Args:
        feats: (B, T, D).

    Returns:
        (B, T', stack * D) with T' = ``models.config.stacked_frames(T, stack, stride)``; output
        frame j holds input frames j*stride .. j*stride + stack - 1, in order.
    """
    B, T, D = feats.shape
    stacked_frames(T, stack, stride)  # raises for fewer than ``stack`` frames
    if stack == 1 and stride == 1:
        return feats
    # unfold -> (B, T', D, stack); frames must be concatenated frame-major
    return feats.unfold(1, stack, stride).transpose(2, 3).reshape(B, -1, stack * D)


def reduce_time(x: Tensor, factor: int, method: str) -> Tensor:
    """Time reduction of a time-major sequence x (T, B, F).

    ``concat``: (T // factor, B, factor * F), consecutive frames joined (a trailing partial group
    is dropped); ``mean``: (T // factor, B, F) averages; ``stride``: (ceil(T / factor), B, F) keeps
    frames 0, factor, 2 factor, ...
    """
    T, B, Fd = x.shape
    n = reduced_frames(T, factor, method)
    if method == "stride":
        return x[::factor]
    if n == 0:
        raise ValueError(f"time reduction by {factor} needs at least {factor} frames, got {T}")
    groups = x[: n * factor].view(n, factor, B, Fd)
    if method == "mean":
        return groups.mean(1)
    return groups.transpose(1, 2).reshape(n, B, factor * Fd)  # concat


class Encoder(nn.Module):
    """Frame stacking, stacked (bi)LSTM layers ``layers.{l}.fwd|bwd``, time reduction."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        enc = cfg.encoder
        dirs = ("fwd", "bwd") if enc.bidirectional else ("fwd",)
        self.layers = nn.ModuleList(
            nn.ModuleDict({d: LSTMLayer(i, enc.hidden, reverse=(d == "bwd")) for d in dirs})
            for i in encoder_layer_input_dims(cfg)
        )
        # training-time dropout on every layer's output, set by the trainer (not part of the
        # architecture: in eval mode nothing runs, so traces and exports never see it)
        self.dropout = 0.0

    def output_frames(self, input_frames: int) -> int:
        """Encoder output frames for ``input_frames`` feature frames (``models.config.encoder_frames``)."""
        return encoder_frames(self.cfg, input_frames)

    def forward(self, feats: Tensor, fused: bool | None = None) -> Tensor:
        """Encode features.

        Args:
            feats: (B, T, input_dim) at 10 ms frames.
            fused: LSTM path (see ``models.lstm``); None = each layer's ``fused`` attribute.

        Returns:
            (B, T_out, Enc) with Enc = hidden * directions (a transposed view of time-major data).
        """
        f, enc = self.cfg.features, self.cfg.encoder
        x = stack_frames(feats, f.stack, f.stride).transpose(0, 1)  # (T', B, D): time-major
        for index, layer in enumerate(self.layers):
            outs = [layer[d](x, None, fused)[0] for d in layer]
            x = outs[0] if len(outs) == 1 else torch.cat(outs, dim=2)
            if self.training and self.dropout > 0:
                x = torch.nn.functional.dropout(x, self.dropout, training=True)
            if enc.time_reduction > 1 and index + 1 == enc.time_reduction_after:
                x = reduce_time(x, enc.time_reduction, enc.time_reduction_method)
        return x.transpose(0, 1)


class PredictionNet(nn.Module):
    """Label embedding + LSTM layers; ``layers.{l}`` run one step per emitted label.

    State: flat tuple ``(h_0, c_0, h_1, c_1, ...)`` of (B, H) tensors.
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        p = cfg.prediction
        self.hidden = p.hidden
        self.embedding = Embedding(cfg.num_labels, p.embed_dim)
        sizes = [p.embed_dim] + [p.hidden] * (p.layers - 1)
        self.layers = nn.ModuleList(LSTMLayer(i, p.hidden) for i in sizes)

    def initial_state(self, batch: int) -> FlatState:
        return stack_initial_state(self.layers, batch)

    def forward(self, labels: Tensor, state: FlatState | None = None) -> tuple[Tensor, FlatState]:
        """One step: labels (B,) int64 (0 = <sos>) -> (output (B, P), new state)."""
        return stack_step(self.layers, self.embedding(labels), state)

    def forward_sequence(self, labels: Tensor, fused: bool | None = None) -> Tensor:
        """Training API: labels (B, U) -> outputs (B, U + 1, P) for prefixes <sos>, y1, .., yU."""
        sos = labels.new_zeros(labels.shape[0], 1)
        x = self.embedding(torch.cat([sos, labels], 1)).transpose(0, 1)  # (U+1, B, E)
        for layer in self.layers:
            x, _ = layer(x, None, fused)
        return x.transpose(0, 1)


class Joint(nn.Module):
    """``log_softmax(out(tanh(enc_proj(e) + pred_proj(p))))``."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        J = cfg.joint.dim
        self.enc_proj = Linear(cfg.encoder.output_dim, J, bias=True)
        self.pred_proj = Linear(cfg.prediction.hidden, J, bias=False)
        self.out = Linear(J, cfg.num_labels, bias=True)

    def forward(self, enc: Tensor, pred: Tensor, projected: bool = False) -> Tensor:
        """Log-probabilities over labels (blank = 0).

        Args:
            enc: encoder output (..., Enc), e.g. (B, Enc) or (B, T, 1, Enc); with ``projected``,
                ``enc_proj(enc)`` rows (..., J) instead.
            pred: prediction output (..., P), broadcastable against enc, e.g. (B, P) or
                (B, 1, U+1, P); with ``projected``, ``pred_proj(pred)`` rows (..., J).
            projected: inputs are already projected (the search caches projections).

        Returns:
            (broadcast shape..., num_labels) log-probabilities.
        """
        if not projected:
            enc, pred = self.enc_proj(enc), self.pred_proj(pred)
        return torch.log_softmax(self.out(torch.tanh(enc + pred)), dim=-1)


class RNNT(nn.Module):
    """RNN-T with ``.encoder``, ``.prediction``, ``.joint``."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.encoder = Encoder(cfg)
        self.prediction = PredictionNet(cfg)
        self.joint = Joint(cfg)

    def forward(self, feats: Tensor, labels: Tensor, fused: bool | None = None) -> Tensor:
        """Training lattice: feats (B, T, D), labels (B, U) -> log-probs (B, T_out, U + 1, V)."""
        enc = self.encoder(feats, fused)
        pred = self.prediction.forward_sequence(labels, fused)
        return self.joint(enc.unsqueeze(2), pred.unsqueeze(1))
