"""Which policy role quantizes which tensor: one table for the fake-quantized model and the cost model.

Every quantizable module kind has fixed quantization slots (``models.lstm``); each slot quantizes
one tensor, at the precision of one tensor role of the policy (``models.quant.policy.ROLES``):

==============  ====================  ==================================================================
kind            dotted names          slot -> role
==============  ====================  ==================================================================
``lstm``        ``*.layers.*``        ``q_input`` -> ``input`` (layer input x), ``q_weight_ih`` /
                                      ``q_weight_hh`` -> ``weight``, ``q_hidden`` -> ``hidden`` (h,
                                      the recurrent GEMM's input), ``q_preact`` -> ``preact`` (GEMM
                                      output, the gates' pre-activation), ``q_gate`` / ``q_cell_act``
                                      -> ``act`` (sigmoid / tanh outputs), ``q_cell`` -> ``cell``
``linear``      ``*.out``, ``*_proj``  ``q_input`` -> ``input``, ``q_weight`` -> ``weight``,
                                      ``q_output`` -> ``output`` for the final layers named ``*.out``
                                      (joint, LMs: logits), else ``preact`` (the joint's ``enc_proj``
                                      / ``pred_proj`` outputs are summed and enter its tanh)
``embedding``   ``*embedding``        ``q_weight`` -> ``embedding``
==============  ====================  ==================================================================

Biases have no slot in the forward code; a quantized bias (``q_bias``) has role ``bias``.

The fake-quantized model (``models.quant.qsystem``) knows a module's kind from its type, the cost
model (``hwsim.precision``) from its dotted name (:func:`module_kind`); the names are those of
``models.params`` (``rnnt.encoder.layers.0.fwd``, ``rnnt.joint.enc_proj``, ``lm_ext.out``).
``models.quant.qsystem`` refuses a module whose name names another kind than its type, so the two
cannot drift apart.
No torch is needed here.
"""

from __future__ import annotations

#: Quantization slots of each module kind, in the order ``models.lstm`` applies them.
SLOTS: dict[str, tuple[str, ...]] = {
    "lstm": ("q_input", "q_weight_ih", "q_weight_hh", "q_hidden", "q_preact", "q_gate", "q_cell",
             "q_cell_act"),
    "linear": ("q_input", "q_weight", "q_output"),
    "embedding": ("q_weight",),
}

#: (module kind, slot) -> role; ``linear``'s ``q_output`` depends on the name (:func:`slot_role`).
SLOT_ROLES: dict[tuple[str, str], str] = {
    ("lstm", "q_input"): "input", ("lstm", "q_weight_ih"): "weight", ("lstm", "q_weight_hh"): "weight",
    ("lstm", "q_hidden"): "hidden", ("lstm", "q_preact"): "preact", ("lstm", "q_gate"): "act",
    ("lstm", "q_cell"): "cell", ("lstm", "q_cell_act"): "act",
    ("linear", "q_input"): "input", ("linear", "q_weight"): "weight",
    ("embedding", "q_weight"): "embedding",
}

#: Weight slot -> the parameter attribute it quantizes.
WEIGHT_SLOTS: dict[str, str] = {"q_weight_ih": "weight_ih", "q_weight_hh": "weight_hh",
                                "q_weight": "weight", "q_bias": "bias"}


def module_kind(module: str) -> str | None:
    """Kind of the module with dotted name ``module`` (see the table), None for a module without
    slots (``rnnt.joint``, ``lm_ext``, the search: ``""``)."""
    last = module.rsplit(".", 1)[-1]
    if ".layers." in module:
        return "lstm"
    if last.endswith("embedding"):
        return "embedding"
    if last == "out" or last.endswith("_proj"):
        return "linear"
    return None


def slot_role(kind: str, module: str, slot: str) -> str:
    """The policy role of ``slot`` of a ``kind`` module named ``module``.

    Raises:
        KeyError: ``kind`` has no slot ``slot``.
    """
    if slot == "q_bias":
        return "bias"
    if kind == "linear" and slot == "q_output":
        return "output" if module.rsplit(".", 1)[-1] == "out" else "preact"
    try:
        return SLOT_ROLES[(kind, slot)]
    except KeyError:
        raise KeyError(f"{module}: a {kind} module has no quantization slot {slot!r}; "
                       f"slots: {', '.join(SLOTS.get(kind, ()))}") from None
