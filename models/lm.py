"""Character LSTM language model over the RNN-T's labels (index 0 = sentence boundary <s>/</s>).

Parameter names: ``embedding.weight``, ``layers.{l}.weight_ih|weight_hh|bias``, ``out.weight|bias``
(``models.params.lm_parameters`` without the ``lm_ext.``/``lm_src.`` prefix).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from models.config import LMConfig
from models.lstm import Embedding, Linear, LSTMLayer, stack_initial_state, stack_step

FlatState = tuple[Tensor, ...]


class CharLM(nn.Module):
    """Embedding -> LSTM layers -> ``out`` -> log_softmax.

    State: flat tuple ``(h_0, c_0, h_1, c_1, ...)`` of (B, H) tensors.
    """

    def __init__(self, cfg: LMConfig, num_labels: int) -> None:
        super().__init__()
        self.num_labels = num_labels
        self.embedding = Embedding(num_labels, cfg.embed_dim)
        sizes = [cfg.embed_dim] + [cfg.hidden] * (cfg.layers - 1)
        self.layers = nn.ModuleList(LSTMLayer(i, cfg.hidden) for i in sizes)
        self.out = Linear(cfg.hidden, num_labels, bias=True)

    def initial_state(self, batch: int) -> FlatState:
        return stack_initial_state(self.layers, batch)

    def forward(self, labels: Tensor, state: FlatState | None = None) -> tuple[Tensor, FlatState]:
        """One step: feed labels (B,) (0 = <s>) -> (log p(next | history) (B, V), new state)."""
        h, state = stack_step(self.layers, self.embedding(labels), state)
        return torch.log_softmax(self.out(h), dim=-1), state

    def forward_sequence(self, labels: Tensor, fused: bool | None = None) -> Tensor:
        """Training API: inputs (B, U) -> log-probs (B, U, V); row u predicts the label after
        inputs[:, : u + 1] (prepend 0 yourself to condition on <s>)."""
        x = self.embedding(labels).transpose(0, 1)  # (U, B, E)
        for layer in self.layers:
            x, _ = layer(x, None, fused)
        return torch.log_softmax(self.out(x.transpose(0, 1)), dim=-1)

    def score(self, sequences: Sequence[Sequence[int]]) -> Tensor:
        """Sentence log-probabilities ``log p(y_1..y_U </s> | <s>)``, shape (N,)."""
        if not sequences:
            return torch.zeros(0)
        n, longest = len(sequences), max(len(s) for s in sequences)
        device = self.out.weight.device
        inputs = torch.zeros(n, longest + 1, dtype=torch.long, device=device)
        targets = torch.zeros(n, longest + 1, dtype=torch.long, device=device)
        mask = torch.zeros(n, longest + 1, dtype=torch.bool, device=device)
        for i, seq in enumerate(sequences):
            seq = list(seq)
            if any(not 0 < y < self.num_labels for y in seq):
                raise ValueError(f"labels must be in 1..{self.num_labels - 1}, got {seq}")
            inputs[i, 1 : len(seq) + 1] = torch.tensor(seq, dtype=torch.long)
            targets[i, : len(seq)] = torch.tensor(seq, dtype=torch.long)  # then </s> = 0
            mask[i, : len(seq) + 1] = True
        logp = self.forward_sequence(inputs).gather(2, targets.unsqueeze(2)).squeeze(2)
        return (logp * mask).sum(1)
