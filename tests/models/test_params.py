"""Parameter names, shapes and counts of every preset against closed-form counts."""

from __future__ import annotations

import pytest

import models
from models.params import parameter_table


def lstm_count(inp: int, hidden: int) -> int:
    return 4 * hidden * (inp + hidden) + 4 * hidden  # W_ih, W_hh, one bias


def closed_form_counts(cfg) -> dict[str, int]:
    """Independent of models.params: written out from the architecture."""
    enc, V = cfg.encoder, cfg.num_labels
    dirs = 2 if enc.bidirectional else 1
    enc_total, width = 0, cfg.features.input_dim * cfg.features.stack
    for layer in range(enc.layers):
        enc_total += dirs * lstm_count(width, enc.hidden)
        width = dirs * enc.hidden
        if enc.time_reduction > 1 and layer + 1 == enc.time_reduction_after and enc.time_reduction_method == "concat":
            width *= enc.time_reduction
    p = cfg.prediction
    pred_total = V * p.embed_dim + lstm_count(p.embed_dim, p.hidden) + (p.layers - 1) * lstm_count(p.hidden, p.hidden)
    J = cfg.joint.dim
    joint_total = (dirs * enc.hidden * J + J) + p.hidden * J + (J * V + V)

    def lm(c):
        return V * c.embed_dim + lstm_count(c.embed_dim, c.hidden) + (c.layers - 1) * lstm_count(c.hidden, c.hidden) + c.hidden * V + V

    return {"rnnt": enc_total + pred_total + joint_total, "lm_ext": lm(cfg.lm_ext), "lm_src": lm(cfg.lm_src)}


@pytest.mark.parametrize("preset", ["tiny", "small", "swb300", "swb300-stream"])
def test_parameter_counts_match_closed_form(preset):
    system = models.build_system(preset)
    expected = closed_form_counts(system.config)
    for prefix, model in system.submodels().items():
        assert sum(p.numel() for p in model.parameters()) == expected[prefix], prefix


@pytest.mark.parametrize("preset", ["tiny", "small", "swb300-stream"])
def test_named_parameters_equal_parameter_table(preset):
    system = models.build_system(preset)
    got = {name: tuple(p.shape) for name, p in system.named_parameters()}
    assert got == {p.name: p.shape for p in parameter_table(system.config)}
    assert list(got) == [p.name for p in parameter_table(system.config)]  # same order too


def test_swb300_rnnt_size_is_paper_scale():
    cfg = models.load_config("swb300")
    n = closed_form_counts(cfg)["rnnt"]
    assert 50e6 < n < 65e6  # the paper's RNN-T has 57M parameters
    # hand check of the first encoder layer: 4*640*(240+640) + 4*640 per direction
    assert lstm_count(240, 640) == 2_255_360


def test_tiny_numbers_by_hand():
    # tiny: enc in 32, hidden 16 bi, concat x2 after layer 1 -> layer 2 input 64
    enc = 2 * (4 * 16 * (32 + 16) + 64) + 2 * (4 * 16 * (64 + 16) + 64)
    pred = 29 * 8 + 4 * 16 * (8 + 16) + 64
    joint = 32 * 16 + 16 + 16 * 16 + 16 * 29 + 29
    assert closed_form_counts(models.load_config("tiny"))["rnnt"] == enc + pred + joint == 19749
