"""Search: beam 1 == greedy, DR fusion by hand, merging, statistics invariants."""

from __future__ import annotations

import json
import math

import pytest
import torch

import models
from models.search import (Hyp, SearchConfig, SearchStats, StepScorer, alsd_search, fuse_scores,
                           merge_hypotheses)


def _feats(system, seed, frames=40):
    return models.random_features(system.config, frames, seed) * 3


@pytest.mark.parametrize("fusion", ["none", "dr"])
def test_alsd_beam1_equals_greedy(crafted, fusion):
    # ALSD has no per-frame symbol limit, greedy has one: the comparison is well defined only
    # when greedy never reaches its limit, which the crafted model guarantees (asserted).
    emitted = 0
    for seed in range(4):
        feats = _feats(crafted, seed)
        greedy = models.decode(crafted, feats, method="greedy", lm_fusion=fusion, max_symbols_per_frame=10)
        assert greedy.stats.to_frame()["substep"].max() < 10
        alsd = models.decode(crafted, feats, method="alsd", beam=1, lm_fusion=fusion,
                             alsd_max_target_len=200)
        assert alsd.hyps[0][0] == greedy.hyps[0][0]
        assert alsd.hyps[0][1] == pytest.approx(greedy.hyps[0][1], abs=1e-4)
        emitted += len(greedy.labels)
    assert emitted > 0


@pytest.mark.parametrize("fusion", ["none", "dr"])
@pytest.mark.parametrize("limit", [1, 3])
def test_tsd_beam1_equals_greedy(tiny, fusion, limit):
    # TSD with beam 1 and greedy share the per-frame limit (after `limit` labels blank is
    # forced), so they must agree even on a random model that always hits the limit.
    for seed in range(2):
        feats = models.random_features(tiny.config, 24, seed)
        kw = dict(lm_fusion=fusion, max_symbols_per_frame=limit)
        greedy = models.decode(tiny, feats, method="greedy", **kw)
        tsd = models.decode(tiny, feats, method="tsd", beam=1, **kw)
        assert tsd.hyps[0][0] == greedy.hyps[0][0]
        assert tsd.hyps[0][1] == pytest.approx(greedy.hyps[0][1], abs=1e-4)
        assert len(greedy.labels) > 0


@pytest.mark.parametrize("method", ["alsd", "tsd", "greedy"])
def test_dr_with_zero_weights_equals_no_fusion(tiny, method):
    feats = models.random_features(tiny.config, 30, 3)
    none = models.decode(tiny, feats, beam=4, method=method, lm_fusion="none")
    dr = models.decode(tiny, feats, beam=4, method=method, lm_fusion="dr", lambda_ext=0.0,
                       lambda_src=0.0, length_reward=0.0)
    assert dr.hyps == none.hyps  # same labels, bit-identical scores
    assert dr.stats.totals()["lm_calls"] > 0 and none.stats.totals()["lm_calls"] == 0


def test_fuse_scores_by_hand():
    # 3 labels: blank, a, b
    p_rnnt, p_ext, p_src = [0.5, 0.3, 0.2], [0.6, 0.1, 0.3], [0.2, 0.5, 0.3]
    le, ls, beta = 0.5, 0.3, 0.7
    got = fuse_scores(torch.tensor([p_rnnt]).log(), torch.tensor([p_ext]).log(),
                      torch.tensor([p_src]).log(), le, ls, beta, torch.tensor([0.0, 1.0, 1.0]))
    expected = [
        math.log(0.5),                                                   # blank: RNN-T only
        math.log(0.3) + 0.5 * math.log(0.1) - 0.3 * math.log(0.5) + 0.7,  # -1.2040 - 1.1513 + 0.2079 + 0.7
        math.log(0.2) + 0.5 * math.log(0.3) - 0.3 * math.log(0.3) + 0.7,
    ]
    assert expected[1] == pytest.approx(-1.447321, abs=1e-6)
    torch.testing.assert_close(got[0], torch.tensor(expected), rtol=0, atol=1e-6)
    # without LMs the RNN-T scores come back unchanged (no length reward either)
    plain = torch.tensor([p_rnnt]).log()
    torch.testing.assert_close(fuse_scores(plain, None, None, le, ls, beta, None), plain, rtol=0, atol=0)


def test_greedy_dr_score_recomputed_from_modules(tiny):
    # One encoder frame (4 feature frames: stack 2 / stride 2, then time reduction x2), greedy with
    # one symbol per frame: best = argmax of fused scores at <sos>; if a label, blank is forced next.
    feats = models.random_features(tiny.config, 4, 11)
    le, ls, beta = 0.5, 0.3, 0.5
    res = models.decode(tiny, feats, method="greedy", lm_fusion="dr", lambda_ext=le,
                        lambda_src=ls, length_reward=beta, max_symbols_per_frame=1)
    r, lx, lsrc = tiny.rnnt, tiny.lm_ext, tiny.lm_src
    with torch.no_grad():
        enc = r.encoder(feats[None])[0]
        assert enc.shape[0] == 1
        sos = torch.zeros(1, dtype=torch.long)
        p0, st = r.prediction(sos)
        logp = r.joint(enc, p0)[0].tolist()
        ext = lx(sos)[0][0].tolist()
        src = lsrc(sos)[0][0].tolist()
        fused = [logp[0]] + [logp[k] + le * ext[k] - ls * src[k] + beta for k in range(1, len(logp))]
        best = max(range(len(fused)), key=fused.__getitem__)
        if best == 0:
            expected, labels = fused[0], ()
        else:
            p1, _ = r.prediction(torch.tensor([best]), st)
            expected, labels = fused[best] + r.joint(enc, p1)[0, 0].item(), (best,)
    assert res.hyps[0][0] == labels
    assert res.hyps[0][1] == pytest.approx(expected, abs=1e-4)


def test_merge_uses_logaddexp():
    a = Hyp((1, 2), torch.tensor(math.log(0.2)), 3, math.log(0.2))
    b = Hyp((1, 2), torch.tensor(math.log(0.3)), 3, math.log(0.3))
    c = Hyp((1,), torch.tensor(math.log(0.4)), 3, math.log(0.4))
    d = Hyp((1, 2), torch.tensor(math.log(0.1)), 4, math.log(0.1))  # other frame: not merged
    merged, n = merge_hypotheses([a, c, b, d])
    assert n == 1
    assert [(h.prefix, h.frame) for h in merged] == [((1, 2), 3), ((1,), 3), ((1, 2), 4)]
    assert merged[0].score.item() == pytest.approx(math.log(0.5), abs=1e-6)  # not max, not sum
    assert merged[0].value == pytest.approx(math.log(0.5), abs=1e-6)


class CallCounter:
    def __init__(self, modules):
        self.rows = {name: [] for name in modules}
        self.handles = [m.register_forward_hook(self._hook(name)) for name, m in modules.items()]

    def _hook(self, name):
        def hook(module, args, output):
            out = output[0] if isinstance(output, tuple) else output
            self.rows[name].append(out.shape[0])
        return hook

    def remove(self):
        for h in self.handles:
            h.remove()


@pytest.mark.parametrize("method", ["alsd", "tsd", "greedy"])
@pytest.mark.parametrize("fusion", ["none", "dr"])
def test_stats_add_up(tiny, method, fusion):
    counter = CallCounter({"joint": tiny.rnnt.joint, "pred": tiny.rnnt.prediction,
                           "pred_proj": tiny.rnnt.joint.pred_proj, "enc_proj": tiny.rnnt.joint.enc_proj,
                           "lm_ext": tiny.lm_ext, "lm_src": tiny.lm_src})
    try:
        res = models.decode(tiny, models.random_features(tiny.config, 40, 5), beam=3, method=method,
                            lm_fusion=fusion)
    finally:
        counter.remove()
    st, frame, rows = res.stats, res.stats.to_frame(), counter.rows
    assert st.frames == 10 and st.labels == len(res.labels)
    # one joint call per step, its batch = hyps alive and scored
    assert rows["joint"] == list(frame["joint_evals"]) == list(frame["hyps"])
    assert rows["enc_proj"] == [st.frames]  # once per utterance, all frames
    assert rows["pred"] == rows["pred_proj"] == [n for n in frame["pred_evals"] if n]
    assert len(rows["pred"]) == frame["pred_calls"].sum()
    if fusion == "dr":
        assert rows["lm_ext"] == rows["lm_src"] == rows["pred"]
        assert list(frame["lm_ext_evals"]) == list(frame["pred_evals"]) == list(frame["lm_src_evals"])
        assert list(frame["lm_calls"]) == list(frame["pred_calls"])
    else:
        assert rows["lm_ext"] == rows["lm_src"] == [] and frame["lm_calls"].sum() == 0
    assert res.hyps == sorted(res.hyps, key=lambda h: -h[1])
    assert len(res.hyps) <= (1 if method == "greedy" else 3)
    assert list(frame["step"]) == list(range(len(frame))) or method == "alsd"


def test_pred_evals_equal_cache_misses(tiny):
    cfg = SearchConfig(method="alsd", beam=4, lm_fusion="dr")
    feats = models.random_features(tiny.config, 40, 6)
    stats = SearchStats("alsd", 4, "dr")
    with torch.inference_mode():
        enc = tiny.rnnt.encoder(feats[None])[0]
        scorer = StepScorer(tiny, enc, cfg)
        alsd_search(scorer, enc.shape[0], cfg, stats)
    distinct = len(scorer.pred.rows) - 1  # minus the zero state before <sos>
    assert stats.totals()["pred_evals"] == distinct == stats.totals()["lm_ext_evals"]
    assert stats.totals()["joint_evals"] == stats.totals()["hyps"]


def test_decode_tiny_dr_and_stats_roundtrip(tiny):
    res = models.decode(tiny, models.random_features(tiny.config, 60, 1), beam=4, lm_fusion="dr")
    assert res.search.lambda_ext == tiny.config.fusion.lambda_ext  # defaults from the config
    assert 1 <= len(res.hyps) <= 4
    scores = [s for _, s in res.hyps]
    assert scores == sorted(scores, reverse=True) and all(math.isfinite(s) for s in scores)
    assert isinstance(res.text, str)
    data = json.loads(json.dumps(res.stats.to_dict()))
    back = SearchStats.from_dict(data)
    assert back == res.stats
    summary = res.stats.summary()
    assert summary["search_steps"] == len(res.stats.steps) and summary["lm_fusion"] == "dr"
    assert list(res.stats.to_frame().columns)[:4] == ["step", "frame", "substep", "hyps"]


def test_search_steps_are_scoped(tiny):
    from torch.utils._python_dispatch import TorchDispatchMode

    from models.hooks import current_step

    seen = []

    class Rec(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            seen.append((func.__name__.split(".")[0], current_step()))
            return func(*args, **(kwargs or {}))

    with Rec():
        res = models.decode(tiny, models.random_features(tiny.config, 20, 2), beam=2, method="alsd")
    topk_steps = [s for n, s in seen if n == "topk"]
    assert topk_steps == list(range(len(res.stats.steps)))
    assert "logaddexp" in {n for n, _ in seen} or res.stats.totals()["merges"] == 0


def test_search_config_validation(tiny):
    with pytest.raises(ValueError, match="method"):
        SearchConfig(method="beam")
    with pytest.raises(ValueError, match="lm_fusion"):
        models.decode(tiny, models.random_features(tiny.config, 8), lm_fusion="shallow")
    with pytest.raises(ValueError, match="features must be"):
        models.decode(tiny, torch.zeros(8, 3))
