"""Fixtures: PTQ exports of the ``tiny`` system (int4, int8, int4-naive, fp16), made once per session."""

from __future__ import annotations

import pytest
import torch

import models
from models.features import random_features

torch.set_num_threads(1)


@pytest.fixture(scope="session")
def exports(tmp_path_factory):
    """policy name -> export path of ``tiny`` (seed 0) quantized with PTQ."""
    from models.quant import export, quantize

    system = models.build_system("tiny", seed=0)
    calib = [random_features(system.config, 60, seed=i) for i in range(2)]
    out = {}
    root = tmp_path_factory.mktemp("exports")
    for policy in ("int4", "int8", "int4-naive", "fp16"):
        qsys = quantize(system, policy, mode="ptq", calib_features=calib)
        out[policy] = root / f"tiny_{policy}.npz"
        export(qsys, out[policy])
    return out


@pytest.fixture(scope="session")
def utterance():
    """Random features of a 1.2 s utterance of ``tiny`` (120 frames -> 30 encoder frames)."""
    return random_features(models.load_config("tiny"), 120, seed=7).numpy()
