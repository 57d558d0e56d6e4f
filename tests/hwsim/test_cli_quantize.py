"""``hwsim quantize``: real calibration and QAT on a corpus directory or WAV list, the surrogate
only behind ``--synthetic``, one-line errors without a data option."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from hwsim.cli import main
from models.config import load_config
from models.data.corpus import CorpusSpec, build_corpus, read_manifest
from models.data.text import Sentence
from models.features import features_for, load_wav
from models.quant import read_manifest as read_export

torch.set_num_threads(1)

TRAIN = ["we go home now", "rain falls down", "it is late", "hold on tight", "fast cars", "a cat sat",
         "the dog ran far", "see the sea", "two birds sing", "big red box"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """A toy corpus (tone synthesizer) as ``build_corpus`` writes it: a few short training utterances."""
    fortunes = [Sentence(t, t, "f") for t in TRAIN]
    bible = [Sentence(t, t, b) for b, t in (("Mark", "he spoke"), ("John", "in the beginning"),
                                             ("Genesis", "let there be light"), ("Exodus", "go forth"))]
    spec = CorpusSpec(seed=0, train_hours=60 / 57600, fortunes_dev=1, fortunes_test=1, bible_dev=1,
                      bible_test=1, engine="tones")
    return build_corpus(tmp_path_factory.mktemp("corpus"), spec, jobs=1, fortunes=fortunes, bible=bible,
                        progress=False)


def _run(capsys, *argv) -> dict:
    assert main(["quantize", "--model", "tiny", *map(str, argv), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def _act(export, module, slot) -> dict:
    return next(a for a in read_export(export)["activations"] if a["module"] == module and a["slot"] == slot)


def test_qat_on_corpus_reports_the_rnnt_loss_and_it_falls(corpus, capsys, tmp_path):
    r = _run(capsys, "--precision", "int4", "--mode", "qat", "--data", corpus, "--steps", 6, "--lr", "1e-2",
             "--out", tmp_path / "q.npz")
    n = len(read_manifest(corpus, "train"))
    assert (r["data"], r["loss"], r["utterances"], r["qat_steps"]) == ("corpus", "rnnt+lm_ce", n, 6)
    rnnt = [h["rnnt"] for h in r["qat_history"]]
    assert all(math.isfinite(v) for v in rnnt)
    # one batch holds all the utterances: the same batch every step, so the loss must fall
    assert all(b < a for a, b in zip(rnnt, rnnt[1:])) and rnnt[-1] < 0.85 * rnnt[0]
    assert r["qat_loss_first"] == pytest.approx(rnnt[0] + r["qat_history"][0]["lm"])
    assert (tmp_path / "q.npz").exists()


def _encoder_input_max(corpus, cfg) -> float:
    """max |x| over the frames the encoder's first layer sees when all training utterances form one
    batch: each utterance end-padded to the longest with its own last frame, then frames stacked in
    pairs (stack 2, stride 2: an odd final frame of the longest one is dropped)."""
    feats = [features_for(cfg, *load_wav(corpus / "wav" / "train" / f"{r['id']}.wav"))
             for r in read_manifest(corpus, "train")]
    longest = max(f.shape[0] for f in feats)
    used = 2 * (longest // 2)
    return max(float(f[:used].abs().max()) for f in feats)


def test_ptq_ranges_come_from_the_data(corpus, capsys, tmp_path):
    cfg = load_config("tiny")
    rows = read_manifest(corpus, "train")
    wav_list = tmp_path / "list.tsv"
    wav_list.write_text("".join(f"{corpus}/wav/train/{r['id']}.wav\t{r['text']}\n" for r in rows))
    real = _run(capsys, "--precision", "int4", "--data", corpus, "--out", tmp_path / "c.npz")
    listed = _run(capsys, "--precision", "int4", "--wav-list", wav_list, "--out", tmp_path / "w.npz")
    synth = _run(capsys, "--precision", "int4", "--synthetic", "--out", tmp_path / "s.npz")
    assert (real["data"], listed["data"], synth["data"]) == ("corpus", "wav-list", "synthetic")
    assert real["calib_batches"] == listed["calib_batches"] == 1  # a few short utterances: one batch
    first = ("rnnt.encoder.layers.0.fwd", "q_input")
    expected = _encoder_input_max(corpus, cfg)
    for name in ("c", "w"):  # same utterances through both data options: the PACT clip is their max |x|
        assert _act(tmp_path / f"{name}.npz", *first)["alpha"] == pytest.approx(expected, rel=1e-6)
    assert abs(_act(tmp_path / "s.npz", *first)["alpha"] - expected) > 1.0  # random features: not these
    # LM quantizers saw the corpus LM text, which differs from the WAV list's transcripts
    lm = ("lm_ext.layers.0", "q_input")
    assert _act(tmp_path / "c.npz", *lm)["alpha"] != _act(tmp_path / "s.npz", *lm)["alpha"]


def test_synthetic_says_so(capsys, tmp_path):
    r = _run(capsys, "--precision", "int4", "--mode", "qat", "--synthetic", "--steps", 2, "--out",
             tmp_path / "q.npz")
    assert (r["data"], r["loss"], r["data_path"], r["qat_steps"]) == ("synthetic", "surrogate", None, 2)
    assert r["qat_rnnt_loss_first"] is None
    assert any("SURROGATE" in n for n in r["notes"]) and any("synthetic" in n for n in r["notes"])
    assert main(["quantize", "--model", "tiny", "--precision", "int8", "--synthetic", "--out",
                 str(tmp_path / "p.npz")]) == 0
    assert "SYNTHETIC" in capsys.readouterr().out


@pytest.mark.parametrize("extra,words", [
    ([], ["--data DIR", "--wav-list FILE", "--synthetic"]),
    (["--data", "{tmp}/nowhere"], ["--data", "manifest.tsv"]),
    (["--wav-list", "{tmp}"], ["--wav-list", "is a directory"]),
    (["--wav-list", "{tmp}/bad.tsv"], ["bad.tsv:2", "path<TAB>transcript"]),
    (["--wav-list", "{tmp}/caps.tsv"], ["caps.tsv", "'W'", "alphabet"]),
    (["--wav-list", "{tmp}/missing.tsv"], ["gone.wav"]),
])
def test_data_errors_are_one_line_exit_2(corpus, capsys, tmp_path, extra, words):
    wav = f"{corpus}/wav/train/train-00000.wav"
    (tmp_path / "bad.tsv").write_text(f"{wav}\twe go home now\nno tab here\n")
    (tmp_path / "caps.tsv").write_text(f"{wav}\tWe go home now\n")
    (tmp_path / "missing.tsv").write_text("gone.wav\twe go\n")
    argv = ["quantize", "--model", "tiny", "--precision", "int4", "--out", str(tmp_path / "o" / "q.npz"),
            *[e.format(tmp=tmp_path) for e in extra]]
    code = main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    assert all(w in err[0] for w in words), err[0]
    assert not (tmp_path / "o").exists()  # nothing written


def test_one_data_option_only(corpus, capsys, tmp_path):
    with pytest.raises(SystemExit) as exc:
        main(["quantize", "--model", "tiny", "--precision", "int4", "--data", str(corpus), "--synthetic",
              "--out", str(tmp_path / "q.npz")])
    assert exc.value.code == 2 and "not allowed with" in capsys.readouterr().err


def test_data_accepts_a_pipeline_data_folder(corpus, capsys, tmp_path):
    """``--data`` as ``hwsim accuracy --data`` takes it: a folder holding ``corpus/``."""
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "corpus").symlink_to(corpus)
    r = _run(capsys, "--precision", "int8", "--data", tmp_path / "data", "--out", tmp_path / "q.npz")
    assert r["data"] == "corpus" and r["data_path"] == str(tmp_path / "data" / "corpus")
    assert r["utterances"] == len(read_manifest(corpus, "train"))
