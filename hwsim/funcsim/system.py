"""The whole quantized system on integer layers: encoder, prediction net, joint, both LMs.

Built from an export file alone (``IntSystem.from_export``); numpy + ``hwsim.kernels``, no torch.
Mirrors ``models.rnnt`` / ``models.lm`` op for op (see ``hwsim.funcsim.layers``), with these
data-movement rules between layers:

- codes leaving one quantizer and entering the next (encoder layer to layer, encoder output to
  ``joint.enc_proj``, top hidden state to ``pred_proj`` / an LM's ``out``) are requantized by a
  code-to-code table (exactly what the torch model computes on the dequantized values);
- frame stacking and ``concat`` / ``stride`` time reduction move codes; ``mean`` reduction
  averages dequantized values in float32 and requantizes;
- the joint adds the two projections (fp16 values, or INT4 grid values under ``int4-naive``) in
  float32 and applies tanh at fp32 (the torch model has no quantizer slot between them), then
  quantizes for ``joint.out``; log-softmax in float32.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hwsim.funcsim.export import ActQuant, Export
from hwsim.funcsim.layers import IntLinear, IntLSTM, IntStack, Recorder, log_softmax, requant
from hwsim.kernels import sfu_tanh
from models.config import ModelConfig, reduced_frames, stacked_frames
from models.yamlio import from_dict


@dataclass
class Codes:
    """Integer activations whose columns may come from different quantizers.

    Attributes:
        codes: int8 (T, F).
        src: (F,) index into ``quants`` of each column's quantizer.
        quants: the quantizers.
    """

    codes: np.ndarray
    src: np.ndarray
    quants: list[ActQuant]

    def to(self, dst: ActQuant) -> np.ndarray:
        """Requantize every column to ``dst``'s grid: (T, F) int8."""
        out = np.empty_like(self.codes)
        for k, q in enumerate(self.quants):
            cols = self.src == k
            out[:, cols] = requant(self.codes[:, cols], q, dst)
        return out

    def values(self) -> np.ndarray:
        """Dequantized float32 values (T, F)."""
        out = np.empty(self.codes.shape, np.float32)
        for k, q in enumerate(self.quants):
            cols = self.src == k
            out[:, cols] = q.dequantize(self.codes[:, cols])
        return out


def stack_frames(feats: np.ndarray, stack: int, stride: int) -> np.ndarray:
    """(T, D) -> (T', stack * D), T' = ``models.config.stacked_frames`` (``models.rnnt.stack_frames``)."""
    T, D = feats.shape
    n = stacked_frames(T, stack, stride)
    idx = np.arange(n)[:, None] * stride + np.arange(stack)[None, :]
    return feats[idx].reshape(n, stack * D)


class IntEncoder:
    """Stacked (bi)LSTM encoder with frame stacking and time reduction."""

    def __init__(self, ex: Export, cfg: ModelConfig) -> None:
        self.cfg = cfg
        enc = cfg.encoder
        dirs = ("fwd", "bwd") if enc.bidirectional else ("fwd",)
        self.layers = [{d: IntLSTM(ex, f"rnnt.encoder.layers.{i}.{d}", reverse=(d == "bwd")) for d in dirs}
                       for i in range(enc.layers)]

    def __call__(self, feats: np.ndarray, rec: Recorder = None) -> Codes:
        """feats (T, input_dim) float32 -> encoder output codes (T_out, Enc)."""
        f, enc = self.cfg.features, self.cfg.encoder
        x: np.ndarray | Codes = stack_frames(np.asarray(feats, np.float32), f.stack, f.stride)
        for index, layer in enumerate(self.layers):
            outs = []
            for lstm in layer.values():
                codes = lstm.q_in.quantize(x) if isinstance(x, np.ndarray) else x.to(lstm.q_in)
                outs.append(lstm.sequence(codes, rec))
            quants = [lstm.q_h for lstm in layer.values()]
            src = np.concatenate([np.full(o.shape[1], k) for k, o in enumerate(outs)])
            x = Codes(np.concatenate(outs, axis=1), src, quants)
            if enc.time_reduction > 1 and index + 1 == enc.time_reduction_after:
                x = _reduce_time(x, enc.time_reduction, enc.time_reduction_method)
        return x


def _reduce_time(x: Codes, factor: int, method: str) -> Codes | np.ndarray:
    """``models.rnnt.reduce_time`` on codes (T, F); ``mean`` returns float32 values."""
    T, F = x.codes.shape
    n = reduced_frames(T, factor, method)
    if method == "stride":
        return Codes(x.codes[::factor], x.src, x.quants)
    if n == 0:
        raise ValueError(f"time reduction by {factor} needs at least {factor} frames, got {T}")
    if method == "concat":
        return Codes(x.codes[: n * factor].reshape(n, factor * F), np.tile(x.src, factor), x.quants)
    return x.values()[: n * factor].reshape(n, factor, F).mean(axis=1, dtype=np.float32)  # mean


class IntJoint:
    """``log_softmax(out(tanh(enc_proj(e) + pred_proj(p))))`` with the projections cached."""

    def __init__(self, ex: Export) -> None:
        self.enc_proj = IntLinear(ex, "rnnt.joint.enc_proj")
        self.pred_proj = IntLinear(ex, "rnnt.joint.pred_proj")
        self.out = IntLinear(ex, "rnnt.joint.out")

    def project_enc(self, enc: Codes, rec: Recorder = None) -> np.ndarray:
        """Encoder output codes (T, Enc) -> (T, J) float32 (fp16 values for ``int4``)."""
        return self.enc_proj(enc.to(self.enc_proj.q_in), rec)

    def project_pred(self, h: np.ndarray, q_h: ActQuant, rec: Recorder = None) -> np.ndarray:
        """Prediction output codes (M, P) -> (M, J) float32."""
        return self.pred_proj(requant(h, q_h, self.pred_proj.q_in), rec)

    def __call__(self, enc_rows: np.ndarray, pred_rows: np.ndarray, rec: Recorder = None) -> np.ndarray:
        """Projected rows (N, J) each -> log-probabilities (N, V) float32."""
        z = sfu_tanh(enc_rows + pred_rows, "fp32")
        logits = self.out(self.out.q_in.quantize(z), rec)
        return log_softmax(logits)


class IntCharLM:
    """``models.lm.CharLM``: embedding -> LSTM layers -> ``out`` -> log-softmax."""

    def __init__(self, ex: Export, prefix: str, layers: int) -> None:
        self.stack = IntStack(ex, prefix, layers)
        self.out = IntLinear(ex, f"{prefix}.out")

    def initial_state(self, batch: int) -> tuple[np.ndarray, ...]:
        return self.stack.initial_state(batch)

    def __call__(self, labels: np.ndarray, state: tuple[np.ndarray, ...] | None, rec: Recorder = None
                 ) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
        """labels (B,) -> (log p(next | history) (B, V), new state)."""
        h, state = self.stack(labels, state, rec)
        logits = self.out(requant(h, self.stack.q_out, self.out.q_in), rec)
        return log_softmax(logits), state


class IntSystem:
    """An exported quantized system executed with integer kernels.

    Attributes:
        config: the ``ModelConfig``. policy: the policy name. path: the export file.
        encoder: ``IntEncoder``. prediction: ``IntStack``. joint: ``IntJoint``.
        lm_ext, lm_src: ``IntCharLM``.
    """

    def __init__(self, ex: Export) -> None:
        self.path = ex.path
        self.config: ModelConfig = from_dict(ModelConfig, ex.config, source=f"{ex.path}[config]")
        self.policy = ex.policy_name
        cfg = self.config
        self.encoder = IntEncoder(ex, cfg)
        self.prediction = IntStack(ex, "rnnt.prediction", cfg.prediction.layers)
        self.joint = IntJoint(ex)
        self.lm_ext = IntCharLM(ex, "lm_ext", cfg.lm_ext.layers)
        self.lm_src = IntCharLM(ex, "lm_src", cfg.lm_src.layers)

    @classmethod
    def from_export(cls, path: str | Path) -> "IntSystem":
        """Load ``models.quant.export`` output.

        Raises:
            NotImplementedError: a quantizer funcsim does not execute (named).
        """
        return cls(Export(path))

    def modules(self) -> dict[str, IntLSTM | IntLinear]:
        """Every GEMM-carrying layer by its module name."""
        out: dict[str, IntLSTM | IntLinear] = {}
        for layer in self.encoder.layers:
            out.update({m.name: m for m in layer.values()})
        for m in self.prediction.layers + self.lm_ext.stack.layers + self.lm_src.stack.layers:
            out[m.name] = m
        for m in (self.joint.enc_proj, self.joint.pred_proj, self.joint.out, self.lm_ext.out, self.lm_src.out):
            out[m.name] = m
        return out

    def __repr__(self) -> str:
        return f"IntSystem({self.config.name!r}, policy {self.policy!r}, {self.path})"
