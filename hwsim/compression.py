"""Model compression under a precision policy: FP32 parameter bytes / bytes under the policy.

What is counted (every stored parameter tensor of ``models.params.parameter_table(config)``: the
RNN-T's encoder, prediction network and joint, and both LMs of density-ratio fusion):

- ``data``: the tensor itself at its role's precision (``weight``, ``bias`` or ``embedding`` spec,
  per-module overrides applied). Integer tensors are packed row by row, an odd INT4 row padded to
  a whole byte (``models.quant.policy.tensor_storage_bytes``).
- ``scales``: one per tensor, gate block or output channel (the spec's granularity), at the
  policy's ``scale_precision``.
- ``zero_points``: only for asymmetric integer quantizers, at ``zero_point_bits``.

Not counted: activation quantizer parameters (PACT clip values: a handful of scalars), optimizer
state, and anything not a model parameter. The FP32 reference is 4 bytes per element, no scales.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from models.config import ModelConfig, load_config
from models.params import parameter_table
from models.quant.policy import PrecisionPolicy, load_policy, tensor_storage_bytes

#: Sub-models, by parameter-name prefix.
SUBMODELS = {"rnnt": "rnnt.", "lm_ext": "lm_ext.", "lm_src": "lm_src."}


@dataclass(frozen=True)
class Compression:
    """Compression of a whole system under a policy.

    Attributes:
        weight_bytes: bytes of all parameters under the policy (data + scales + zero points).
        fp32_weight_bytes: bytes at FP32.
        compression_x: ``fp32_weight_bytes / weight_bytes``.
        by_submodel: ``{rnnt|lm_ext|lm_src: {"weight_bytes", "fp32_weight_bytes", "compression_x"}}``.
        tensors: one row per parameter: ``name, submodel, phase, module, role, shape, numel,
            precision, fp32_bytes, data_bytes, scale_bytes, zero_point_bytes, bytes``.
    """

    weight_bytes: int
    fp32_weight_bytes: int
    compression_x: float
    by_submodel: dict[str, dict[str, float]]
    tensors: pd.DataFrame

    @property
    def sizes(self) -> dict[str, int]:
        """Bytes of every parameter under the policy, by name."""
        return dict(zip(self.tensors["name"], self.tensors["bytes"].astype(int)))

def tensor_table(config: ModelConfig, policy: PrecisionPolicy) -> pd.DataFrame:
    """Per-parameter storage under ``policy`` (see ``Compression.tensors``)."""
    rows = []
    for p in parameter_table(config):
        spec = policy.param_spec(p)
        b = tensor_storage_bytes(p, spec, policy)
        rows.append({
            "name": p.name, "submodel": p.name.split(".", 1)[0], "phase": p.phase,
            "module": p.module, "role": p.role, "shape": "x".join(map(str, p.shape)),
            "numel": p.numel, "precision": spec.precision, "fp32_bytes": 4 * p.numel,
            "data_bytes": b["data"], "scale_bytes": b["scales"], "zero_point_bytes": b["zero_points"],
        })
    frame = pd.DataFrame(rows)
    frame["bytes"] = frame["data_bytes"] + frame["scale_bytes"] + frame["zero_point_bytes"]
    return frame


def compression(config: ModelConfig | str, policy: PrecisionPolicy | str) -> Compression:
    """Compression of the whole system (RNN-T + both LMs) and of each sub-model.

    Args:
        config: a ModelConfig, preset name or YAML path.
        policy: a PrecisionPolicy, policy name or YAML path.
    """
    if not isinstance(config, ModelConfig):
        config = load_config(config)
    if not isinstance(policy, PrecisionPolicy):
        policy = load_policy(policy)
    frame = tensor_table(config, policy)
    by_sub = {}
    for sub, g in frame.groupby("submodel"):
        wb, fb = int(g["bytes"].sum()), int(g["fp32_bytes"].sum())
        by_sub[str(sub)] = {"weight_bytes": wb, "fp32_weight_bytes": fb, "compression_x": fb / wb}
    wb, fb = int(frame["bytes"].sum()), int(frame["fp32_bytes"].sum())
    return Compression(weight_bytes=wb, fp32_weight_bytes=fb, compression_x=fb / wb,
                       by_submodel=by_sub, tensors=frame)


_CACHE: list[tuple[ModelConfig, PrecisionPolicy, Compression]] = []
_CACHE_SIZE = 8


def cached_compression(config: ModelConfig, policy: PrecisionPolicy) -> Compression:
    """``compression`` of a resolved config and policy, remembered for the last few pairs (found
    by equality: a sweep costs many accelerators under the same model and policy). The result
    is shared: do not modify its table."""
    for c, p, comp in _CACHE:
        if c is config and p is policy or (c == config and p == policy):
            return comp
    comp = compression(config, policy)
    _CACHE.insert(0, (config, policy, comp))
    del _CACHE[_CACHE_SIZE:]
    return comp
