"""Corpus text: fortune cookies (acoustic training domain) and the King James Bible (target domain).

Normalization keeps what a TTS engine speaks exactly as written: lower-case letters, apostrophe and
space. A sentence whose spoken form would differ from its letters is dropped rather than guessed:
digits, symbols (``& $ % @ # / * + = < > _ | ~ ^ [ ] { }``), abbreviations (``Mr.``, single-letter
initials), non-ASCII letters, and acronyms (an all-capital word whose lower-case form never occurs
in lower case anywhere in the source; so ``LORD`` is kept, ``IBM`` is dropped). Sentences keep
3..25 words.

Each kept sentence has two forms: ``text`` (the transcript, ``[a-z' ]+``) and ``spoken`` (what is
sent to the synthesizer: the same words lower-cased, with sentence-internal commas, semicolons,
colons and question/exclamation marks kept for prosody).
"""

from __future__ import annotations

import re
import subprocess
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

FORTUNE_DIR = Path("/usr/share/games/fortunes")
MIN_WORDS, MAX_WORDS = 3, 25

# Abbreviations that end in a period and are spoken differently from their letters.
_ABBREVIATIONS = frozenset(
    "mr mrs ms dr st jr sr vs etc inc ltd co prof gen col capt lt sgt rev hon mt ft no vol ed pp "
    "esp approx dept univ corp bros ave blvd assn jan feb mar apr jun jul aug sep sept oct nov dec "
    "e g i ie eg al cf viz".split()
)
_FORBIDDEN = re.compile(r"[0-9&$%@#/*+=<>_|~^\[\]{}\\`]")
_QUOTES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u2013": "-",
                         "\u2014": " -- ", "`": "'"})
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')]*\s+")
_WORD = re.compile(r"[A-Za-z]+(?:'[A-Za-z]+)*")


@dataclass(frozen=True)
class Sentence:
    """A kept sentence: ``text`` = transcript ([a-z' ]), ``spoken`` = synthesizer input, ``source``
    = where it came from (fortune file or Bible book)."""

    text: str
    spoken: str
    source: str


def _ascii(s: str) -> str | None:
    s = unicodedata.normalize("NFC", s.translate(_QUOTES))
    return s if s.isascii() else None


def split_sentences(paragraph: str) -> list[str]:
    """Split running text at ``. ! ?`` followed by white space."""
    return [p.strip() for p in _SENTENCE_END.split(" ".join(paragraph.split())) if p.strip()]


def normalize(sentence: str, lower_vocab: frozenset[str] | set[str]) -> tuple[str, str] | None:
    """(transcript, spoken form) of one sentence, or None when it cannot be normalized safely.

    Args:
        sentence: one sentence of source text.
        lower_vocab: words seen in lower case in the whole source (to tell ``LORD`` from ``IBM``).
    """
    s = _ascii(sentence)
    if s is None or _FORBIDDEN.search(s):
        return None
    # an abbreviation or initial before a period ("Mr. Smith", "J. R. R.", "e.g.")
    for m in re.finditer(r"\b([A-Za-z]+)\.", s):
        word = m.group(1)
        if word.lower() in _ABBREVIATIONS or (len(word) == 1 and word not in "IAO"):
            return None
    if re.search(r"[A-Za-z]\.[A-Za-z]", s):  # e.g. "U.S.A", "a.m"
        return None
    for w in _WORD.findall(s):
        letters = w.replace("'", "")
        if len(letters) >= 2 and sum(c.isupper() for c in letters) >= 2:
            if not letters.isupper() or letters.lower() not in lower_vocab:
                return None  # acronym or CamelCase: spelled out or unpredictable
    s = re.sub(r"(?<=[A-Za-z])-(?=[A-Za-z])", " ", s)  # well-known -> well known
    words = [w.lower() for w in _WORD.findall(s)]
    if any(len(w) == 1 and w not in "aio" for w in words):
        return None  # a lone letter ("q: ...") is spoken as its name
    if not MIN_WORDS <= len(words) <= MAX_WORDS:
        return None
    text = " ".join(words)
    # spoken: same words, keep , ; : ? ! between them for prosody
    spoken = re.sub(r"[^A-Za-z',;:?! ]+", " ", s.replace("--", ", ")).lower()
    spoken = re.sub(r"(^|\s)'+|'+(?=\s|$|[,;:?!])", r"\1", spoken)  # quote marks, not apostrophes
    spoken = " ".join(spoken.split())
    if [w for w in _WORD.findall(spoken)] != words:
        return None
    return text, spoken


def _lower_vocab(texts: Iterable[str]) -> frozenset[str]:
    return frozenset(w for t in texts for w in _WORD.findall(t) if w.islower())


# ----------------------------------------------------------------------------------------------
# fortunes


def read_fortunes(directory: Path = FORTUNE_DIR) -> list[tuple[str, str]]:
    """(file stem, fortune text) for every ``%``-separated fortune; attribution lines dropped.

    Reads the UTF-8 copies (``*.u8``) when present, else the plain files.
    """
    files = sorted(directory.glob("*.u8")) or sorted(
        p for p in directory.iterdir() if p.is_file() and not p.suffix)
    if not files:
        raise FileNotFoundError(f"no fortune files under {directory} (apt-get install fortunes fortunes-min)")
    out = []
    for path in files:
        raw = path.read_text(encoding="utf-8", errors="replace")
        for chunk in raw.split("\n%\n"):
            lines = [ln for ln in chunk.splitlines() if not ln.strip().startswith(("--", "- "))]
            if lines:
                out.append((path.name.split(".")[0], " ".join(lines)))
    return out


def fortune_sentences(directory: Path = FORTUNE_DIR) -> list[Sentence]:
    """Kept sentences of all fortunes, deduplicated by transcript, in file order."""
    fortunes = read_fortunes(directory)
    vocab = _lower_vocab(t for _, t in fortunes)
    seen: set[str] = set()
    out = []
    for stem, fortune in fortunes:
        for sent in split_sentences(fortune):
            norm = normalize(sent, vocab)
            if norm and norm[0] not in seen:
                seen.add(norm[0])
                out.append(Sentence(norm[0], norm[1], stem))
    return out


# ----------------------------------------------------------------------------------------------
# Bible


def bible_dump() -> str:
    """Every verse of the King James Bible as printed by ``bible`` (package bible-kjv)."""
    try:
        return subprocess.run(["bible", "-l100000", "gen1:1-rev22:21"], check=True, capture_output=True,
                              text=True).stdout
    except FileNotFoundError:
        raise FileNotFoundError("the `bible` program is missing (apt-get install bible-kjv)") from None


def parse_bible(dump: str) -> Iterator[tuple[str, str]]:
    """(book, verse text) pairs from a ``bible`` dump (chapter headers are "Book N" lines)."""
    book = None
    for line in dump.splitlines():
        if not line.strip():
            continue
        head = re.fullmatch(r"((?:[123] )?[A-Z][A-Za-z ]+?) (\d+)", line.strip())
        if head and not line.startswith(" "):
            book = head.group(1)
            continue
        verse = re.match(r"\s+\d+ (.*)", line)
        if verse and book:
            yield book, verse.group(1)


def bible_sentences(dump: str | None = None) -> list[Sentence]:
    """Kept sentences of every verse (verses split at sentence ends), source = book name."""
    verses = list(parse_bible(dump if dump is not None else bible_dump()))
    vocab = _lower_vocab(t for _, t in verses)
    out = []
    for book, verse in verses:
        for sent in split_sentences(verse):
            norm = normalize(sent, vocab)
            if norm:
                out.append(Sentence(norm[0], norm[1], book))
    return out


__all__ = ["Sentence", "normalize", "split_sentences", "read_fortunes", "fortune_sentences",
           "bible_dump", "parse_bible", "bible_sentences", "MIN_WORDS", "MAX_WORDS"]


def builtin_sentences() -> tuple[list[Sentence], list[Sentence]]:
    """A small fixed text set for smoke tests on machines without the fortune and Bible packages:
    (fortune-like sentences, Bible-like sentences from books Genesis, Mark and John)."""
    words = ("the cat sat on a mat and a dog ran to see it as we all know so do not be sad "
             "for light and dark are one in the end he said").split()
    fortunes, bible = [], []
    for i in range(60):
        n = 3 + i % 5
        text = " ".join(words[(i * 7 + k * 3) % len(words)] for k in range(n))
        fortunes.append(Sentence(text, text, "builtin"))
    for i, book in enumerate(("Genesis", "Mark", "John") * 20):
        n = 3 + i % 4
        text = " ".join(words[(i * 5 + k * 2 + 1) % len(words)] for k in range(n))
        bible.append(Sentence(text, text, book))
    return fortunes, bible
