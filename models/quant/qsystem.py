"""Fake-quantized systems: fill the ``q_*`` slots of ``models.lstm`` modules from a precision policy.

Slot -> tensor role: ``models.quant.roles`` (the one table, shared with the cost model); a
module's kind comes from its type here (``LSTMLayer`` -> ``lstm``, ``Linear`` -> ``linear``,
``Embedding`` -> ``embedding``) and from its dotted name in the cost model; a module whose name
names another kind is refused (:func:`slot_role`), so the two cannot disagree about a module.

The module name given to ``policy.spec(module, role)`` is the dotted module name, as in
``models.params`` (``rnnt.encoder.layers.0.fwd``, ``lm_ext.out``, ...).

Biases have no slot in the forward code: a bias whose policy precision is not fp32 is stored in
the module as a ``q_bias`` quantizer and *projected*: the parameter itself is replaced by its
quantized value at :func:`quantize` time and after every QAT step (integer bias scales are fixed
at :func:`quantize` time).
"""

from __future__ import annotations

import copy
import itertools
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

import torch
from torch import Tensor, nn

from models.lstm import Embedding, Linear, LSTMLayer
from models.quant import roles
from models.quant.policy import PrecisionPolicy, QuantSpec, load_policy
from models.quant.roles import WEIGHT_SLOTS, module_kind
from models.quant.quantizers import IntQuantizer, Quantizer, make_quantizer

log = logging.getLogger(__name__)

__all__ = ["quantize", "calibrate", "freeze", "qat_finetune", "qat_step", "quant_slots",
           "WEIGHT_SLOTS", "slot_role"]

_KIND_OF_TYPE = ((LSTMLayer, "lstm"), (Linear, "linear"), (Embedding, "embedding"))


def _kind(module: nn.Module) -> str | None:
    for cls, kind in _KIND_OF_TYPE:
        if isinstance(module, cls):
            return kind
    return None


def slot_role(module: nn.Module, module_name: str, slot: str) -> str:
    """The policy role of ``slot`` in ``module`` (``models.quant.roles``).

    Raises:
        TypeError: ``module`` has no quantization slots.
        ValueError: ``module_name`` names a module of another kind (the cost model, which knows a
            module by its name only, would price its tensors at other roles).
    """
    kind = _kind(module)
    if kind is None:
        raise TypeError(f"{module_name}: not a quantizable module ({type(module).__name__})")
    named = module_kind(module_name)
    if named is not None and named != kind:
        raise ValueError(f"{module_name}: a {type(module).__name__} ({kind}) whose name says {named}; "
                         f"the cost model reads a module's kind from its name (models.quant.roles)")
    return roles.slot_role(kind, module_name, slot)


def _slots_of(module: nn.Module) -> tuple[str, ...]:
    kind = _kind(module)
    return roles.SLOTS[kind] if kind else ()


def _groups(module: nn.Module, spec: QuantSpec, param: Tensor) -> int:
    """Number of scales of a parameter (= ``policy.num_scales`` of its ``ParamSpec``)."""
    if spec.granularity == "tensor" or not spec.is_int:
        return 1
    if spec.granularity == "channel":
        return param.shape[0]
    return 4 if isinstance(module, LSTMLayer) else 1  # gate blocks: LSTM (i, f, g, o)


def quant_slots(system: nn.Module, prefix: str = "") -> Iterator[tuple[str, nn.Module, str, Quantizer]]:
    """(module name, module, slot, quantizer) of every filled slot, in module order."""
    for name, module in system.named_modules():
        full = f"{prefix}{name}"
        for slot in _slots_of(module) + (("q_bias",) if hasattr(module, "q_bias") else ()):
            q = getattr(module, slot, None)
            if isinstance(q, Quantizer):
                yield full, module, slot, q


def _attach(system: nn.Module, policy: PrecisionPolicy, prefix: str) -> None:
    for name, module in list(system.named_modules()):
        slots = _slots_of(module)
        if not slots:
            continue
        full = f"{prefix}{name}"
        for slot in slots:
            role = slot_role(module, full, slot)
            spec = policy.spec(full, role)
            param_attr = WEIGHT_SLOTS.get(slot)
            if param_attr is not None:
                param = getattr(module, param_attr)
                q = make_quantizer(spec, role, f"{full}.{slot}", _groups(module, spec, param), is_weight=True)
                if isinstance(q, IntQuantizer):
                    q.scale_precision = policy.scale_precision
            else:
                q = make_quantizer(spec, role, f"{full}.{slot}")
            setattr(module, slot, q)
        bias = getattr(module, "bias", None)
        if isinstance(bias, nn.Parameter):
            spec = policy.spec(full, "bias")
            if spec.precision != "fp32":
                q = make_quantizer(spec, "bias", f"{full}.q_bias", _groups(module, spec, bias), is_weight=True)
                module.q_bias = q
                if isinstance(q, IntQuantizer):
                    q.scale_precision = policy.scale_precision
                    q(bias)  # scale from the float bias, then fixed
                    q.freeze()
    project_biases(system)


def project_biases(system: nn.Module) -> None:
    """Replace every bias that has a ``q_bias`` quantizer by its quantized value (in place)."""
    with torch.no_grad():
        for _, module in system.named_modules():
            q = getattr(module, "q_bias", None)
            if isinstance(q, Quantizer):
                module.bias.copy_(q(module.bias))


def quantize(system: nn.Module, policy: PrecisionPolicy | str | Path, mode: str = "ptq",
             calib_features: Sequence[Tensor] | None = None,
             calib_fn: Callable[[nn.Module, Tensor], object] | None = None,
             prefix: str = "", seed: int = 0) -> nn.Module:
    """A fake-quantized copy of ``system`` (the input is not modified).

    Args:
        system: a ``models.build_system`` system (``rnnt``, ``lm_ext``, ``lm_src``) or any module
            made of ``models.lstm`` layers.
        policy: a ``PrecisionPolicy``, a policy name or a YAML path.
        mode: ``ptq``: calibrate observers on ``calib_features``, then freeze every quantizer
            (eval mode). ``qat``: calibrate if features are given (initializes PACT clips, LSQ
            steps and min-max ranges), leave quantizers live, train mode.
        calib_features: feature tensors (B, T, input_dim) or (T, input_dim); required for ``ptq``
            when the policy has observer quantizers, unless ``calib_fn`` runs its own data.
        calib_fn: ``calib_fn(qsystem, features)`` runs one calibration pass; default
            :func:`default_calibration_pass` (RNN-T forward on random labels + both LMs).
        prefix: prepended to module names (when ``system`` is a sub-model, e.g. ``"lm_ext."``).
        seed: seed of the random label sequences of the default calibration pass.

    Returns:
        The quantized copy, with attribute ``quant_policy``.
    """
    if mode not in ("ptq", "qat"):
        raise ValueError(f"mode must be 'ptq' or 'qat', got {mode!r}")
    if not isinstance(policy, PrecisionPolicy):
        policy = load_policy(policy)
    qsys = copy.deepcopy(system)
    _attach(qsys, policy, prefix)
    qsys.quant_policy = policy
    qsys.quant_prefix = prefix
    if calib_features:
        calibrate(qsys, calib_features, calib_fn, seed=seed)
    if mode == "ptq":
        freeze(qsys)
        qsys.eval()
    else:
        qsys.train()
    return qsys


def default_calibration_pass(qsys: nn.Module, feats: Tensor, generator: torch.Generator) -> None:
    """Run every quantized path once: RNN-T lattice forward on random labels, both LMs."""
    if feats.dim() == 2:
        feats = feats.unsqueeze(0)
    rnnt = getattr(qsys, "rnnt", None)
    num_labels = rnnt.cfg.num_labels if rnnt is not None else None
    for name in ("lm_ext", "lm_src"):
        lm = getattr(qsys, name, None)
        if lm is not None:
            num_labels = lm.num_labels
    if num_labels is None:
        raise ValueError("default calibration needs a system with rnnt / lm_ext / lm_src; pass calib_fn")
    labels = torch.randint(1, num_labels, (feats.shape[0], 12), generator=generator)
    if rnnt is not None:
        rnnt(feats, labels, fused=False)
    for name in ("lm_ext", "lm_src"):
        lm = getattr(qsys, name, None)
        if lm is not None:
            lm.forward_sequence(torch.cat([labels.new_zeros(labels.shape[0], 1), labels], 1), fused=False)


def calibrate(qsys: nn.Module, features: Iterable[Tensor],
              calib_fn: Callable[[nn.Module, Tensor], object] | None = None, seed: int = 0) -> None:
    """Observe activation ranges (and initialize learned clips) over ``features``.

    Observing quantizers pass their input through unchanged, so every layer is calibrated on the
    float activations of the layers before it.
    """
    acts = [q for _, _, slot, q in quant_slots(qsys) if isinstance(q, IntQuantizer) and slot not in WEIGHT_SLOTS]
    for q in acts:
        q.observing = True
    gen = torch.Generator().manual_seed(seed)
    was_training = _training(qsys)
    qsys.eval()
    try:
        with torch.no_grad():
            for feats in features:
                if calib_fn is None:
                    default_calibration_pass(qsys, feats, gen)
                else:
                    calib_fn(qsys, feats)
    finally:
        for q in acts:
            q.observing = False
        qsys.train(was_training)


def _training(qsys) -> bool:
    """Train mode of a system (``models.system.System`` is not an ``nn.Module``) or module."""
    for _, m in qsys.named_modules():
        return m.training
    return False


def freeze(qsys: nn.Module) -> None:
    """Fix every quantizer's parameters: weight scales from the current weights, observed ranges.

    Raises:
        RuntimeError: an activation quantizer never saw data (names it).
    """
    for _, module, slot, q in quant_slots(qsys):
        if not isinstance(q, IntQuantizer):
            continue
        if slot in WEIGHT_SLOTS and slot != "q_bias":
            q.frozen = False
            q(getattr(module, WEIGHT_SLOTS[slot]))
        q.freeze()


def qat_step(qsys: nn.Module, batch: object, loss_fn: Callable[[nn.Module, object], Tensor],
             optimizer: torch.optim.Optimizer) -> float:
    """One QAT step: forward, loss, backward, update, bias projection. Returns the loss."""
    optimizer.zero_grad(set_to_none=True)
    loss = loss_fn(qsys, batch)
    loss.backward()
    optimizer.step()
    project_biases(qsys)
    return float(loss.detach())


def qat_finetune(qsys: nn.Module, batches: Iterable[object], steps: int, lr: float,
                 loss_fn: Callable[[nn.Module, object], Tensor],
                 optimizer: torch.optim.Optimizer | None = None, freeze_after: bool = True) -> list[float]:
    """Quantization-aware fine-tuning with a user loss.

    Args:
        qsys: from ``quantize(..., mode="qat")``.
        batches: cycled until ``steps`` steps have run.
        steps: optimizer steps.
        lr: Adam learning rate (weights, PACT clips and LSQ steps alike) when ``optimizer`` is None.
        loss_fn: ``loss_fn(qsys, batch) -> scalar`` (e.g. the RNN-T loss, or an LM cross-entropy).
        freeze_after: freeze the quantizers and switch to eval mode at the end.

    Returns:
        The loss of every step.
    """
    qsys.train()
    if optimizer is None:
        optimizer = torch.optim.Adam([p for p in qsys.parameters() if p.requires_grad], lr=lr)
    losses = []
    for batch in itertools.islice(itertools.cycle(batches), steps):
        losses.append(qat_step(qsys, batch, loss_fn, optimizer))
    if freeze_after:
        freeze(qsys)
        qsys.eval()
    return losses
