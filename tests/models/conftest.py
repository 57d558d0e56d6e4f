"""Shared fixtures for tests/models: single-threaded torch, a tiny system."""

from __future__ import annotations

import dataclasses

import pytest
import torch

import models

torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny():
    return models.build_system("tiny", seed=0)


def crafted_system(boost: float = 2.0, enc_scale: float = 20.0, acoustic_scale: float = 4.0):
    """A fixed-weight 8-label variant of ``tiny`` whose greedy search emits few labels.

    With random weights a transducer tends to repeat one label at a frame until any
    max-symbols limit is hit, which makes beam-1 vs greedy comparisons depend on that limit.
    Here the prediction network outputs a one-hot of its last label (input gates open, forget
    gates closed, no recurrence), and the joint boosts blank after any label and penalises labels,
    so at most one label per frame is emitted and no symbol limit binds.
    """
    base = models.load_config("tiny")
    cfg = dataclasses.replace(base, name="tiny8", num_labels=8, alphabet="abcdefg")
    system = models.build_system(cfg, seed=0)
    V, H = 8, cfg.prediction.hidden
    with torch.no_grad():
        pred = system.rnnt.prediction
        pred.embedding.weight.zero_()
        pred.embedding.weight[:, :V] = 3 * torch.eye(V)
        layer = pred.layers[0]
        layer.weight_hh.zero_()
        layer.weight_ih.zero_()
        layer.bias.zero_()
        layer.bias[:H] = 10.0          # input gate open
        layer.bias[H:2 * H] = -10.0    # forget gate closed
        layer.bias[3 * H:] = 10.0      # output gate open
        layer.weight_ih[2 * H:2 * H + V, :V] = 3 * torch.eye(V)
        joint = system.rnnt.joint
        joint.pred_proj.weight.zero_()
        joint.pred_proj.weight[:V, :V] = 3 * torch.eye(V)
        joint.enc_proj.weight *= enc_scale
        joint.enc_proj.weight[:V] = 0.0
        joint.enc_proj.bias[:V] = 0.0
        joint.out.weight[:, :V] = 0.0
        joint.out.weight[0, 1:V] = boost
        joint.out.weight[0, 0] = -boost
        joint.out.weight[:, V:] *= acoustic_scale
        for k in range(1, V):
            joint.out.weight[k, 1:V] = -boost
    return system


@pytest.fixture(scope="session")
def crafted():
    return crafted_system()
