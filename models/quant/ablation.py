"""Per-role ablation of the ``int4`` policy: the seed's "customized quantization schemes".

From ``int4`` (``models/quant/policies/int4.yaml``), one tensor role at a time goes back to the
naive choice of ``int4-naive`` (an observed min-max range per tensor, asymmetric): each variant
says which role's tailored quantizer buys accuracy, and (simulated, ``reports.accuracy``) what it
costs in speed and size. ``ABLATIONS`` is the one definition; the accuracy pipeline
(``models.train.stages.stage_ablate``) and the report read it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from models.quant.policy import PrecisionPolicy, QuantSpec, load_policy

#: The naive choice of ``int4-naive``: min-max per tensor, asymmetric.
NAIVE_INT4 = QuantSpec(precision="int4", quantizer="minmax", granularity="tensor", symmetric=False)
NAIVE_INT8 = QuantSpec(precision="int8", quantizer="minmax", granularity="tensor", symmetric=False)


@dataclass(frozen=True)
class Ablation:
    """One variant: ``roles`` replace the base policy's specs of those roles."""

    name: str
    change: str
    roles: dict[str, QuantSpec]


ABLATIONS: tuple[Ablation, ...] = (
    Ablation("weights-minmax", "weights (and embeddings) SAWB per channel -> min-max per tensor",
             {"weight": NAIVE_INT4, "embedding": NAIVE_INT4}),
    Ablation("inputs-minmax", "GEMM inputs PACT (learned clip) -> min-max", {"input": NAIVE_INT4}),
    Ablation("hidden-minmax", "hidden state fixed range [-1, 1] -> min-max", {"hidden": NAIVE_INT4}),
    Ablation("cell-int8", "cell state FP16 -> INT8 min-max", {"cell": NAIVE_INT8}),
    Ablation("cell-int4", "cell state FP16 -> INT4 min-max", {"cell": NAIVE_INT4}),
    Ablation("gates-int4", "gate signals (pre-activations and nonlinear outputs) FP16 -> INT4 min-max",
             {"preact": NAIVE_INT4, "act": NAIVE_INT4}),
)

BASE_POLICY = "int4"


def ablation(name: str) -> Ablation:
    """The ``ABLATIONS`` entry called ``name`` (ValueError naming the known ones otherwise)."""
    for a in ABLATIONS:
        if a.name == name:
            return a
    raise ValueError(f"unknown ablation {name!r}; known: {', '.join(a.name for a in ABLATIONS)}")


def ablation_policy(name: str, base: PrecisionPolicy | str = BASE_POLICY) -> PrecisionPolicy:
    """``base`` with the roles of ablation ``name`` replaced; named ``<base>-<name>``. The base's
    overrides are kept (none in the shipped ``int4``)."""
    a = ablation(name)
    base = base if isinstance(base, PrecisionPolicy) else load_policy(base)
    return replace(base, name=f"{base.name}-{a.name}", roles={**base.roles, **a.roles},
                   description=f"{base.name} with {a.change}")
