"""Precision policies: the precision and quantizer of every tensor role, as plain data.

One definition drives both the fake-quantized PyTorch model (``models.quant``) and the cost model
(``hwsim``), so what is simulated is what is trained. No torch is needed here.

Tensor roles (``ROLES``):

- ``weight``: GEMM weights (LSTM input and recurrent weights, with one quantizer per gate block
  when granularity is ``gate`` or ``channel``; Linear weights).
- ``bias``: biases, added to the accumulator.
- ``embedding``: embedding tables (prediction network and LMs).
- ``input``: a GEMM's activation input (layer inputs, joint inputs).
- ``hidden``: the LSTM hidden state h_t, quantized every step (it feeds the recurrent GEMM).
- ``cell``: the LSTM cell state c_t and the element-wise ops that update it.
- ``preact``: gate pre-activations (GEMM outputs entering a nonlinearity).
- ``act``: nonlinear outputs (sigmoid, tanh) and the joint's tanh.
- ``output``: logits and log-probabilities (joint and LM outputs).

Module names for overrides are the dotted names of ``models.params`` (e.g. ``rnnt.joint.out``,
``lm_ext.layers.0``, ``rnnt.encoder.layers.0.fwd``); patterns use ``fnmatch`` syntax and later
overrides win. A pattern that matches no module of the model is an error wherever a policy meets
a model config (:func:`check_overrides`).
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from math import ceil
from pathlib import Path
from typing import Iterable

from models.config import ModelConfig
from models.params import ParamSpec, parameter_table
from models.yamlio import ConfigError, load_preset, preset_names, require

POLICY_DIR = Path(__file__).parent / "policies"

#: Bits of each precision. fp8 is listed for accelerators that support it (RaPiD's hybrid FP8).
BITS = {"fp32": 32, "fp16": 16, "bf16": 16, "fp8": 8, "int8": 8, "int4": 4, "int2": 2}
FLOAT_PRECISIONS = ("fp32", "fp16", "bf16", "fp8")
INT_PRECISIONS = ("int8", "int4", "int2")
QUANTIZERS = ("none", "minmax", "max", "sawb", "pact", "pact2", "lsq", "fixed")
GRANULARITIES = ("tensor", "gate", "channel")
ROLES = ("weight", "bias", "embedding", "input", "hidden", "cell", "preact", "act", "output")
PARAM_ROLES = ("weight", "bias", "embedding")


@dataclass(frozen=True)
class QuantSpec:
    """How one tensor role is stored and computed.

    Attributes:
        precision: one of ``BITS``.
        quantizer: for integer precisions, how the clip range is found: ``minmax`` (observed range,
            asymmetric when ``symmetric`` is false), ``max`` (observed max |x|), ``sawb``
            (statistics-aware weight binning), ``pact`` (learned one-sided clip [0, alpha]),
            ``pact2`` (learned symmetric clip), ``lsq`` (learned step size), ``fixed``
            (``fixed_range``, for bounded signals such as sigmoid outputs). ``none`` for floats.
        granularity: one scale per ``tensor``, per ``gate`` block, or per output ``channel`` (row).
        symmetric: zero point fixed at 0 (no zero points stored).
        narrow_range: symmetric grid without the most negative code (INT4: -7..7).
        fixed_range: (lo, hi) for the ``fixed`` quantizer.
    """

    precision: str
    quantizer: str = "none"
    granularity: str = "tensor"
    symmetric: bool = True
    narrow_range: bool = True
    fixed_range: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        require(self.precision in BITS, f"precision must be one of {list(BITS)}, got {self.precision!r}")
        require(self.quantizer in QUANTIZERS, f"quantizer must be one of {list(QUANTIZERS)}, got {self.quantizer!r}")
        require(self.granularity in GRANULARITIES,
                f"granularity must be one of {list(GRANULARITIES)}, got {self.granularity!r}")
        if self.is_int:
            require(self.quantizer != "none", f"integer precision {self.precision} needs a quantizer")
        else:
            require(self.quantizer == "none", f"float precision {self.precision} takes quantizer 'none'")
        if self.quantizer == "fixed":
            require(self.fixed_range is not None and self.fixed_range[0] < self.fixed_range[1],
                    "quantizer 'fixed' needs fixed_range [lo, hi] with lo < hi")

    @property
    def bits(self) -> int:
        return BITS[self.precision]

    @property
    def is_int(self) -> bool:
        return self.precision in INT_PRECISIONS

    @property
    def qmin(self) -> int:
        """Smallest integer code (signed grid; asymmetric grids use the same signed range)."""
        half = 2 ** (self.bits - 1)
        return -half + 1 if (self.symmetric and self.narrow_range) else -half

    @property
    def qmax(self) -> int:
        return 2 ** (self.bits - 1) - 1


@dataclass(frozen=True)
class Override:
    """Role specs for modules whose dotted name matches ``pattern`` (fnmatch)."""

    pattern: str
    roles: dict[str, QuantSpec]

    def __post_init__(self) -> None:
        _check_roles(self.roles, complete=False)


@dataclass(frozen=True)
class PrecisionPolicy:
    """A precision for every tensor role, with per-module overrides.

    Attributes:
        name: policy name.
        roles: the default spec of every role in ``ROLES`` (all required).
        overrides: applied in order; the last matching override of a role wins.
        scale_precision: storage precision of quantization scales.
        zero_point_bits: storage width of a zero point (asymmetric quantizers only).
        description: one line for tables.
    """

    name: str
    roles: dict[str, QuantSpec]
    overrides: tuple[Override, ...] = ()
    scale_precision: str = "fp32"
    zero_point_bits: int = 8
    description: str = ""

    def __post_init__(self) -> None:
        _check_roles(self.roles, complete=True)
        require(self.scale_precision in FLOAT_PRECISIONS,
                f"scale_precision must be one of {list(FLOAT_PRECISIONS)}, got {self.scale_precision!r}")
        require(self.zero_point_bits in (2, 4, 8, 16, 32), "zero_point_bits must be 2, 4, 8, 16 or 32")

    def spec(self, module: str, role: str) -> QuantSpec:
        """The spec of ``role`` inside module ``module`` (dotted name), overrides applied."""
        if role not in ROLES:
            raise KeyError(f"unknown tensor role {role!r}; roles: {', '.join(ROLES)}")
        ov = self.deciding_override(module, role)
        return self.roles[role] if ov is None else ov.roles[role]

    def param_spec(self, param: ParamSpec) -> QuantSpec:
        return self.spec(param.module, param.role)

    def deciding_override(self, module: str, role: str) -> Override | None:
        """The override that decides ``role`` in ``module`` (the last match), None for the default."""
        found = None
        for ov in self.overrides:
            if role in ov.roles and fnmatch.fnmatchcase(module, ov.pattern):
                found = ov
        return found


def _check_roles(roles: dict[str, QuantSpec], complete: bool) -> None:
    unknown = sorted(set(roles) - set(ROLES))
    require(not unknown, f"unknown role(s) {unknown}; roles: {list(ROLES)}")
    if complete:
        missing = [r for r in ROLES if r not in roles]
        require(not missing, f"roles missing: {missing} (every role needs a spec)")


# --------------------------------------------------------------------------------------------
# A policy against a model


def model_modules(params: Iterable[ParamSpec]) -> list[str]:
    """The names overrides are matched against: the dotted name of every module that holds a
    parameter (``rnnt.encoder.layers.0.fwd``, ``rnnt.joint.out``, ``lm_ext.embedding``), in
    parameter-table order. These are the modules with quantization slots (``models.quant.roles``),
    the only ones whose tensors both the fake-quantized model and the cost model take from the
    policy; containers (``rnnt.encoder``, ``rnnt.encoder.layers.0``) hold no tensor of their own."""
    return list(dict.fromkeys(p.module for p in params))


def unmatched_overrides(policy: PrecisionPolicy, modules: Iterable[str]) -> list[str]:
    """Override patterns of ``policy`` that match none of ``modules`` (dotted names), in order."""
    modules = list(modules)
    return [ov.pattern for ov in policy.overrides
            if not any(fnmatch.fnmatchcase(m, ov.pattern) for m in modules)]


def check_overrides(policy: PrecisionPolicy, config: ModelConfig) -> None:
    """Refuse a policy with an override pattern that matches no module of ``config``'s system.

    Such an override changes nothing (a typo such as ``rnnt.encoder.layer.*``, a container name
    such as ``rnnt.encoder.layers.0`` whose tensors live in ``.fwd`` / ``.bwd``, or a pattern
    written for another model), so the run would silently use the defaults. Call it where a
    policy meets a model config, before any work. Modules: :func:`model_modules`.

    Raises:
        ConfigError: naming the first such pattern (and how many more), the policy and the model.
    """
    if not policy.overrides:
        return
    modules = model_modules(parameter_table(config))
    unmatched = unmatched_overrides(policy, modules)
    if unmatched:
        rest = unmatched[1:]
        more = f" (nor {'does' if len(rest) == 1 else 'do'} {', '.join(map(repr, rest))})" if rest else ""
        raise ConfigError(
            f"precision policy {policy.name!r}: override pattern {unmatched[0]!r} matches no module of "
            f"model {config.name!r}{more}; patterns match the names of modules holding parameters, "
            f"e.g. {modules[0]} or {modules[-1]} (`hwsim presets show POLICY --model {config.name}` "
            "lists them)")


# --------------------------------------------------------------------------------------------
# Storage and compression


def num_scales(param: ParamSpec, spec: QuantSpec) -> int:
    """Number of scale factors stored for ``param`` under ``spec`` (0 for float precisions)."""
    if not spec.is_int:
        return 0
    if spec.granularity == "tensor":
        return 1
    if spec.granularity == "gate":
        return param.gates
    return param.shape[0]


def tensor_storage_bytes(param: ParamSpec, spec: QuantSpec, policy: PrecisionPolicy) -> dict[str, int]:
    """Bytes to store one parameter under a spec.

    Integer tensors are packed row by row along the last axis (two INT4 codes per byte, the last
    byte of a row with odd length padded), as the kernels in ``hwsim.kernels`` store them.

    Returns:
        ``{"data": ..., "scales": ..., "zero_points": ...}`` in bytes.
    """
    bits = spec.bits
    if spec.is_int:
        rows = param.numel // param.shape[-1]
        data = rows * ceil(param.shape[-1] * bits / 8)
        n = num_scales(param, spec)
        scales = n * BITS[policy.scale_precision] // 8
        zps = 0 if spec.symmetric else ceil(n * policy.zero_point_bits / 8)
        return {"data": data, "scales": scales, "zero_points": zps}
    return {"data": ceil(param.numel * bits / 8), "scales": 0, "zero_points": 0}


def storage_bytes(params: Iterable[ParamSpec], policy: PrecisionPolicy) -> int:
    """Total bytes of all ``params`` under ``policy`` (data + scales + zero points)."""
    return sum(sum(tensor_storage_bytes(p, policy.param_spec(p), policy).values()) for p in params)


def compression_x(params: Iterable[ParamSpec], policy: PrecisionPolicy) -> float:
    """FP32 bytes / bytes under ``policy`` for the given parameters."""
    params = list(params)
    fp32 = sum(4 * p.numel for p in params)
    return fp32 / storage_bytes(params, policy)


# --------------------------------------------------------------------------------------------
# Loading


def policies() -> list[str]:
    """Names of the shipped policies in ``models/quant/policies/``."""
    return preset_names(POLICY_DIR)


def load_policy(name_or_path: str | Path) -> PrecisionPolicy:
    """Load a named policy (``fp32``, ``fp16``, ``int8``, ``int4``, ...) or a YAML file.

    Raises:
        ConfigError: unknown name, or invalid file content (file and field named).
    """
    return load_preset(PrecisionPolicy, name_or_path, POLICY_DIR, "precision policy")
