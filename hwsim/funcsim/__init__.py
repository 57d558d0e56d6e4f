"""Functional simulation: an exported quantized system executed with the integer kernels.

The integer execution (``export``, ``layers``, ``system``) is numpy + ``hwsim.kernels`` only; the
search adapter (``search``: reuses ``models.search``, whose bookkeeping is torch) and the equality
report against the fake-quantized torch model (``report``) import torch, lazily.

Public API::

    IntSystem.from_export(path) -> IntSystem            integer encoder / prediction / joint / LMs
    decode(sim, features, beam=4, method="alsd", lm_fusion="none", ...) -> models DecodeResult
    equality_report(sim, reference, features, beam=4, method="alsd", lm_fusion="dr") -> EqualityReport
    funcsim(export_path, features, ...) -> (DecodeResult, EqualityReport)
"""

from __future__ import annotations

import importlib

from hwsim.funcsim.export import ActQuant, Export, IntWeight
from hwsim.funcsim.system import IntSystem

_LAZY = {"decode": "search", "SearchAdapter": "search", "equality_report": "report",
         "EqualityReport": "report", "SlotComparison": "report", "funcsim": "run"}

__all__ = ["ActQuant", "Export", "IntWeight", "IntSystem", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(f"hwsim.funcsim.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'hwsim.funcsim' has no attribute {name!r}")
