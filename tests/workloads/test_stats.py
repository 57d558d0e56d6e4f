"""Parametric search statistics: totals follow the stated model."""

import pytest

import workloads
from models.config import load_config
from workloads.stats import LABELS_PER_S, encoder_frames, input_frames


@pytest.fixture(scope="module")
def swb():
    return load_config("swb300")


def test_alsd_model_hand_counts(swb):
    # swb300, 10 s: 1000 feature frames -> stack 2 / stride 2: 500 -> time reduction x2: T = 250;
    # U = 14 labels/s * 10 s = 140; T + U = 390 steps, 1 hyp at the first, 16 at the 389 others.
    s = workloads.parametric_stats(swb, 10.0, 16, "dr")
    assert (s.frames, s.labels, len(s.steps)) == (250, 140, 390)
    tot = s.totals()
    assert tot["hyps"] == tot["joint_evals"] == 6225               # 1 + 16 * 389
    # New prefixes: 140/390 of the 16 * 389 = 6224 hyps after the first step is 2234.26 -> 2234,
    # plus the <sos> row of the first step.
    assert tot["pred_evals"] == tot["lm_ext_evals"] == tot["lm_src_evals"] == 2235
    assert tot["finals"] == 16 and tot["pred_calls"] == tot["lm_calls"] == 390


def test_fractional_new_prefixes_are_spread_by_hand(swb):
    # 0.2 s: 20 frames -> 10 -> T = 5; U = round(2.8) = 3; 8 steps. Beam 2 at 1/3 expansion: 2/3
    # of a new prefix per step; running sums 0.67, 1.33, 2, 2.67, 3.33, 4, 4.67 round to
    # 1, 1, 2, 3, 3, 4, 5: one new prefix at every step but the 2nd and 5th after <sos>.
    s = workloads.parametric_stats(swb, 0.2, 2, "dr", expansion_fraction=1 / 3)
    assert [st.pred_evals for st in s.steps] == [1, 1, 0, 1, 1, 0, 1, 1]
    assert [st.hyps for st in s.steps] == [1] + [2] * 7


def test_no_fusion_no_lm_rows(swb):
    # Beam 8: 140/390 of 8 * 389 = 3112 hyps is 1117.13 -> 1117, plus <sos>.
    tot = workloads.parametric_stats(swb, 10.0, 8, "none").totals()
    assert tot["lm_ext_evals"] == tot["lm_src_evals"] == tot["lm_calls"] == 0
    assert (tot["hyps"], tot["pred_evals"]) == (3113, 1118)


@pytest.mark.parametrize("method", ["tsd", "greedy"])
def test_other_methods(swb, method):
    s = workloads.parametric_stats(swb, 5.0, 4, "dr", method=method)
    assert {st.frame for st in s.steps} == set(range(s.frames))
    if method == "greedy":
        # 5 s: T = 125 frames, U = 70 labels: one step per frame and one more per label; a
        # prediction row for <sos> and after each label.
        assert (s.frames, s.labels, len(s.steps)) == (125, 70, 195)
        assert s.totals()["pred_evals"] == 71
    else:
        # At most max_symbols_per_frame (3) label sub-steps after each frame's first.
        assert max(st.substep for st in s.steps) == 3


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
