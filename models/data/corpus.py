"""Build the synthetic speech corpus: plan -> synthesize (parallel) -> manifest -> feature cache.

Layout under ``root`` (default ``data/corpus``)::

    manifest.tsv          id, split, text, voice, seconds, sha256, ... (one row per WAV)
    corpus.json           the CorpusSpec used and the row count per split (written last)
    wav/<split>/<id>.wav  16 kHz mono 16-bit PCM
    text/lm_src.txt       source-LM text = the acoustic training transcripts
    text/lm_ext.txt       external-LM text = Bible sentences of every book not held out
    text/<split>.txt      transcripts of each split
    feats/<split>.pt      {"ids", "feats": [float16 (T, 80)], "texts"} (see ``features.py``)

Splits: ``train`` (fortunes, training voices), ``fortunes_dev``/``fortunes_test`` (held-out
fortune sentences), ``bible_dev``/``bible_test`` (held-out books). Dev and test utterances use
held-out voices for ``heldout_voice_share`` of their rows. Everything is drawn from
``numpy.random.default_rng(seed)``; the same spec gives byte-identical WAVs (the manifest's sha256
checks it).
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import multiprocessing as mp
import os
import wave
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from models.data import text as textmod
from models.data.voices import (SAMPLE_RATE_HZ, Prosody, Voice, add_noise, check_voices, draw_voice,
                                synthesize)

log = logging.getLogger(__name__)

SPLITS = ("train", "fortunes_dev", "fortunes_test", "bible_dev", "bible_test")
MANIFEST_COLUMNS = ("id", "split", "text", "spoken", "source", "voice", "heldout_voice", "rate_wpm",
                    "pitch", "stretch", "snr_db", "seconds", "sha256")
CHARS_PER_S = 16.0  # measured espeak/flite speaking rate incl. pauses, for planning only


@dataclass(frozen=True)
class CorpusSpec:
    """What to build.

    Attributes:
        seed: drives sentence selection, voices, prosody and noise.
        train_hours: planned training audio (estimated from text length at ``CHARS_PER_S``).
        fortunes_dev, fortunes_test, bible_dev, bible_test: utterances per evaluation split.
        bible_dev_book, bible_test_book: books held out of the external LM's text.
        heldout_voice_share: fraction of dev/test utterances spoken by held-out voices.
        engine: ``tts`` (espeak-ng + flite) or ``tones`` (a deterministic toy synthesizer for
            tests: one tone per character, no external program).
    """

    seed: int = 0
    train_hours: float = 6.0
    fortunes_dev: int = 200
    fortunes_test: int = 300
    bible_dev: int = 200
    bible_test: int = 300
    bible_dev_book: str = "Mark"
    bible_test_book: str = "John"
    heldout_voice_share: float = 0.5
    engine: str = "tts"


@dataclass
class Utterance:
    id: str
    split: str
    text: str
    spoken: str
    source: str
    voice: str
    heldout_voice: bool
    prosody: Prosody = field(default_factory=Prosody)
    index: int = 0


# ----------------------------------------------------------------------------------------------
# planning


def plan(spec: CorpusSpec, fortunes: list[textmod.Sentence], bible: list[textmod.Sentence]
         ) -> tuple[list[Utterance], list[str]]:
    """Choose sentences and voices for every utterance.

    Returns:
        (utterances in split order, external-LM text lines).
    """
    rng = np.random.default_rng(spec.seed)
    order = rng.permutation(len(fortunes))
    n_test, n_dev = spec.fortunes_test, spec.fortunes_dev
    chosen: dict[str, list[textmod.Sentence]] = {
        "fortunes_test": [fortunes[i] for i in order[:n_test]],
        "fortunes_dev": [fortunes[i] for i in order[n_test:n_test + n_dev]],
    }
    budget_chars, train = spec.train_hours * 3600 * CHARS_PER_S, []
    for i in order[n_test + n_dev:]:
        if budget_chars <= 0:
            break
        train.append(fortunes[i])
        budget_chars -= len(fortunes[i].text)
    chosen["train"] = train
    held_books = {spec.bible_dev_book, spec.bible_test_book}
    for split, book, n in (("bible_dev", spec.bible_dev_book, spec.bible_dev),
                           ("bible_test", spec.bible_test_book, spec.bible_test)):
        pool = list({s.text: s for s in bible if s.source == book}.values())
        if len(pool) < n:
            raise ValueError(f"book {book!r} has {len(pool)} usable sentences, {n} requested")
        chosen[split] = [pool[i] for i in sorted(rng.choice(len(pool), n, replace=False))]
    lm_ext = [s.text for s in bible if s.source not in held_books]
    utts: list[Utterance] = []
    for split in SPLITS:
        share = 0.0 if split == "train" else spec.heldout_voice_share
        for k, sent in enumerate(chosen[split]):
            voice, prosody, held = draw_voice(rng, share)
            if spec.engine == "tones":
                voice = Voice("tones", voice.name)
            utts.append(Utterance(f"{split}-{k:05d}", split, sent.text, sent.spoken, sent.source,
                                  str(voice), held, prosody, len(utts)))
    return utts, lm_ext


# ----------------------------------------------------------------------------------------------
# synthesis


def tone_synthesize(text: str, voice: Voice, prosody: Prosody) -> np.ndarray:
    """Toy synthesizer for tests: each character a 60 ms tone (space = 40 ms silence), int16.

    Frequency = 300 Hz + 110 Hz x alphabet index, shifted by the pitch setting, so the labels are
    recoverable from a log-mel spectrogram."""
    alphabet = "abcdefghijklmnopqrstuvwxyz'"
    sr, parts = SAMPLE_RATE_HZ, [np.zeros(int(0.1 * SAMPLE_RATE_HZ))]
    shift = 1.0 + (prosody.pitch - 50) / 500
    for ch in text:
        if ch == " ":
            parts.append(np.zeros(int(0.04 * sr)))
            continue
        t = np.arange(int(0.06 * sr)) / sr
        f = (300.0 + 110.0 * alphabet.index(ch)) * shift
        parts.append(np.sin(2 * np.pi * f * t) * np.hanning(t.size))
    parts.append(np.zeros(int(0.1 * sr)))
    return np.round(np.concatenate(parts) * 12000).astype("<i2")


def _write_wav(path: Path, samples: np.ndarray) -> bytes:
    tmp = path.with_suffix(".tmp")
    with wave.open(str(tmp), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SAMPLE_RATE_HZ)
        w.writeframes(samples.astype("<i2").tobytes())
    os.replace(tmp, path)
    return path.read_bytes()


def _synth_job(args: tuple[Utterance, str, int]) -> tuple[str, float, str]:
    utt, wav_dir, seed = args
    path = Path(wav_dir) / utt.split / f"{utt.id}.wav"
    if path.exists():
        data = path.read_bytes()
    else:
        voice = Voice.parse(utt.voice)
        synth: Callable = tone_synthesize if voice.engine == "tones" else synthesize
        clean = synth(utt.spoken, voice, utt.prosody)
        noisy = add_noise(clean, utt.prosody.snr_db, np.random.default_rng([seed, utt.index]))
        data = _write_wav(path, noisy)
    seconds = (len(data) - 44) / 2 / SAMPLE_RATE_HZ
    return utt.id, seconds, hashlib.sha256(data).hexdigest()


def is_complete(root: Path) -> bool:
    """True when ``corpus.json`` (written last) exists and every manifest WAV is on disk."""
    root = Path(root)
    if not (root / "corpus.json").exists() or not (root / "manifest.tsv").exists():
        return False
    return all((root / "wav" / r["split"] / f"{r['id']}.wav").exists() for r in read_manifest(root))


def build_corpus(root: str | Path, spec: CorpusSpec = CorpusSpec(), jobs: int = 2,
                 fortunes: list[textmod.Sentence] | None = None,
                 bible: list[textmod.Sentence] | None = None, progress: bool = True) -> Path:
    """Plan, synthesize (``jobs`` processes) and write manifest + texts; skips finished WAVs.

    Args:
        root: corpus directory.
        spec: the ``CorpusSpec``.
        jobs: synthesis processes.
        fortunes, bible: sentence lists (default: read from the installed packages).

    Returns:
        ``root``.
    """
    root = Path(root)
    if is_complete(root):
        log.info("corpus %s is complete; skipping", root)
        return root
    if spec.engine == "tts":
        check_voices()
    fortunes = textmod.fortune_sentences() if fortunes is None else fortunes
    bible = textmod.bible_sentences() if bible is None else bible
    utts, lm_ext = plan(spec, fortunes, bible)
    for split in SPLITS:
        (root / "wav" / split).mkdir(parents=True, exist_ok=True)
    jobs_in = [(u, str(root / "wav"), spec.seed) for u in utts]
    results: dict[str, tuple[float, str]] = {}
    with mp.get_context("fork").Pool(max(1, jobs)) as pool:
        it = pool.imap(_synth_job, jobs_in, chunksize=8)
        for uid, seconds, sha in tqdm(it, total=len(utts), desc="synthesize", unit="utt",
                                      disable=not progress):
            results[uid] = (seconds, sha)
    rows = []
    for u in utts:
        seconds, sha = results[u.id]
        rows.append({"id": u.id, "split": u.split, "text": u.text, "spoken": u.spoken, "source": u.source,
                     "voice": u.voice, "heldout_voice": int(u.heldout_voice),
                     "rate_wpm": u.prosody.rate_wpm, "pitch": u.prosody.pitch,
                     "stretch": u.prosody.stretch, "snr_db": u.prosody.snr_db,
                     "seconds": f"{seconds:.3f}", "sha256": sha})
    _write_atomic(root / "manifest.tsv", _tsv(rows))
    (root / "text").mkdir(exist_ok=True)
    _write_atomic(root / "text" / "lm_src.txt", "".join(u.text + "\n" for u in utts if u.split == "train"))
    _write_atomic(root / "text" / "lm_ext.txt", "".join(t + "\n" for t in lm_ext))
    for split in SPLITS:
        _write_atomic(root / "text" / f"{split}.txt", "".join(u.text + "\n" for u in utts if u.split == split))
    summary = {"spec": asdict(spec), "splits": {}, "lm_ext_sentences": len(lm_ext)}
    for split in SPLITS:
        sel = [r for r in rows if r["split"] == split]
        summary["splits"][split] = {"utterances": len(sel),
                                    "hours": round(sum(float(r["seconds"]) for r in sel) / 3600, 3)}
    _write_atomic(root / "corpus.json", json.dumps(summary, indent=2) + "\n")
    log.info("corpus %s: %s", root, summary["splits"])
    return root


def _tsv(rows: list[dict]) -> str:
    lines = ["\t".join(MANIFEST_COLUMNS)]
    lines += ["\t".join(str(r[c]) for c in MANIFEST_COLUMNS) for r in rows]
    return "\n".join(lines) + "\n"


def _write_atomic(path: Path, content: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(content)
    os.replace(tmp, path)


def read_manifest(root: str | Path, split: str | None = None) -> list[dict[str, str]]:
    """Manifest rows (dicts of strings), optionally of one split."""
    with open(Path(root) / "manifest.tsv", newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE))
    return [r for r in rows if split is None or r["split"] == split]


def verify(root: str | Path) -> list[str]:
    """IDs whose WAV is missing or whose sha256 differs from the manifest."""
    root, bad = Path(root), []
    for r in read_manifest(root):
        p = root / "wav" / r["split"] / f"{r['id']}.wav"
        if not p.exists() or hashlib.sha256(p.read_bytes()).hexdigest() != r["sha256"]:
            bad.append(r["id"])
    return bad


__all__ = ["CorpusSpec", "SPLITS", "plan", "build_corpus", "is_complete", "read_manifest", "verify",
           "tone_synthesize"]
