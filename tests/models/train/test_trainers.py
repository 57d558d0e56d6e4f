"""Training loops: an interrupted and resumed run equals an uninterrupted one; losses go down."""

from __future__ import annotations

import torch

import models
from models.train.lm_trainer import LMTrainConfig, lm_perplexity, train_lm
from models.train.loop import Schedule
from models.train.rnnt_trainer import RNNTTrainConfig, finalize, train_rnnt

torch.set_num_threads(1)


def _data(n=12, seed=0):
    g = torch.Generator().manual_seed(seed)
    words = ["ab", "ba", "abc", "c"]
    feats = [torch.randn(40 + 4 * (i % 5), 16, generator=g).half() for i in range(n)]
    texts = [" ".join(words[(i + k) % 4] for k in range(1 + i % 3)) for i in range(n)]
    return {"feats": feats, "texts": texts}


def test_rnnt_resume_is_exact(tmp_path):
    tc = RNNTTrainConfig(max_steps=4, time_budget_s=1e6, max_frames=200, max_batch=4, checkpoint_every=100,
                         eval_every=100, dev_utts=4, warmup_steps=1)
    train, dev = _data(), _data(4, seed=1)
    a = models.build_system("tiny", seed=0).rnnt
    sa = train_rnnt(a, a.cfg, train, dev, tmp_path / "a.pt", tc, progress=False)
    b = models.build_system("tiny", seed=0).rnnt
    mid = train_rnnt(b, b.cfg, train, dev, tmp_path / "b.pt", tc, progress=False, steps_this_run=2)
    assert mid["step"] == 2 and not mid["done"]
    b2 = models.build_system("tiny", seed=5).rnnt  # a fresh process: weights come from the state file
    sb = train_rnnt(b2, b2.cfg, train, dev, tmp_path / "b.pt", tc, progress=False)
    assert sb["done"] and sb["step"] == 4
    for (k, x), (_, y) in zip(sa["model"].items(), sb["model"].items()):
        assert torch.equal(x, y), k
    assert [h[1] for h in sa["history"]] == [h[1] for h in sb["history"]]
    finalize(b2, sb)  # folds the normalization: the encoder now takes raw features
    assert not b2.training


def test_lm_learns_and_resumes(tmp_path):
    seqs = [[1, 2, 3, 28, 1, 2, 3]] * 16 + [[4, 5, 28, 4, 5]] * 16
    tc = LMTrainConfig(max_steps=30, time_budget_s=1e6, batch=8, lr=1e-2, warmup_steps=1, eval_every=100)
    lm = models.build_system("tiny", seed=0).lm_src
    before = lm_perplexity(lm, seqs)
    st = train_lm(lm, seqs, seqs, tmp_path / "lm.pt", tc, progress=False, steps_this_run=10)
    lm2 = models.build_system("tiny", seed=3).lm_src
    st = train_lm(lm2, seqs, seqs, tmp_path / "lm.pt", tc, progress=False)
    assert st["done"] and st["step"] == 30
    assert lm_perplexity(lm2, seqs) < 0.5 * before


def test_schedule():
    s = Schedule(1.0, max_steps=100, warmup_steps=10, decay_frac=0.4, final_frac=0.1)
    assert s.lr(0) == 0.1 and s.lr(9) == 1.0 and s.lr(60) == 1.0
    assert abs(s.lr(100) - 0.1) < 1e-12 and abs(s.lr(80) - 0.55) < 1e-12
    assert abs(s.lr(10, time_frac=1.0) - 0.1) < 1e-12  # a spent time budget decays the rate too


def test_rnnt_threads_follow_threads_now(tmp_path):
    tc = RNNTTrainConfig(max_steps=3, time_budget_s=1e6, max_frames=200, max_batch=4, checkpoint_every=100,
                         eval_every=100, dev_utts=4, warmup_steps=1)
    calls = []

    def threads_now() -> int:  # "the other job" ends before the third step
        calls.append(torch.get_num_threads())
        return 1 if len(calls) < 3 else 2

    rnnt = models.build_system("tiny", seed=0).rnnt
    try:
        train_rnnt(rnnt, rnnt.cfg, _data(), _data(4, seed=1), tmp_path / "t.pt", tc, progress=False,
                   threads_now=threads_now)
        assert calls == [1, 1, 1] and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(1)
