"""Integer layers: Linear, LSTM, embedding, run with ``hwsim.kernels`` (numpy + Numba, no torch).

Every GEMM is an integer GEMM of activation codes with weight codes (packed INT4 weights, INT4
activations packed too; INT8 otherwise) with exact INT32 accumulation; its float output is

    y = fl32(fl32(acc) * fl32(s_a * s_w[n])) + bias[n]        (float32, the Dequant epilogue)

An LSTM step (gate order i, f, g, o as in ``models.lstm``)::

    pre = round_preact( (fl32(acc_ih) * s_ih + bias) + fl32(acc_hh) * s_hh )
    i, f, o = sfu_sigmoid(pre_*, act);  g = sfu_tanh(pre_g, act)        # SFU at the act precision
    c' = round_cell(f * c + i * g)                                       # float32 ops, then cell precision
    h' = quantize_hidden(o * sfu_tanh(c', act))                          # requantized every step

``round_p`` is round-to-nearest-even to the slot's precision (fp16 for ``int4`` / ``int8``).

Integer stages (``int4-naive``: pre-activations, gates, cell state, ``tanh(c)`` and linear
outputs are INT4 min-max quantizers): a stage's quantizer gives codes and their float32 values
``fl32((code - zp) * scale)``, which the next step uses as the torch model does; the SFU then runs
at fp32 on those values (16 of them per quantizer: a lookup table in hardware) and the cell
update ``f * c + i * g`` is float32 on them; the cell state is kept as the value of its code.
GEMMs with a zero point on either side run ``gemm_zp`` (exact correction terms).

Recording: every call takes an optional ``rec(module, slot, array)`` callback that receives what
the torch model's quantizer slot of the same name outputs (codes for integer slots, values for
float ones; ``q_gate`` four times per step: i, f, g, o) plus the accumulators ``acc_ih``,
``acc_hh`` / ``acc`` and the float32 pre-activation before rounding ``preact_f32``. The equality
report compares them with the fake-quantized torch model.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from hwsim.funcsim.export import ActQuant, Export, IntWeight
from hwsim.kernels import gemm_int4, gemm_int8, gemm_w4a8, gemm_zp, pack_int4, sfu_sigmoid, sfu_tanh
from hwsim.kernels.sfu import round_to

Recorder = Callable[[str, str, np.ndarray], None] | None


def int_gemm(a: np.ndarray, w: IntWeight, a_bits: int, a_zero_point: int = 0) -> np.ndarray:
    """Integer GEMM ``(a - za) @ (w.codes - zw).T`` (M, N) int32 on the kernel matching the operands.

    With a zero point on either side ``gemm_zp``; else INT4 x INT4 runs ``gemm_int4`` on packed
    operands, INT8 activations x INT4 weights ``gemm_w4a8``, anything with INT8 weights
    ``gemm_int8``.
    """
    if a_zero_point or w.asymmetric:
        return gemm_zp(a, w.zp_weights, a_zero_point, a_bits=a_bits)
    if w.bits == 4 and a_bits == 4:
        return gemm_int4(pack_int4(a), w.packed, a.shape[1])
    if w.bits == 4:
        return gemm_w4a8(a, w.packed)
    return gemm_int8(a, w.packed)


def dequant(acc: np.ndarray, scale: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
    """``fl32(fl32(acc) * scale) (+ bias)``, float32 (the kernels' ``Dequant`` formula)."""
    y = acc.astype(np.float32) * scale
    return y + bias if bias is not None else y


def stage(q: str | ActQuant, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A slot between GEMMs on float32 ``x``: (values, what the torch slot outputs as recorded).

    A float precision rounds (values recorded); an integer quantizer gives codes (recorded) and
    their float32 values.
    """
    if isinstance(q, ActQuant):
        codes, values = q.fake(x)
        return values, codes
    y = round_to(x, q)
    return y, y


def sfu_precision(q: str | ActQuant) -> str:
    """The SFU precision feeding a slot: its own float precision, fp32 before an integer one."""
    return "fp32" if isinstance(q, ActQuant) else q


def log_softmax(y: np.ndarray) -> np.ndarray:
    """Float32 log-softmax over the last axis: ``(y - max) - log(sum(exp(y - max)))``."""
    z = y - y.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


class IntLinear:
    """``models.lstm.Linear`` with an integer GEMM.

    Attributes:
        name: module name. q_in: its input quantizer. weight: ``IntWeight`` (N, K).
        bias: float32 (N,) or None. out_precision: precision of ``q_output``.
    """

    def __init__(self, ex: Export, name: str) -> None:
        self.name = name
        self.q_in = ex.int_act(name, "q_input")
        self.weight = ex.weight(f"{name}.weight")
        self.bias = ex.float_param(f"{name}.bias") if f"{name}.bias" in ex.tensors else None
        self.out_precision = ex.stage(name, "q_output")
        self.scale = np.float32(self.q_in.scale) * self.weight.row_scale

    def __call__(self, codes: np.ndarray, rec: Recorder = None) -> np.ndarray:
        """codes: (M, K) int8 input codes of ``q_in`` -> (M, N) float32 values of ``out_precision``."""
        acc = int_gemm(codes, self.weight, self.q_in.bits, self.q_in.zero_point)
        y, recorded = stage(self.out_precision, dequant(acc, self.scale, self.bias))
        if rec:
            rec(self.name, "q_input", codes)
            rec(self.name, "acc", acc)
            rec(self.name, "q_output", recorded)
        return y


class IntLSTM:
    """One direction of one ``models.lstm.LSTMLayer`` (see the module docstring).

    State: (h codes (B, H) int8, c (B, H) float32 holding values of the cell precision).
    """

    def __init__(self, ex: Export, name: str, reverse: bool = False) -> None:
        self.name, self.reverse = name, reverse
        self.q_in = ex.int_act(name, "q_input")
        self.q_h = ex.int_act(name, "q_hidden")
        self.w_ih = ex.weight(f"{name}.weight_ih")
        self.w_hh = ex.weight(f"{name}.weight_hh")
        self.bias = ex.float_param(f"{name}.bias")
        self.hidden = self.w_hh.codes.shape[1]
        self.preact = ex.stage(name, "q_preact")
        self.gate = ex.stage(name, "q_gate")
        self.cell_p = ex.stage(name, "q_cell")
        self.cell_act = ex.stage(name, "q_cell_act")
        self.s_ih = np.float32(self.q_in.scale) * self.w_ih.row_scale
        self.s_hh = np.float32(self.q_h.scale) * self.w_hh.row_scale

    def initial_state(self, batch: int) -> tuple[np.ndarray, np.ndarray]:
        """Zero state: h codes = zero point (value 0), c = 0."""
        return (np.full((batch, self.hidden), self.q_h.zero_point, np.int8),
                np.zeros((batch, self.hidden), np.float32))

    def input_gemm(self, x: np.ndarray, rec: Recorder = None) -> np.ndarray:
        """x codes (M, I) -> ``fl32(acc_ih) * s_ih + bias`` (M, 4H) float32."""
        acc = int_gemm(x, self.w_ih, self.q_in.bits, self.q_in.zero_point)
        if rec:
            rec(self.name, "q_input", x)
            rec(self.name, "acc_ih", acc)
        return dequant(acc, self.s_ih, self.bias)

    def cell(self, gx: np.ndarray, h: np.ndarray, c: np.ndarray, rec: Recorder = None
             ) -> tuple[np.ndarray, np.ndarray]:
        """One recurrence step from the input part ``gx`` (B, 4H): -> (h' codes, c')."""
        acc, pre32 = self.preactivation(gx, h)
        pre, pre_rec = stage(self.preact, pre32)
        h, c, recorded = self.elementwise(pre, c)
        if rec:
            rec(self.name, "acc_hh", acc)
            rec(self.name, "preact_f32", pre32)
            rec(self.name, "q_preact", pre_rec)
            for gate in recorded[:4]:
                rec(self.name, "q_gate", gate)
            rec(self.name, "q_cell", recorded[4])
            rec(self.name, "q_cell_act", recorded[5])
            rec(self.name, "q_hidden", h)
        return h, c

    def preactivation(self, gx: np.ndarray, h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Recurrent GEMM: h codes (B, H) -> (acc_hh (B, 4H) int32, float32 ``gx + fl32(acc) * s_hh``)."""
        acc = int_gemm(h, self.w_hh, self.q_h.bits, self.q_h.zero_point)
        return acc, gx + dequant(acc, self.s_hh, None)

    def elementwise(self, pre: np.ndarray, c: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, ...]]:
        """The step after the GEMMs, from the pre-activation values (B, 4H) (rounded to their
        slot) and the cell state values (B, H).

        Returns:
            (h' codes, c' values, what the slots output as the torch model's hooks record them:
            (i, f, g, o, c', tanh(c')), codes for integer slots).
        """
        H, p = self.hidden, sfu_precision(self.gate)
        i, i_r = stage(self.gate, sfu_sigmoid(pre[:, :H], p))
        f, f_r = stage(self.gate, sfu_sigmoid(pre[:, H:2 * H], p))
        g, g_r = stage(self.gate, sfu_tanh(pre[:, 2 * H:3 * H], p))
        o, o_r = stage(self.gate, sfu_sigmoid(pre[:, 3 * H:], p))
        c, c_r = stage(self.cell_p, f * c + i * g)
        tc, tc_r = stage(self.cell_act, sfu_tanh(c, sfu_precision(self.cell_act)))
        return self.q_h.quantize(o * tc), c, (i_r, f_r, g_r, o_r, c_r, tc_r)

    def step(self, x: np.ndarray, state: tuple[np.ndarray, np.ndarray] | None = None,
             rec: Recorder = None) -> tuple[np.ndarray, np.ndarray]:
        """x codes (B, I), state (h codes, c) -> new (h codes, c)."""
        h, c = state if state is not None else self.initial_state(x.shape[0])
        return self.cell(self.input_gemm(x, rec), h, c, rec)

    def sequence(self, x: np.ndarray, rec: Recorder = None) -> np.ndarray:
        """x codes (T, I) of one utterance, zero start state -> h codes (T, H); one input GEMM."""
        T = x.shape[0]
        gx = self.input_gemm(x, rec)
        h, c = self.initial_state(1)
        out = np.empty((T, self.hidden), np.int8)
        for t in (range(T - 1, -1, -1) if self.reverse else range(T)):
            h, c = self.cell(gx[t:t + 1], h, c, rec)
            out[t] = h[0]
        return out


class IntEmbedding:
    """An embedding feeding an LSTM: the first layer's input codes of every label, built once.

    The torch model looks up the fake-quantized row ``fl32(code * scale[label])`` and quantizes it
    with the layer's ``q_input``; that is a fixed function of the label, so the table holds codes.
    """

    def __init__(self, ex: Export, name: str, q_in: ActQuant) -> None:
        self.name = name
        self.codes = q_in.quantize(ex.float_param(f"{name}.weight"))

    def __call__(self, labels: np.ndarray) -> np.ndarray:
        return self.codes[np.asarray(labels, np.int64)]


def requant(codes: np.ndarray, src: ActQuant, dst: ActQuant) -> np.ndarray:
    """Codes of ``src``'s grid -> codes of ``dst``'s grid (table lookup, see ``ActQuant.lut_from``)."""
    if src == dst or (src.scale == dst.scale and src.zero_point == dst.zero_point
                      and src.qmin == dst.qmin and src.qmax == dst.qmax):
        return codes
    return dst.lut_from(src)[codes.astype(np.int64) - src.qmin]


class IntStack:
    """Stacked unidirectional ``IntLSTM`` layers fed by an embedding (prediction net, LM).

    State: flat tuple ``(h_0, c_0, h_1, c_1, ...)`` as in ``models.lstm.stack_step``.
    """

    def __init__(self, ex: Export, prefix: str, layers: int) -> None:
        self.layers = [IntLSTM(ex, f"{prefix}.layers.{i}") for i in range(layers)]
        self.embedding = IntEmbedding(ex, f"{prefix}.embedding", self.layers[0].q_in)

    def initial_state(self, batch: int) -> tuple[np.ndarray, ...]:
        out: list[np.ndarray] = []
        for layer in self.layers:
            out += layer.initial_state(batch)
        return tuple(out)

    def __call__(self, labels: np.ndarray, state: tuple[np.ndarray, ...] | None,
                 rec: Recorder = None) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
        """labels (B,) -> (top h codes (B, H), new flat state)."""
        if state is None:
            state = self.initial_state(len(labels))
        x = self.embedding(labels)
        new: list[np.ndarray] = []
        prev = None
        for i, layer in enumerate(self.layers):
            if prev is not None:
                x = requant(x, prev.q_h, layer.q_in)
            h, c = layer.step(x, (state[2 * i], state[2 * i + 1]), rec)
            new += (h, c)
            x, prev = h, layer
        return x, tuple(new)

    @property
    def q_out(self) -> ActQuant:
        """Quantizer of the top hidden state (the stack's output codes)."""
        return self.layers[-1].q_h
