"""Shared fixtures: small systems and traced decodes (built once per session)."""

import pytest
import torch

import models
import workloads
from models.features import random_features

torch.set_num_threads(1)


@pytest.fixture(scope="session")
def traced():
    """``traced(preset, frames, beam, fusion, method)`` -> (system, features, graph, result), cached."""
    cache = {}

    def get(preset="tiny", frames=60, beam=4, fusion="dr", method="alsd", seed=0):
        key = (preset, frames, beam, fusion, method, seed)
        if key not in cache:
            system = models.build_system(preset, seed=seed)
            feats = random_features(system.config, frames, seed=seed)
            graph, result = workloads.trace(system, feats, beam=beam, lm_fusion=fusion, method=method)
            cache[key] = (system, feats, graph, result)
        return cache[key]

    return get
