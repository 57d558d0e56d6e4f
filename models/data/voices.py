"""Synthetic voices: espeak-ng (English accents x variants, rate, pitch) and flite.

A ``Voice`` names one synthesizer setting; every utterance draws one voice and its prosody
(``Prosody``: rate, pitch, noise SNR) from a seeded generator. Some voices are kept for the
dev/test splits only (an unseen accent, unseen variants and an unseen flite speaker).

espeak-ng silently falls back to its default voice for an unknown variant, and flite to its
default for an unknown voice, so :func:`check_voices` verifies every name against the lists the
programs print before anything is synthesized.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
from dataclasses import dataclass

import numpy as np

SAMPLE_RATE_HZ = 16000

ESPEAK_ACCENTS_TRAIN = ("en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-029", "en-us-nyc",
                        "en-gb-x-gbclan")
ESPEAK_ACCENTS_TEST = ("en-gb-x-gbcwmd",)
ESPEAK_VARIANTS_TRAIN = ("", "m1", "m2", "m3", "m4", "m5", "m7", "m8", "f1", "f2", "f3", "f5", "klatt",
                         "klatt3", "adam", "Alex", "benjamin", "david", "ed", "john", "linda", "max",
                         "michel", "paul", "rob", "robert", "steph", "travis", "victor", "norbert",
                         "grandma", "aunty", "Annie")
ESPEAK_VARIANTS_TEST = ("m6", "f4", "Andy", "edward", "shelby")
FLITE_TRAIN = ("kal16", "awb", "rms")
FLITE_TEST = ("slt",)
FLITE_SHARE = 0.25  # fraction of utterances spoken by flite


@dataclass(frozen=True)
class Voice:
    """One synthesizer voice: ``engine`` (``espeak`` | ``flite``) and its name (espeak:
    ``accent`` or ``accent+variant``)."""

    engine: str
    name: str

    def __str__(self) -> str:
        return f"{self.engine}:{self.name}"

    @classmethod
    def parse(cls, s: str) -> "Voice":
        engine, name = s.split(":", 1)
        return cls(engine, name)


@dataclass(frozen=True)
class Prosody:
    """Per-utterance settings: espeak rate (words/min) and pitch (0..99); flite duration stretch;
    white-noise SNR in dB (added to every utterance so that silence is never digital zero)."""

    rate_wpm: int = 175
    pitch: int = 50
    stretch: float = 1.0
    snr_db: float = 35.0


def _espeak(accent: str, variant: str) -> Voice:
    return Voice("espeak", f"{accent}+{variant}" if variant else accent)


@functools.lru_cache(maxsize=1)
def voice_sets() -> dict[str, tuple[tuple[Voice, ...], tuple[Voice, ...]]]:
    """{"train": (espeak voices, flite voices), "heldout": (...)}: held-out voices are used only in
    dev/test. Cached: callers must not modify the dict."""
    train_es = tuple(_espeak(a, v) for a in ESPEAK_ACCENTS_TRAIN for v in ESPEAK_VARIANTS_TRAIN)
    held_es = tuple(_espeak(a, v) for a in ESPEAK_ACCENTS_TEST for v in ESPEAK_VARIANTS_TRAIN
                    + ESPEAK_VARIANTS_TEST)
    held_es += tuple(_espeak(a, v) for a in ESPEAK_ACCENTS_TRAIN for v in ESPEAK_VARIANTS_TEST)
    return {"train": (train_es, tuple(Voice("flite", n) for n in FLITE_TRAIN)),
            "heldout": (held_es, tuple(Voice("flite", n) for n in FLITE_TEST))}


VOICE_GROUPS = ("training", "heldout-accent", "heldout-variant", "heldout-flite")


def voice_group(voice: str | Voice) -> str:
    """Which of ``VOICE_GROUPS`` a voice belongs to: a training voice, the held-out espeak-ng accent
    (any variant), a held-out variant of a training accent, or the held-out flite speaker.

    Raises:
        ValueError: a voice that is in no set (e.g. a corpus made with other voice lists).
    """
    v = Voice.parse(voice) if isinstance(voice, str) else voice
    if v.engine == "tones":  # the toy synthesizer keeps the name of the voice it stands in for
        v = Voice("flite" if v.name in FLITE_TRAIN + FLITE_TEST else "espeak", v.name)
    sets = voice_sets()
    if v in sets["train"][0] or v in sets["train"][1]:
        return "training"
    if v in sets["heldout"][1]:
        return "heldout-flite"
    if v in sets["heldout"][0]:
        return "heldout-accent" if v.name.partition("+")[0] in ESPEAK_ACCENTS_TEST else "heldout-variant"
    raise ValueError(f"voice {v} is neither in the training nor in the held-out voice set")


def draw_voice(rng: np.random.Generator, heldout_share: float) -> tuple[Voice, Prosody, bool]:
    """One random voice and prosody; a held-out voice with probability ``heldout_share``.

    Returns:
        (voice, prosody, held_out).
    """
    sets = voice_sets()
    held = bool(rng.random() < heldout_share)
    espeak, flite = sets["heldout" if held else "train"]
    pool = flite if rng.random() < FLITE_SHARE else espeak
    voice = pool[int(rng.integers(len(pool)))]
    prosody = Prosody(rate_wpm=int(rng.integers(140, 206)), pitch=int(rng.integers(30, 71)),
                      stretch=round(float(rng.uniform(0.85, 1.15)), 3),
                      snr_db=round(float(rng.uniform(25.0, 45.0)), 1))
    return voice, prosody, held


def _run(cmd: list[str]) -> str:
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout


@functools.lru_cache(maxsize=1)
def available() -> dict[str, set[str]]:
    """What the installed synthesizers offer: espeak languages, espeak voice files, espeak variant
    files, flite voices."""
    for prog, pkg in (("espeak-ng", "espeak-ng"), ("flite", "flite"), ("sox", "sox")):
        if shutil.which(prog) is None:
            raise FileNotFoundError(f"{prog} is not installed (apt-get install {pkg})")
    langs, files = set(), set()
    for line in _run(["espeak-ng", "--voices=en"]).splitlines()[1:]:
        cols = line.split()
        if len(cols) >= 5:
            langs.add(cols[1])
            files.add(cols[4].split("/")[-1])
    variants = {line.split()[4].split("/")[-1] for line in _run(["espeak-ng", "--voices=variant"]).splitlines()[1:]
                if len(line.split()) >= 5}
    flite = set(_run(["flite", "-lv"]).split(":", 1)[-1].split())
    return {"espeak_lang": langs, "espeak_file": files, "espeak_variant": variants, "flite": flite}


def check_voices(voices: list[Voice] | None = None) -> None:
    """Raise ValueError naming every voice the installed synthesizers do not have."""
    if voices is None:
        voices = [v for pair in voice_sets().values() for group in pair for v in group]
    have = available()
    missing = []
    for v in voices:
        if v.engine == "flite":
            ok = v.name in have["flite"]
        else:
            accent, _, variant = v.name.partition("+")
            ok = (accent in have["espeak_lang"] or accent in have["espeak_file"]) and (
                not variant or variant in have["espeak_variant"])
        if not ok:
            missing.append(str(v))
    if missing:
        raise ValueError(f"voices not installed (the synthesizer would silently fall back): {missing}")


def synthesize(text: str, voice: Voice, prosody: Prosody) -> np.ndarray:
    """Speak ``text``; returns int16 samples at 16 kHz (clean, before noise)."""
    to_raw = ["sox", "-t", "wav", "-", "-t", "raw", "-e", "signed", "-b", "16", "-c", "1", "-",
              "rate", str(SAMPLE_RATE_HZ)]
    if voice.engine == "espeak":
        tts = subprocess.run(["espeak-ng", "-v", voice.name, "-s", str(prosody.rate_wpm), "-p",
                              str(prosody.pitch), "--stdout", text], check=True, capture_output=True).stdout
    elif voice.engine == "flite":
        tts = subprocess.run(["flite", "-voice", voice.name, "--setf",
                              f"duration_stretch={prosody.stretch}", "-t", text, "-o", "/dev/stdout"],
                             check=True, capture_output=True).stdout
    else:
        raise ValueError(f"unknown engine {voice.engine!r}")
    raw = subprocess.run(to_raw, input=tts, check=True, capture_output=True).stdout
    return np.frombuffer(raw, dtype="<i2").copy()


def add_noise(samples: np.ndarray, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    """White Gaussian noise at ``snr_db`` below the RMS of the non-silent samples; int16 out."""
    x = samples.astype(np.float64)
    loud = np.abs(x) > 0.02 * (np.abs(x).max() + 1e-9)
    rms = np.sqrt(np.mean(x[loud] ** 2)) if loud.any() else 100.0
    y = x + rng.normal(0.0, rms / 10 ** (snr_db / 20), x.shape)
    return np.clip(np.round(y), -32768, 32767).astype("<i2")


__all__ = ["Voice", "Prosody", "voice_sets", "voice_group", "VOICE_GROUPS", "draw_voice", "available", "check_voices", "synthesize",
           "add_noise", "SAMPLE_RATE_HZ"]
