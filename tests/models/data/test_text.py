"""Text normalization: what is kept, what is dropped, and the Bible dump parser."""

from __future__ import annotations

import pytest

from models.data.text import bible_sentences, normalize, parse_bible, split_sentences

VOCAB = frozenset({"lord", "not", "the"})


@pytest.mark.parametrize("raw,text", [
    ("Don't panic, it's only a test!", "don't panic it's only a test"),
    ("And the LORD said unto Moses, Go.", "and the lord said unto moses go"),
    ("A well-known \u201cquote\u201d -- here.", "a well known quote here"),
    ("'Tis the season,' she said.", "tis the season she said"),
])
def test_kept(raw, text):
    got = normalize(raw, VOCAB)
    assert got is not None and got[0] == text
    assert set(got[0]) <= set("abcdefghijklmnopqrstuvwxyz' ")


@pytest.mark.parametrize("raw", [
    "I have 3 apples today.",              # digits
    "Mr. Smith went to town today.",       # abbreviation
    "Ask IBM about the new machine.",      # acronym never seen in lower case
    "See J. R. Tolkien for more.",         # initials
    "Use the & sign here please.",         # symbol
    "q: what is green and round?",          # a lone letter is spoken as its name
    "Caf\u00e9 au lait for all.",          # non-ASCII letter
    "Too short.",                          # < 3 words
    " ".join(["word"] * 26) + ".",         # > 25 words
])
def test_dropped(raw):
    assert normalize(raw, VOCAB) is None


def test_split_sentences():
    assert split_sentences("One two three. Four five six!  Seven?") == ["One two three.", "Four five six!", "Seven?"]


def test_parse_bible_and_books():
    dump = "\nGenesis 1\n\n  1 In the beginning God created the heaven and the earth.\n" \
           "\n1 John 2\n\n  3 And hereby we do know that we know him.\n"
    assert list(parse_bible(dump)) == [
        ("Genesis", "In the beginning God created the heaven and the earth."),
        ("1 John", "And hereby we do know that we know him.")]
    sents = bible_sentences(dump)
    assert [s.source for s in sents] == ["Genesis", "1 John"]
    assert sents[0].text == "in the beginning god created the heaven and the earth"
