"""The cost model prices every tensor at the role and width of the quantizer slot that stores it.

A quantized `tiny` system is traced: each integer quantizer slot shows up as its own ops (module
``<module>.q_<slot>``), fed by the op that computed the tensor it quantizes and feeding the GEMM
that reads it. For every such edge, the role (``hwsim.precision.op_roles``) and the bits
(``op_precision``) the cost model uses for that op must be the quantizer's own ``role`` and
``spec.bits``, under several policies, one of them ``preact: int8, act: fp16`` (where the two copies
of the role table used to disagree on the joint's projections).
"""

from __future__ import annotations

import dataclasses
from collections import Counter

import pytest
import torch

import models
import workloads
from hwsim import load_spec
from hwsim.precision import op_precision, op_roles
from models.quant import quant_slots, quantize
from models.quant.policy import Override, QuantSpec, load_policy
from models.quant.quantizers import IntQuantizer
from models.quant.roles import SLOTS, WEIGHT_SLOTS, module_kind

torch.set_num_threads(1)


def _with(base: str, name: str, overrides=(), **roles):
    pol = load_policy(base)
    return dataclasses.replace(pol, name=name, roles={**pol.roles, **roles}, overrides=tuple(overrides))


def _max(precision: str) -> QuantSpec:
    return QuantSpec(precision, "max")


POLICIES = {
    "int4": load_policy("int4"),
    "int8": load_policy("int8"),
    # The case of the issue: the joint's projections are preact (8 bits), not act (16 bits).
    "preact-int8-act-fp16": _with("int4", "preact-int8-act-fp16", preact=_max("int8"),
                                  act=QuantSpec("fp16")),
    # Every activation role an integer quantizer (so that every slot shows up in the trace), the
    # widths chosen so that confusable roles differ, and a per-module override on the joint.
    "all-int": _with(
        "int4", "all-int",
        overrides=[Override("rnnt.joint.*", {"preact": _max("int4"), "input": _max("int2")})],
        embedding=QuantSpec("int8", "max", "channel"), input=_max("int8"),
        hidden=QuantSpec("int4", "fixed", fixed_range=(-1.0, 1.0)), preact=_max("int2"),
        act=_max("int4"), cell=_max("int8"), output=QuantSpec("int8", "max")),
}

#: The known approximation (``hwsim.precision`` docstring): the element-wise product
#: h = o * tanh(c) is an LSTM op priced at the ``cell`` role, while ``q_hidden`` stores h.
HIDDEN_AT_CELL = ("mul",)

#: Every slot the all-int policy must have checked: all slots of all module kinds.
ALL_SLOTS = {(kind, slot) for kind, slots in SLOTS.items() for slot in slots}


@pytest.fixture(scope="module")
def tiny():
    return models.build_system("tiny", seed=0)


def _checked_edges(system, policy, hw):
    """(kind, slot, quantizer role, quantizer bits, cost-model role, cost-model bits, op) per edge
    between a traced op and a quantizer slot of its own module."""
    feats = models.random_features(system.config, 30, seed=1)
    q = quantize(system, policy, "ptq", calib_features=[feats])
    slots = {f"{m}.{s}": (m, s, qz) for m, _, s, qz in quant_slots(q) if isinstance(qz, IntQuantizer)}
    graph, _ = workloads.trace(q, feats, beam=2, lm_fusion="dr")
    ops = graph.ops

    def weight_of(i: int) -> str:
        """The parameter a traced op reads: the one its weight slot quantized (the quantized trace
        sees the slot's output, not the parameter)."""
        op = ops[i]
        for d in graph.deps(i):
            parent, slot, _ = slots.get(ops[d].module, (None, None, None))
            if parent == op.module and slot in WEIGHT_SLOTS:
                return f"{parent}.{WEIGHT_SLOTS[slot]}"
        return op.weight

    edges = []
    for i, op in enumerate(ops):
        if op.module in slots:
            # A quantizer's op reading a tensor computed by an op of the quantizer's own module:
            # that op computes what the slot stores (its output).
            parent, slot, qz = slots[op.module]
            for d in graph.deps(i):
                src = ops[d]
                if src.module != parent:
                    continue
                w = weight_of(d)
                prec = op_precision(src.kind, src.module, w, src.phase, policy, hw)
                edges.append((module_kind(parent), slot, qz.role, qz.spec.bits,
                              op_roles(src.kind, src.module, w).output, prec.out_bits, src))
            continue
        # An op reading a quantizer's output: GEMM inputs and weights, embedding lookups. (Other
        # ops are priced at one width, their output's, for what they read and write.)
        w = weight_of(i)
        roles = op_roles(op.kind, op.module, w)
        prec = op_precision(op.kind, op.module, w, op.phase, policy, hw)
        for d in graph.deps(i):
            parent, slot, qz = slots.get(ops[d].module, (None, None, None))
            if parent != op.module or (op.kind != "gemm" and slot not in WEIGHT_SLOTS):
                continue
            if op.kind == "gemm":
                got = (roles.weight, prec.w_bits) if slot in WEIGHT_SLOTS else (roles.input, prec.in_bits)
            else:
                got = (roles.output, prec.out_bits)
            edges.append((module_kind(parent), slot, qz.role, qz.spec.bits, *got, op))
    return edges


@pytest.mark.parametrize("name", list(POLICIES))
def test_cost_model_roles_and_bits_are_the_quantizer_slots(tiny, name):
    policy, hw = POLICIES[name], load_spec("rapid4")
    edges = _checked_edges(tiny, policy, hw)
    wrong, exceptions = Counter(), Counter()
    for kind, slot, q_role, q_bits, c_role, c_bits, op in edges:
        if (q_role, q_bits) == (c_role, c_bits):
            continue
        if (kind, slot, c_role) == ("lstm", "q_hidden", "cell") and op.op in HIDDEN_AT_CELL:
            exceptions[(op.module, op.op)] += 1
            continue
        wrong[(op.module, op.op, slot, q_role, q_bits, c_role, c_bits)] += 1
    assert not wrong, f"{name}: cost model vs quantizer slot (module, op, slot, q role, bits, cost role, bits): {dict(wrong)}"
    checked = {(kind, slot) for kind, slot, *_ in edges}
    if name == "all-int":
        assert checked == ALL_SLOTS, ALL_SLOTS - checked
        # Every LSTM layer's h product is the known exception, and nothing else is.
        lstm_modules = {op.module for kind, *_, op in edges if kind == "lstm"}
        assert {m for m, _ in exceptions} == lstm_modules
    else:
        # Weights, GEMM inputs and the hidden state are integers in every policy here.
        assert {("lstm", "q_weight_ih"), ("lstm", "q_weight_hh"), ("lstm", "q_input"),
                ("lstm", "q_hidden"), ("linear", "q_input"), ("linear", "q_weight"),
                ("embedding", "q_weight")} <= checked
    if name == "preact-int8-act-fp16":
        joint = {(op.module, q_bits, c_bits) for kind, slot, _, q_bits, _, c_bits, op in edges
                 if slot == "q_output" and op.module.startswith("rnnt.joint.") and op.module.endswith("_proj")}
        assert joint == {("rnnt.joint.enc_proj", 8, 8), ("rnnt.joint.pred_proj", 8, 8)}


def test_module_names_of_every_preset_name_their_kind():
    """The cost model reads a module's kind from its name; for every quantizable module of the
    presets the name says the type's kind (qsystem refuses a disagreement at quantize time)."""
    from models.lstm import LINEAR_SLOTS, LSTM_SLOTS, Embedding, Linear, LSTMLayer

    assert SLOTS["lstm"] == LSTM_SLOTS and SLOTS["linear"] == LINEAR_SLOTS
    kinds = {LSTMLayer: "lstm", Linear: "linear", Embedding: "embedding"}
    seen = Counter()
    for preset in ("tiny", "small"):
        system = models.build_system(preset, seed=0)
        for name, module in system.named_modules():
            kind = kinds.get(type(module))
            if kind is not None:
                assert module_kind(name) == kind, name
                seen[kind] += 1
    assert set(seen) == set(SLOTS)


def test_a_module_named_for_another_kind_is_refused():
    from torch import nn

    from models.lstm import Linear

    class Wrapper(nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = nn.ModuleList([Linear(4, 4)])   # named like an LSTM: "layers.0"

    with pytest.raises(ValueError, match=r"layers\.0.*lstm"):
        quantize(Wrapper(), "int8", "qat", prefix="lm_ext.")
