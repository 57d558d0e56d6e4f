"""Corpus planning and building with the toy tone synthesizer (no external programs)."""

from __future__ import annotations

import numpy as np
import pytest

from models.data.corpus import CorpusSpec, build_corpus, plan, read_manifest, tone_synthesize, verify
from models.data.text import builtin_sentences
from models.data.voices import Prosody, Voice, add_noise, check_voices, voice_group, voice_sets

SPEC = CorpusSpec(seed=3, train_hours=0.005, fortunes_dev=2, fortunes_test=2, bible_dev=2, bible_test=2,
                  engine="tones")


def test_plan_is_deterministic_and_splits_are_disjoint():
    f, b = builtin_sentences()
    u1, ext1 = plan(SPEC, f, b)
    u2, ext2 = plan(SPEC, f, b)
    assert [(u.id, u.text, u.voice, u.prosody) for u in u1] == [(u.id, u.text, u.voice, u.prosody) for u in u2]
    assert ext1 == ext2
    bible_eval = {u.source for u in u1 if u.split.startswith("bible")}
    assert bible_eval <= {"Mark", "John"}
    # held-out books never reach the external LM's text
    held = {s.text for s in b if s.source in ("Mark", "John")} - {s.text for s in b if s.source == "Genesis"}
    assert not held & set(ext1)
    heldout = {str(v) for pair in voice_sets()["heldout"] for v in pair}
    assert all(u.voice.split(":", 1)[1] not in {v.split(":", 1)[1] for v in heldout}
               for u in u1 if u.split == "train")
    assert plan(CorpusSpec(seed=4, **{k: v for k, v in SPEC.__dict__.items() if k != "seed"}), f, b)[0] != u1


def test_voice_sets_do_not_overlap():
    sets = voice_sets()
    train = {v for g in sets["train"] for v in g}
    held = {v for g in sets["heldout"] for v in g}
    assert train and held and not train & held


def test_voice_groups():
    assert voice_group("espeak:en-us+f3") == "training"
    assert voice_group("flite:kal16") == "training"
    assert voice_group("espeak:en-gb-x-gbcwmd+f3") == "heldout-accent"  # held-out accent, training variant
    assert voice_group("espeak:en-gb-x-gbcwmd+m6") == "heldout-accent"
    assert voice_group("espeak:en-us+m6") == "heldout-variant"
    assert voice_group("flite:slt") == "heldout-flite"
    assert voice_group("tones:slt") == "heldout-flite" and voice_group("tones:en-us+m6") == "heldout-variant"
    with pytest.raises(ValueError, match="espeak:fr is neither"):
        voice_group("espeak:fr")
    # every planned utterance has a group, and held-out flags agree with it
    f, b = builtin_sentences()
    for u in plan(SPEC, f, b)[0]:
        assert (voice_group(u.voice) != "training") == bool(u.heldout_voice), u


def test_unknown_voice_is_rejected():
    pytest.importorskip("shutil")
    import shutil

    if not all(shutil.which(p) for p in ("espeak-ng", "flite", "sox")):
        pytest.skip("espeak-ng/flite/sox not installed (the corpus stage installs them)")
    with pytest.raises(ValueError, match="not installed"):
        check_voices([Voice("espeak", "en-us+nosuchvariant"), Voice("flite", "nosuchvoice")])
    check_voices([Voice("espeak", "en-us+f3"), Voice("flite", "slt")])


def test_build_is_reproducible(tmp_path):
    f, b = builtin_sentences()
    r1 = build_corpus(tmp_path / "a", SPEC, jobs=1, fortunes=f, bible=b, progress=False)
    r2 = build_corpus(tmp_path / "b", SPEC, jobs=1, fortunes=f, bible=b, progress=False)
    m1, m2 = read_manifest(r1), read_manifest(r2)
    assert [r["sha256"] for r in m1] == [r["sha256"] for r in m2]
    assert verify(r1) == []
    wav = r1 / "wav" / m1[0]["split"] / f"{m1[0]['id']}.wav"
    wav.write_bytes(wav.read_bytes()[:-2] + b"\x00\x01")
    assert verify(r1) == [m1[0]["id"]]


def test_noise_is_seeded_and_at_snr():
    x = tone_synthesize("abc", Voice("tones", "x"), Prosody())
    y1 = add_noise(x, 20.0, np.random.default_rng(0))
    y2 = add_noise(x, 20.0, np.random.default_rng(0))
    assert np.array_equal(y1, y2)
    loud = np.abs(x) > 0.02 * np.abs(x).max()
    snr = 10 * np.log10(np.mean(x[loud].astype(float) ** 2) / np.mean((y1 - x).astype(float) ** 2))
    assert snr == pytest.approx(20.0, abs=0.5)
