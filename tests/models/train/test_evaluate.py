"""Edit distance, WER/CER, normalization folding and batching."""

from __future__ import annotations

import pytest
import torch

import models
from models.train.batching import FeatureNorm, collate, fold_norm_into_encoder, lm_batch, make_acoustic_batches
from models.train.evaluate import ErrorCounts, edit_distance, wer

torch.set_num_threads(1)


@pytest.mark.parametrize("a,b,d", [("", "", 0), ("abc", "", 3), ("", "ab", 2), ("kitten", "sitting", 3),
                                   (["a", "b", "c"], ["a", "c"], 1), ("flaw", "lawn", 2)])
def test_edit_distance(a, b, d):
    assert edit_distance(a, b) == d


def test_wer_and_cer():
    c = ErrorCounts()
    c.add("the cat sat", "the cat sat")
    c.add("a b c d", "a x c")  # 1 substitution + 1 deletion over 4 words
    assert c.wer == pytest.approx(100 * 2 / 7)
    assert c.cer == pytest.approx(100 * (0 + edit_distance("a b c d", "a x c")) / (11 + 7))
    assert wer(["hello world"], ["hello"]) == pytest.approx(50.0)


def test_folded_normalization_equals_normalized_input():
    system = models.build_system("tiny", seed=1)
    x = torch.randn(2, 40, 16) * 3 + 5
    norm = FeatureNorm(torch.randn(16), torch.rand(16) + 0.5)
    want = system.rnnt.encoder(norm.apply(x))
    fold_norm_into_encoder(system.rnnt, norm)
    got = system.rnnt.encoder(x)
    assert torch.allclose(got, want, atol=1e-5)


def test_bucketing_and_collate():
    cfg = models.load_config("tiny")
    enc = models.build_system(cfg).rnnt.encoder
    feats = [torch.randn(t, 16) for t in (30, 50, 31, 80, 49)]
    texts = ["ab", "abc", "a", "abcd", "b"]
    batches = make_acoustic_batches(cfg, feats, texts, max_frames=110, max_batch=8)
    assert sorted(i for b in batches for i in b) == list(range(5))
    for b in batches:
        assert len(b) * max(feats[i].shape[0] for i in b) <= 110 or len(b) == 1
    b = collate(cfg, enc, [feats[0], feats[1]], [[1, 2], [1, 2, 3]], None)
    assert b.feats.shape == (2, 50, 16) and torch.equal(b.feats[0, 30:], feats[0][-1:].expand(20, -1))
    assert b.T_out.tolist() == [enc.output_frames(30), enc.output_frames(50)]
    inputs, targets, mask = lm_batch([[3, 4], [5]])
    assert inputs.tolist() == [[0, 3, 4], [0, 5, 0]] and targets.tolist() == [[3, 4, 0], [5, 0, 0]]
    assert mask.tolist() == [[True, True, True], [True, True, False]]


def test_paired_bootstrap_rel():
    import numpy as np

    from models.train.evaluate import paired_bootstrap_rel

    words = [10] * 50
    base = [2] * 50
    est, lo, hi = paired_bootstrap_rel(base, [3] * 50, words)  # every utterance one error worse
    assert est == pytest.approx(50.0) and lo == pytest.approx(50.0) and hi == pytest.approx(50.0)
    rng = np.random.default_rng(1)
    noisy = rng.integers(0, 5, 200)
    est, lo, hi = paired_bootstrap_rel(noisy, noisy[::-1], [10] * 200)  # same errors, other pairing
    assert est == pytest.approx(0.0) and lo < 0 < hi
    same = paired_bootstrap_rel(noisy, noisy, [10] * 200)
    assert same == (0.0, 0.0, 0.0)  # identical systems: no spread at all (the pairing is kept)
    with pytest.raises(ValueError, match="equally long"):
        paired_bootstrap_rel([1, 2], [1], [3, 3])
    with pytest.raises(ValueError, match="no word errors"):
        paired_bootstrap_rel([0, 0], [1, 0], [3, 3])
