"""Quantization: precision policies (plain data) and fake-quantized torch models.

``models.quant.policy`` needs no torch and is what the cost model reads; everything else here is
torch and is imported lazily, so ``import models.quant.policy`` stays torch-free.

Public API:

- quantizers: :func:`sawb_clip`, :func:`fake_quant`, :func:`pact_quant`, :func:`lsq_quant`,
  :func:`float_cast`, :func:`make_quantizer` (``models.quant.quantizers``);
- systems: :func:`quantize`, :func:`calibrate`, :func:`freeze`, :func:`qat_finetune`,
  :func:`qat_step` (``models.quant.qsystem``);
- export: :func:`export`, :func:`load`, :func:`pack_bits`, :func:`unpack_bits`
  (``models.quant.qexport``).
"""

from __future__ import annotations

import importlib

_LAZY = {
    "sawb_clip": "quantizers", "fake_quant": "quantizers", "pact_quant": "quantizers",
    "lsq_quant": "quantizers", "float_cast": "quantizers", "make_quantizer": "quantizers",
    "quantize_codes": "quantizers", "SAWB_COEFFS": "quantizers",
    "quantize": "qsystem", "calibrate": "qsystem", "freeze": "qsystem", "qat_finetune": "qsystem",
    "qat_step": "qsystem", "quant_slots": "qsystem",
    "export": "qexport", "load": "qexport", "pack_bits": "qexport", "unpack_bits": "qexport",
    "read_manifest": "qexport",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        module = importlib.import_module(f"models.quant.{_LAZY[name]}")
        return getattr(module, name)
    raise AttributeError(f"module 'models.quant' has no attribute {name!r}")
