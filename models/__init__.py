"""hwsim models: RNN-T, character LMs, search with density-ratio fusion.

Public API (other code calls these names)::

    models.presets() -> list[str]
    models.load_config(name_or_path) -> ModelConfig
    models.build_system(name_or_path_or_config, seed=0, checkpoint=None) -> System
    models.load_system(path) -> System
    models.decode(system, features, beam=4, method="alsd", lm_fusion="none", ...) -> DecodeResult

Importing ``models`` (or ``models.config``, ``models.params``, ``models.quant.policy``) does not
import torch: the torch-based names are loaded on first use.
"""

from __future__ import annotations

import importlib

from models.config import ModelConfig, load_config, presets

_LAZY = {
    "System": "models.system",
    "build_system": "models.system",
    "load_system": "models.system",
    "labels_to_text": "models.system",
    "text_to_labels": "models.system",
    "decode": "models.search",
    "DecodeResult": "models.search",
    "SearchConfig": "models.search",
    "SearchStats": "models.search",
    "StepStats": "models.search",
    "features_for": "models.features",
    "random_features": "models.features",
    "load_wav": "models.features",
    "step_scope": "models.hooks",
    "current_step": "models.hooks",
}

__all__ = ["ModelConfig", "load_config", "presets", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'models' has no attribute {name!r}")
