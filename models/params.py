"""Every parameter tensor of a system, from its config alone (no torch).

The names are exactly those of ``build_system(...)``'s modules, prefixed by the sub-model
(``rnnt.``, ``lm_ext.``, ``lm_src.``); a test checks that ``named_parameters()`` agrees. The cost
model (weight bytes, residency, compression) and the analytic graph builder read this table.

Naming scheme (``{d}`` is ``fwd`` or ``bwd``):

- ``rnnt.encoder.layers.{l}.{d}.weight_ih`` (4H, I), ``weight_hh`` (4H, H), ``bias`` (4H)
- ``rnnt.prediction.embedding.weight`` (V, E); ``rnnt.prediction.layers.{l}.weight_ih|weight_hh|bias``
- ``rnnt.joint.enc_proj.weight`` (J, Enc) and ``.bias`` (J); ``rnnt.joint.pred_proj.weight`` (J, P);
  ``rnnt.joint.out.weight`` (V, J) and ``.bias`` (V)
- ``lm_{ext,src}.embedding.weight`` (V, E); ``lm_*.layers.{l}.weight_ih|weight_hh|bias``;
  ``lm_*.out.weight`` (V, H) and ``.bias`` (V)

LSTM gate order along the 4H axis is PyTorch's: input, forget, cell (g), output. One bias per LSTM
layer (hardware adds one; PyTorch's two biases are summed when converting).
"""

from __future__ import annotations

from dataclasses import dataclass
from math import prod

from models.config import LMConfig, ModelConfig

#: Parameter roles, as precision policies name them (see models/quant/policy.py).
ROLE_WEIGHT = "weight"
ROLE_BIAS = "bias"
ROLE_EMBEDDING = "embedding"


@dataclass(frozen=True)
class ParamSpec:
    """One parameter tensor.

    Attributes:
        name: full dotted name, e.g. ``rnnt.encoder.layers.0.fwd.weight_ih``.
        shape: tensor shape.
        module: owning module's dotted name (the name minus the last component).
        role: ``weight``, ``bias`` or ``embedding``.
        phase: graph phase that reads it: encoder, prediction, joint, lm_ext or lm_src.
        gates: number of gate blocks stacked along dim 0 (4 for LSTM weights and biases, else 1).
    """

    name: str
    shape: tuple[int, ...]
    module: str
    role: str
    phase: str
    gates: int = 1

    @property
    def numel(self) -> int:
        return prod(self.shape)


def _lstm(prefix: str, phase: str, in_dim: int, hidden: int) -> list[ParamSpec]:
    g = 4 * hidden
    return [
        ParamSpec(f"{prefix}.weight_ih", (g, in_dim), prefix, ROLE_WEIGHT, phase, 4),
        ParamSpec(f"{prefix}.weight_hh", (g, hidden), prefix, ROLE_WEIGHT, phase, 4),
        ParamSpec(f"{prefix}.bias", (g,), prefix, ROLE_BIAS, phase, 4),
    ]


def _linear(prefix: str, phase: str, in_dim: int, out_dim: int, bias: bool) -> list[ParamSpec]:
    specs = [ParamSpec(f"{prefix}.weight", (out_dim, in_dim), prefix, ROLE_WEIGHT, phase)]
    if bias:
        specs.append(ParamSpec(f"{prefix}.bias", (out_dim,), prefix, ROLE_BIAS, phase))
    return specs


def encoder_layer_input_dims(cfg: ModelConfig) -> list[int]:
    """Input width of each encoder layer (time reduction by ``concat`` widens the next layer)."""
    enc = cfg.encoder
    dims = [cfg.encoder_input_dim]
    for layer in range(1, enc.layers):
        width = enc.output_dim
        if enc.time_reduction > 1 and layer == enc.time_reduction_after and enc.time_reduction_method == "concat":
            width *= enc.time_reduction
        dims.append(width)
    return dims


def lm_parameters(prefix: str, lm: LMConfig, num_labels: int) -> list[ParamSpec]:
    """Parameters of one character LM named ``prefix`` (``lm_ext`` or ``lm_src``)."""
    specs = [ParamSpec(f"{prefix}.embedding.weight", (num_labels, lm.embed_dim), f"{prefix}.embedding",
                       ROLE_EMBEDDING, prefix)]
    in_dim = lm.embed_dim
    for layer in range(lm.layers):
        specs += _lstm(f"{prefix}.layers.{layer}", prefix, in_dim, lm.hidden)
        in_dim = lm.hidden
    specs += _linear(f"{prefix}.out", prefix, lm.hidden, num_labels, bias=True)
    return specs


def rnnt_parameters(cfg: ModelConfig) -> list[ParamSpec]:
    """Parameters of the RNN-T (encoder, prediction network, joint)."""
    enc, pred, V = cfg.encoder, cfg.prediction, cfg.num_labels
    specs: list[ParamSpec] = []
    dirs = ("fwd", "bwd") if enc.bidirectional else ("fwd",)
    for layer, in_dim in enumerate(encoder_layer_input_dims(cfg)):
        for d in dirs:
            specs += _lstm(f"rnnt.encoder.layers.{layer}.{d}", "encoder", in_dim, enc.hidden)
    specs.append(ParamSpec("rnnt.prediction.embedding.weight", (V, pred.embed_dim),
                           "rnnt.prediction.embedding", ROLE_EMBEDDING, "prediction"))
    in_dim = pred.embed_dim
    for layer in range(pred.layers):
        specs += _lstm(f"rnnt.prediction.layers.{layer}", "prediction", in_dim, pred.hidden)
        in_dim = pred.hidden
    J = cfg.joint.dim
    specs += _linear("rnnt.joint.enc_proj", "joint", enc.output_dim, J, bias=True)
    specs += _linear("rnnt.joint.pred_proj", "joint", pred.hidden, J, bias=False)
    specs += _linear("rnnt.joint.out", "joint", J, V, bias=True)
    return specs


def parameter_table(cfg: ModelConfig) -> list[ParamSpec]:
    """Every parameter of the system: RNN-T, then external LM, then source LM."""
    return (
        rnnt_parameters(cfg)
        + lm_parameters("lm_ext", cfg.lm_ext, cfg.num_labels)
        + lm_parameters("lm_src", cfg.lm_src, cfg.num_labels)
    )


def parameter_count(cfg: ModelConfig, prefix: str = "") -> int:
    """Number of parameter elements whose name starts with ``prefix`` ('' = all, 'rnnt.' = RNN-T)."""
    return sum(p.numel for p in parameter_table(cfg) if p.name.startswith(prefix))
