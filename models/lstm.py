"""Cell-level LSTM, Linear and Embedding layers with quantization slots.

Hardware runs an LSTM as GEMMs plus element-wise and nonlinear ops, step by step; these modules
run the same way, so that a ``TorchDispatchMode`` tracer sees every op (``nn.LSTM`` on CPU reaches
the dispatcher as one opaque ``lstm``/``mkldnn_rnn_layer`` op with no cost formula).

Quantization slots are ``nn.Identity()`` submodules (no aten ops, so the FP32 trace is unaffected);
``models.quant`` replaces them with fake quantizers:

- ``LSTMLayer``: ``q_input`` (layer input x), ``q_weight_ih``/``q_weight_hh`` (the full (4H, in)
  weight, applied at every forward / step call), ``q_hidden`` (each new h: it is both the layer
  output and the next recurrent GEMM's input; a state passed in by the caller is used as given),
  ``q_preact`` (gate pre-activations, (B, 4H)), ``q_gate`` (each sigmoid/tanh gate output),
  ``q_cell`` (new cell state c), ``q_cell_act`` (tanh(c)).
- ``Linear``: ``q_input``, ``q_weight``, ``q_output``.  ``Embedding``: ``q_weight``.

Op sequences (as a ``TorchDispatchMode`` sees them under ``torch.inference_mode()``, where
composite ops such as ``split``/``reshape`` are not decomposed; ``W^T`` is an ``aten.t`` view):

``LSTMLayer.forward`` (cell path, x: (T, B, I)), before the recurrence, at step -1::

    new_zeros (h0), new_zeros (c0)         -- only when no state is given
    t(W_ih), reshape x -> (T*B, I), addmm(bias, x, W_ih^T) -> (T*B, 4H)   # ONE input GEMM, M = T*B
    view -> (T, B, 4H), t(W_hh)

then per recurrence step, inside ``step_scope(t)`` (t = frame index; T-1 .. 0 when reversed)::

    select(xp, 0, t)                              (B, 4H) view
    addmm(xp[t], h, W_hh^T)                       recurrent GEMM, M = B, K = H, N = 4H
    split(gates, H, dim=1)                        i, f, g, o views
    sigmoid(i), sigmoid(f), tanh(g), sigmoid(o)
    mul(f, c), mul(i, g), add                     c' = f*c + i*g
    tanh(c'), mul(o, tanh(c'))                    h' = o * tanh(c')

and after the recurrence, at step -1: ``stack`` of the T outputs -> (T, B, H).

``LSTMLayer.step`` (one step, x: (B, I); prediction network and LMs)::

    t(W_ih), addmm(bias, x, W_ih^T), t(W_hh), addmm(gx, h, W_hh^T),
    split, sigmoid, sigmoid, tanh, sigmoid, mul, mul, add, tanh, mul

``Linear`` on a 2-D input: ``t(W), addmm(bias, x, W^T)`` (``mm`` without bias); on N-D inputs
a ``reshape`` to 2-D before and a ``view`` back after.  ``Embedding``: ``embedding``.

The fused path (``fused=True``) runs ``torch._VF.lstm`` with the same weights
(``bias_ih = bias``, ``bias_hh = 0``) for training speed; it is only allowed while every
quantization slot is an identity: an explicit ``fused=True`` with a quantizer inserted raises,
and a module whose ``fused`` attribute is set silently takes the cell path instead.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from models.hooks import step_scope

LSTM_SLOTS = ("q_input", "q_weight_ih", "q_weight_hh", "q_hidden", "q_preact", "q_gate", "q_cell",
              "q_cell_act")
LINEAR_SLOTS = ("q_input", "q_weight", "q_output")

State = tuple[Tensor, Tensor]


def _uniform_(t: Tensor, bound: float, generator: torch.Generator | None) -> None:
    with torch.no_grad():
        t.uniform_(-bound, bound, generator=generator)


class Linear(nn.Module):
    """``y = x W^T + b`` with quantization slots.

    Attributes:
        weight: (out_features, in_features). bias: (out_features,) or absent.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True) -> None:
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        self.bias = nn.Parameter(torch.empty(out_features)) if bias else None
        for slot in LINEAR_SLOTS:
            setattr(self, slot, nn.Identity())
        self.reset_parameters()

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """PyTorch's default: uniform(-1/sqrt(in), 1/sqrt(in)) for weight and bias."""
        bound = 1.0 / math.sqrt(self.in_features)
        _uniform_(self.weight, bound, generator)
        if self.bias is not None:
            _uniform_(self.bias, bound, generator)

    def forward(self, x: Tensor) -> Tensor:
        """x: (..., in_features) -> (..., out_features)."""
        x = self.q_input(x)
        w = self.q_weight(self.weight)
        lead = x.shape[:-1]
        x2 = x if x.dim() == 2 else x.reshape(-1, self.in_features)
        y = torch.addmm(self.bias, x2, w.t()) if self.bias is not None else torch.mm(x2, w.t())
        if x.dim() != 2:
            y = y.view(*lead, self.out_features)
        return self.q_output(y)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class Embedding(nn.Module):
    """Label embedding table ``weight`` (num, dim) with a ``q_weight`` slot."""

    def __init__(self, num: int, dim: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(num, dim))
        self.q_weight = nn.Identity()
        self.reset_parameters()

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """PyTorch's default for embeddings: N(0, 1)."""
        with torch.no_grad():
            self.weight.normal_(0.0, 1.0, generator=generator)

    def forward(self, labels: Tensor) -> Tensor:
        """labels: (...) int64 -> (..., dim)."""
        return F.embedding(labels, self.q_weight(self.weight))


class LSTMLayer(nn.Module):
    """One direction of one LSTM layer, run at cell level (see the module docstring for ops).

    Gate order along the 4H axis is PyTorch's (i, f, g, o); one bias of 4H.

    Attributes:
        weight_ih: (4H, I). weight_hh: (4H, H). bias: (4H,).
        reverse: process the sequence from the last frame to the first.
        fused: default for ``forward(fused=None)``.
    """

    def __init__(self, input_size: int, hidden_size: int, reverse: bool = False) -> None:
        super().__init__()
        self.input_size, self.hidden_size, self.reverse = input_size, hidden_size, reverse
        self.fused = False
        g = 4 * hidden_size
        self.weight_ih = nn.Parameter(torch.empty(g, input_size))
        self.weight_hh = nn.Parameter(torch.empty(g, hidden_size))
        self.bias = nn.Parameter(torch.empty(g))
        for slot in LSTM_SLOTS:
            setattr(self, slot, nn.Identity())
        self.reset_parameters()

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """PyTorch's default: uniform(-1/sqrt(H), 1/sqrt(H)) for every tensor."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in (self.weight_ih, self.weight_hh, self.bias):
            _uniform_(p, bound, generator)

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}, reverse={self.reverse}"

    @property
    def quantized(self) -> bool:
        """True when any quantization slot holds something other than ``nn.Identity``."""
        return any(not isinstance(getattr(self, s), nn.Identity) for s in LSTM_SLOTS)

    def initial_state(self, batch: int, like: Tensor | None = None) -> State:
        """Zero (h, c), each (batch, H)."""
        ref = like if like is not None else self.weight_hh
        return ref.new_zeros(batch, self.hidden_size), ref.new_zeros(batch, self.hidden_size)

    def _cell(self, gates: Tensor, c: Tensor) -> State:
        gates = self.q_preact(gates)
        i, f, g, o = torch.split(gates, self.hidden_size, dim=1)
        i = self.q_gate(torch.sigmoid(i))
        f = self.q_gate(torch.sigmoid(f))
        g = self.q_gate(torch.tanh(g))
        o = self.q_gate(torch.sigmoid(o))
        c = self.q_cell(f * c + i * g)
        h = self.q_hidden(o * self.q_cell_act(torch.tanh(c)))
        return h, c

    def step(self, x: Tensor, state: State | None = None) -> tuple[Tensor, State]:
        """One time step with a per-step input GEMM.

        Args:
            x: (B, I) input at this step.
            state: (h, c), each (B, H); zeros if None.

        Returns:
            (h', (h', c')), each (B, H).
        """
        h, c = state if state is not None else self.initial_state(x.shape[0], x)
        x = self.q_input(x)
        w_ih = self.q_weight_ih(self.weight_ih)
        gx = torch.addmm(self.bias, x, w_ih.t())
        w_hh = self.q_weight_hh(self.weight_hh)
        h, c = self._cell(torch.addmm(gx, h, w_hh.t()), c)
        return h, (h, c)

    def forward(self, x: Tensor, state: State | None = None, fused: bool | None = None
                ) -> tuple[Tensor, State]:
        """Run a whole sequence (x 3-D) or one step (x 2-D, same as ``step``).

        Calling the module (not ``step``) for single steps makes forward hooks fire, which the
        tracer uses to attribute ops to ``...layers.{l}``.

        Args:
            x: (T, B, I), time-major; or (B, I) for one step (``fused`` is then ignored).
            state: initial (h, c), each (B, H); zeros if None.
            fused: use ``torch._VF.lstm`` (see module docstring); None = ``self.fused``.

        Returns:
            (y (T, B, H), (h_last, c_last)); y[t] is the output at frame t in either direction.
        """
        if x.dim() == 2:
            return self.step(x, state)
        if fused is None:
            fused = self.fused and not self.quantized
        elif fused and self.quantized:
            raise RuntimeError(
                "fused LSTM path requested but quantization slots are set; the fused kernel "
                "would skip the quantizers (use fused=False)"
            )
        if fused:
            return self._forward_fused(x, state)
        T, B, _ = x.shape
        h, c = state if state is not None else self.initial_state(B, x)
        x = self.q_input(x)
        w_ih = self.q_weight_ih(self.weight_ih)
        xp = torch.addmm(self.bias, x.reshape(T * B, self.input_size), w_ih.t())
        xp = xp.view(T, B, 4 * self.hidden_size)
        w_hh = self.q_weight_hh(self.weight_hh)
        w_hh_t = w_hh.t()
        outputs: list[Tensor] = [x] * T  # placeholders, all overwritten
        for t in (range(T - 1, -1, -1) if self.reverse else range(T)):
            with step_scope(t):
                h, c = self._cell(torch.addmm(xp[t], h, w_hh_t), c)
                outputs[t] = h
        return torch.stack(outputs, 0), (h, c)

    def _forward_fused(self, x: Tensor, state: State | None) -> tuple[Tensor, State]:
        B = x.shape[1]
        h, c = state if state is not None else self.initial_state(B, x)
        if self.reverse:
            x = x.flip(0)
        weights = [self.weight_ih, self.weight_hh, self.bias, torch.zeros_like(self.bias)]
        y, h_n, c_n = torch._VF.lstm(x, (h.unsqueeze(0), c.unsqueeze(0)), weights, True, 1, 0.0,
                                     self.training, False, False)
        if self.reverse:
            y = y.flip(0)
        return y, (h_n[0], c_n[0])


def set_fused(module: nn.Module, fused: bool) -> None:
    """Set ``fused`` on every ``LSTMLayer`` inside ``module`` (training speed switch)."""
    for m in module.modules():
        if isinstance(m, LSTMLayer):
            m.fused = fused


def stack_initial_state(layers: nn.ModuleList, batch: int, like: Tensor | None = None
                        ) -> tuple[Tensor, ...]:
    """Zero flat state ``(h_0, c_0, h_1, c_1, ...)`` of a unidirectional stack of ``LSTMLayer``s.

    A flat tuple of (B, H) tensors lets a search cache and concatenate states row-wise.
    """
    out: list[Tensor] = []
    for layer in layers:
        out += layer.initial_state(batch, like)
    return tuple(out)


def stack_step(layers: nn.ModuleList, x: Tensor, state: tuple[Tensor, ...] | None
               ) -> tuple[Tensor, tuple[Tensor, ...]]:
    """One step through stacked layers: x (B, I) -> (top h (B, H), new flat state)."""
    if state is None:
        state = stack_initial_state(layers, x.shape[0], x)
    new: list[Tensor] = []
    for i, layer in enumerate(layers):
        x, (h, c) = layer(x, (state[2 * i], state[2 * i + 1]))
        new += (h, c)
    return x, tuple(new)
