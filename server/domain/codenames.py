"""Codenames: nine words the server gives a source, 93 random bits and a check.

A codename is nine words from one 2048-word list (11 bits each, 99 bits). The
first eight words and the top five bits of the ninth are random (93 bits); the
low six bits of the ninth word are a checksum over the rest, so a word swapped
for another valid word is caught 63 times in 64, and a misspelt word that is
in no list is caught always, with its position named. Words may be typed in
any case, without accents, or shortened to their first four letters (each list
is unique on those).

The canonical form (full words, lower case, no accents, single spaces) is what
Argon2id derives the source's keys from, so every accepted spelling of a
codename logs into the same account.

Which list a language's sources get is the registry's choice
(server/languages.py). ``parse`` tries the lists in registry order, so a list
added later never changes how an older codename parses; and ``generate`` never
gives a codename whose every word also starts a word of another list, so no
spelling of a new codename can parse in a list tried before its own.
"""

from __future__ import annotations

import hashlib
import secrets
import unicodedata
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from server import languages

WORDS = 9
BITS_PER_WORD = 11
CHECK_BITS = 6
RANDOM_BITS = WORDS * BITS_PER_WORD - CHECK_BITS  # 93
PREFIX = 4
_CHECK_LABEL = b"lanterne codename check v1\x00"
_WORDLIST_DIR = Path(__file__).parents[1] / "wordlists"


class CodenameError(ValueError):
    """A typed codename is not one this server could have given.

    ``position`` (1-based) names the word that is not in the list, when one is
    not; ``reason`` is one of "count", "word", "check".
    """

    def __init__(self, reason: str, position: int | None = None, word: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.position = position
        self.word = word


def normalize_word(word: str) -> str:
    """Lower case, accents removed: how words are compared."""
    decomposed = unicodedata.normalize("NFKD", word.strip().lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


@dataclass(frozen=True)
class WordList:
    language: str
    words: tuple[str, ...]  # as printed (French keeps its accents)

    @property
    def normalized(self) -> tuple[str, ...]:
        return _normalized(self)

    def index_of(self, typed: str) -> int | None:
        """The index of a typed word: exact (accents optional) or its 4-letter prefix."""
        word = normalize_word(typed)
        lookup = _index(self)
        if word in lookup:
            return lookup[word]
        if len(word) >= PREFIX:
            return _prefixes(self).get(word[:PREFIX]) if _prefix_ok(self, word) else None
        return None


@cache
def _normalized(wl: WordList) -> tuple[str, ...]:
    return tuple(normalize_word(w) for w in wl.words)


@cache
def _index(wl: WordList) -> dict[str, int]:
    return {w: i for i, w in enumerate(wl.normalized)}


@cache
def _prefixes(wl: WordList) -> dict[str, int]:
    return {w[:PREFIX]: i for i, w in enumerate(wl.normalized)}


def _prefix_ok(wl: WordList, word: str) -> bool:
    # "aban" and "abandxx" both start like "abandon"; only accept a typed word
    # that is itself a prefix of the list word, so a typo past letter four is
    # still caught instead of silently corrected.
    idx = _prefixes(wl).get(word[:PREFIX])
    return idx is not None and wl.normalized[idx].startswith(word)


@cache
def wordlist(language: str) -> WordList:
    path = _WORDLIST_DIR / f"{language}.txt"
    words = tuple(path.read_text(encoding="utf-8").split())
    if len(words) != 1 << BITS_PER_WORD:
        raise RuntimeError(f"{path} must hold {1 << BITS_PER_WORD} words")
    return WordList(language, words)


def available_languages() -> tuple[str, ...]:
    """The word lists, in the order ``parse`` tries them (the registry's)."""
    return languages.wordlists()


def _also_in_another_list(language: str, indices: list[int]) -> bool:
    """Whether every word starts like a word of some other list: a spelling of
    this codename might then parse there (1 codename in about a million)."""
    own = wordlist(language).normalized
    for other in available_languages():
        if other != language:
            prefixes = _prefixes(wordlist(other))
            if all(own[i][:PREFIX] in prefixes for i in indices):
                return True
    return False


def _checksum(language: str, indices: list[int]) -> int:
    """Six bits over the list name, the first eight words and the top of the ninth."""
    data = _CHECK_LABEL + language.encode() + b"".join(i.to_bytes(2, "big") for i in indices)
    return hashlib.sha256(data).digest()[0] >> (8 - CHECK_BITS)


def _complete(language: str, indices: list[int], top_of_last: int) -> list[int]:
    check = _checksum(language, [*indices, top_of_last])
    return [*indices, (top_of_last << CHECK_BITS) | check]


def generate(language: str, randbits: object = None) -> str:
    """A new codename in ``language``'s list, words as printed, single spaces.

    ``randbits`` (a callable like ``secrets.randbits``) is a seam for tests.
    """
    rand = randbits if callable(randbits) else secrets.randbits
    wl = wordlist(language)
    while True:
        indices = [int(rand(BITS_PER_WORD)) for _ in range(WORDS - 1)]
        top = int(rand(BITS_PER_WORD - CHECK_BITS))
        full = _complete(language, indices, top)
        if not _also_in_another_list(language, full):
            return " ".join(wl.words[i] for i in full)


def parse(typed: str) -> str:
    """The canonical form of a typed codename, or CodenameError saying what is wrong."""
    parts = typed.replace("-", " ").replace(",", " ").split()
    if len(parts) != WORDS:
        raise CodenameError("count")
    best: CodenameError | None = None
    for language in available_languages():
        wl = wordlist(language)
        indices: list[int] = []
        for pos, part in enumerate(parts, start=1):
            idx = wl.index_of(part)
            if idx is None:
                err = CodenameError("word", pos, part)
                # Report the list that matched the most words: its first bad
                # word is the one the source most likely mistyped.
                if best is None or (best.reason != "check" and (best.position or 0) < pos):
                    best = err
                break
            indices.append(idx)
        else:
            last = indices[-1]
            if _complete(language, indices[:-1], last >> CHECK_BITS)[-1] == last:
                return " ".join(wl.normalized[i] for i in indices)
            best = CodenameError("check")
    assert best is not None
    raise best
