"""Frame counts through the encoder (models.config): hand values, and the torch encoder and the
analytic graph builder agree with the one definition for every time-reduction method."""

from __future__ import annotations

import dataclasses

import pytest

from models.config import encoder_frames, load_config, reduced_frames, stacked_frames


def test_hand_values():
    # stack 2 / stride 2 over 9 frames: [0,1] [2,3] [4,5] [6,7]; frame 8 fills no stack.
    assert stacked_frames(9, 2, 2) == 4 and stacked_frames(10, 2, 2) == 5
    assert stacked_frames(10, 3, 1) == 8 and stacked_frames(3, 3, 5) == 1
    # 5 frames by 2: stride keeps 0, 2, 4; concat / mean drop the partial last group.
    assert (reduced_frames(5, 2, "stride"), reduced_frames(5, 2, "concat"), reduced_frames(5, 2, "mean")) == (3, 2, 2)
    # swb300: 1000 frames -> 500 stacked -> 250 after time reduction x2.
    assert encoder_frames(load_config("swb300"), 1000) == 250
    with pytest.raises(ValueError, match="at least 2 feature frames"):
        stacked_frames(1, 2, 2)
    with pytest.raises(ValueError, match="unknown time reduction"):
        reduced_frames(4, 2, "max")
    with pytest.raises(ValueError, match="no encoder output frame for model 'swb300'"):
        encoder_frames(load_config("swb300"), 1)


def _variants():
    cfg = load_config("tiny")
    for method in ("stride", "concat", "mean"):
        yield dataclasses.replace(cfg, encoder=dataclasses.replace(cfg.encoder, time_reduction_method=method))


@pytest.mark.parametrize("frames", [4, 7, 27, 30])
def test_torch_encoder_and_graph_builder_agree(frames):
    import torch

    import workloads
    from models.rnnt import Encoder
    from workloads.stats import parametric_stats

    torch.set_num_threads(1)
    for cfg in _variants():
        assert cfg.encoder.time_reduction > 1
        T = encoder_frames(cfg, frames)
        enc = Encoder(cfg).eval()
        with torch.inference_mode():
            out = enc(torch.zeros(1, frames, cfg.features.input_dim), fused=False)
        assert out.shape[1] == T, cfg.encoder.time_reduction_method
        stats = parametric_stats(cfg, frames * cfg.features.frame_shift_s, 2, "none")
        graph = workloads.rnnt_graph(cfg, stats, frames)
        enc_proj = [op for op in graph.ops if op.module == "rnnt.joint.enc_proj"]
        assert [op.m for op in enc_proj] == [T]
