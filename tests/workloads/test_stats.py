"""Parametric search statistics: totals follow the stated model."""

import pytest

import workloads
from models.config import load_config
from workloads.stats import LABELS_PER_S, encoder_frames, input_frames


@pytest.fixture(scope="module")
def swb():
    return load_config("swb300")


def test_alsd_model(swb):
    s = workloads.parametric_stats(swb, 10.0, 16, "dr")
    T, U = 250, round(LABELS_PER_S * 10)
    assert (s.frames, s.labels, len(s.steps)) == (T, U, T + U)
    tot = s.totals()
    assert tot["hyps"] == 1 + 16 * (T + U - 1)
    # new prefixes = U / (T + U) of the hyps scored after the first step, +1 for <sos>
    assert tot["pred_evals"] == 1 + round(U / (T + U) * 16 * (T + U - 1))
    assert tot["lm_ext_evals"] == tot["lm_src_evals"] == tot["pred_evals"]
    assert tot["finals"] == 16


def test_no_fusion_no_lm_rows(swb):
    tot = workloads.parametric_stats(swb, 10.0, 8, "none").totals()
    assert tot["lm_ext_evals"] == tot["lm_calls"] == 0 and tot["pred_evals"] > 0


@pytest.mark.parametrize("method", ["tsd", "greedy"])
def test_other_methods(swb, method):
    s = workloads.parametric_stats(swb, 5.0, 4, "dr", method=method)
    assert {st.frame for st in s.steps} == set(range(s.frames))
    if method == "greedy":
        assert s.totals()["pred_evals"] == s.labels + 1


def test_frames_and_errors(swb):
    assert input_frames(swb, 10.0) == 1000 and encoder_frames(swb, 1000) == 250
    with pytest.raises(ValueError):
        workloads.parametric_stats(swb, 10.0, 4, "shallow")
    with pytest.raises(ValueError):
        workloads.parametric_stats(swb, 0.0, 4, "dr")


def test_too_little_audio_is_a_clear_error():
    import pytest

    from models.config import load_config
    from workloads import paper_graph

    with pytest.raises(ValueError, match="no encoder output frame for model 'tiny'"):
        paper_graph(load_config("tiny"), 0.001, 4, "dr")
