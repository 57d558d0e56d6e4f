"""``models.train.qat``: real-data items, the QAT losses against an independent RNN-T reference,
and the pipeline's use of the same functions."""

from __future__ import annotations

import math

import pytest
import torch

import models
from models.data.corpus import CorpusSpec, build_corpus, read_manifest
from models.data.text import Sentence
from models.quant import quantize
from models.train import qat
from models.yamlio import UserError

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    fortunes = [Sentence(t, t, "f") for t in ("we go home now", "rain falls down", "it is late", "hold on",
                                               "fast cars", "a cat sat", "see the sea", "big red box")]
    bible = [Sentence(t, t, b) for b, t in (("Mark", "he spoke"), ("John", "in the beginning"),
                                             ("Genesis", "let there be light"))]
    spec = CorpusSpec(seed=1, train_hours=50 / 57600, fortunes_dev=1, fortunes_test=1, bible_dev=1,
                      bible_test=1, engine="tones")
    return build_corpus(tmp_path_factory.mktemp("c"), spec, jobs=1, fortunes=fortunes, bible=bible,
                        progress=False)


def _rnnt_nll_reference(logp: torch.Tensor, labels: list[int]) -> float:
    """-log p(y|x) of one utterance by the textbook forward recursion (Graves 2012, eq. 9), in
    plain Python floats over logp (T, U+1, V)."""
    T, U = logp.shape[0], len(labels)
    lp = logp.double().tolist()
    alpha = [[-math.inf] * (U + 1) for _ in range(T)]
    for t in range(T):
        for u in range(U + 1):
            if t == 0 and u == 0:
                alpha[t][u] = 0.0
                continue
            terms = []
            if t > 0:
                terms.append(alpha[t - 1][u] + lp[t - 1][u][0])
            if u > 0:
                terms.append(alpha[t][u - 1] + lp[t][u - 1][labels[u - 1]])
            m = max(terms)
            alpha[t][u] = m + math.log(sum(math.exp(x - m) for x in terms))
    return -(alpha[T - 1][U] + lp[T - 1][U][0])


def test_corpus_items_and_rnnt_loss_match_a_reference(corpus):
    system = models.build_system("tiny", seed=0)
    cfg = system.config
    data = qat.corpus_data(corpus, cfg)
    rows = read_manifest(corpus, "train")
    assert data.texts == [r["text"] for r in rows] and len(data.feats) == len(rows)
    assert data.lm_ext == [qat.labels_of(cfg, t) for t in (corpus / "text" / "lm_ext.txt").read_text().splitlines()]
    calib = qat.calibration_items(cfg, system.rnnt.encoder, data.feats, data.texts, data.lm_ext, data.lm_src)
    q = quantize(system, "int4", "qat", calib_features=calib, calib_fn=qat.calibration_pass)
    item = next(qat.qat_items(cfg, q.rnnt.encoder, data, max_frames=2000))
    b = item["acoustic"]
    assert sorted(map(tuple, (b.labels[i, : b.U_len[i]].tolist() for i in range(b.size)))) == \
        sorted(tuple(qat.labels_of(cfg, t)) for t in data.texts)
    with torch.no_grad():
        loss = float(qat.rnnt_qat_loss(q, item))
        logp = q.rnnt(b.feats, b.labels, fused=False)
    ref = sum(_rnnt_nll_reference(logp[i, : b.T_out[i], : b.U_len[i] + 1], b.labels[i, : b.U_len[i]].tolist())
              for i in range(b.size)) / float(b.U_len.sum())
    assert loss == pytest.approx(ref, rel=1e-5)


def test_run_qat_lowers_both_losses_on_a_fixed_batch(corpus):
    system = models.build_system("tiny", seed=0)
    cfg = system.config
    data = qat.corpus_data(corpus, cfg)
    calib = qat.calibration_items(cfg, system.rnnt.encoder, data.feats, data.texts, data.lm_ext, data.lm_src)
    q = quantize(system, "int4", "qat", calib_features=calib, calib_fn=qat.calibration_pass)
    item = next(qat.qat_items(cfg, q.rnnt.encoder, data, max_frames=2000))
    alpha0 = q.rnnt.encoder.layers[0]["fwd"].q_input.alpha.detach().clone()
    hist = qat.run_qat(q, iter([item] * 6), steps=6, lr=1e-2)
    assert len(hist) == 6
    assert hist[-1]["rnnt"] < 0.9 * hist[0]["rnnt"] and hist[-1]["lm"] < hist[0]["lm"]
    assert hist[0]["loss"] == pytest.approx(hist[0]["rnnt"] + hist[0]["lm"])
    assert not torch.equal(q.rnnt.encoder.layers[0]["fwd"].q_input.alpha.detach(), alpha0)  # clips learn


def test_streams_follow_the_pipeline_order():
    """lm_stream: seeds seed + 1 / seed + 2 of batching.lm_batches; acoustic_stream: epoch shuffles."""
    from models.train.batching import epoch_batches, lm_batches

    ext, src = [[1] * n for n in range(1, 9)], [[2] * n for n in range(1, 6)]
    s, e, r = qat.lm_stream(ext, src, 2, seed=3), lm_batches(ext, 2, 4), lm_batches(src, 2, 5)
    for _ in range(7):
        assert next(s) == {"lm_ext": [ext[j] for j in next(e)], "lm_src": [src[j] for j in next(r)]}
    cfg = models.load_config("tiny")
    enc = models.build_system(cfg).rnnt.encoder
    feats = [torch.full((10 + k, 16), float(k)) for k in range(5)]
    texts = ["a" * (k + 1) for k in range(5)]
    batches = [[0, 1], [2, 3], [4]]
    stream = qat.acoustic_stream(cfg, enc, feats, texts, batches, seed=9, start=2)
    order = epoch_batches(batches, 9, 0)[2:] + epoch_batches(batches, 9, 1)
    for idx in order:
        b = next(stream)
        assert b.U_len.tolist() == [k + 1 for k in idx]
        assert b.feats[:, 0, 0].tolist() == [float(k) for k in idx]


def test_wav_list_errors(tmp_path):
    cfg = models.load_config("tiny")
    (tmp_path / "l.tsv").write_text("# comment\n\nx.wav\tok\n")
    assert qat.read_wav_list(tmp_path / "l.tsv") == [(tmp_path / "x.wav", "ok", 3)]
    (tmp_path / "e.tsv").write_text("# nothing\n")
    with pytest.raises(UserError, match="no path<TAB>transcript"):
        qat.wav_list_data(tmp_path / "e.tsv", cfg)
    with pytest.raises(UserError, match=r"l\.tsv:3: .*x\.wav: cannot read"):
        qat.wav_list_data(tmp_path / "l.tsv", cfg)
