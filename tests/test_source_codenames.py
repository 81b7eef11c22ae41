"""Codenames: enough entropy, typo detection, forgiving spelling, both word lists."""

from __future__ import annotations

import random

import pytest

from server.domain import codenames


@pytest.mark.parametrize("lang", codenames.available_languages())
def test_word_lists_are_unambiguous(lang: str) -> None:
    wl = codenames.wordlist(lang)
    assert len(wl.words) == 2048
    normalized = wl.normalized
    assert len(set(normalized)) == 2048  # distinct without accents
    assert len({w[:4] for w in normalized}) == 2048  # distinct on four letters
    assert all(w.isalpha() and w.isascii() for w in normalized)


def test_entropy_is_at_least_90_bits() -> None:
    assert codenames.RANDOM_BITS == 93
    assert codenames.WORDS * codenames.BITS_PER_WORD - codenames.CHECK_BITS >= 90
    # Every random bit reaches the codename: 93 fixed bit patterns, 93 codenames.
    # The patterns are one fixed random value with one bit flipped each (an
    # all-zero base would be "abandon" eight times, which starts like French
    # words too, and generate refuses such codenames).
    base = random.Random(93).getrandbits(codenames.RANDOM_BITS)
    seen = set()
    for bit in range(codenames.RANDOM_BITS):
        stream = iter(f"{base ^ (1 << (codenames.RANDOM_BITS - 1 - bit)):093b}")

        def randbits(n: int, stream=stream) -> int:
            return int("".join(next(stream) for _ in range(n)), 2)

        seen.add(codenames.generate("en", randbits))
    assert len(seen) == codenames.RANDOM_BITS


@pytest.mark.parametrize("lang", codenames.available_languages())
def test_generated_codenames_parse_back(lang: str) -> None:
    for _ in range(200):
        name = codenames.generate(lang)
        assert len(name.split()) == 9
        assert codenames.parse(name) == " ".join(codenames.normalize_word(w) for w in name.split())


def test_forgiving_spelling_gives_the_same_canonical_form() -> None:
    name = codenames.generate("fr")
    canonical = codenames.parse(name)
    shouting = name.upper()
    no_accents = " ".join(codenames.normalize_word(w) for w in name.split())
    prefixes = " ".join(w[:4] for w in no_accents.split())
    dashed = "-".join(name.split())
    spaced = "  " + "\n".join(name.split()) + " "
    for typed in (shouting, no_accents, prefixes, dashed, spaced):
        assert codenames.parse(typed) == canonical


def test_a_misspelt_word_is_named() -> None:
    words = codenames.generate("en").split()
    words[3] = words[3][:4] + "qqq"
    with pytest.raises(codenames.CodenameError) as err:
        codenames.parse(" ".join(words))
    assert err.value.reason == "word"
    assert err.value.position == 4


def test_wrong_word_count() -> None:
    words = codenames.generate("en").split()
    for typed in (words[:8], [*words, words[0]], []):
        with pytest.raises(codenames.CodenameError) as err:
            codenames.parse(" ".join(typed))
        assert err.value.reason == "count"


def test_checksum_catches_substituted_and_swapped_words() -> None:
    rng = random.Random(7)
    wl = codenames.wordlist("en")
    caught = total = 0
    for _ in range(400):
        words = codenames.generate("en").split()
        pos = rng.randrange(9)
        replacement = wl.words[rng.randrange(2048)]
        if replacement == words[pos]:
            continue
        words[pos] = replacement
        total += 1
        try:
            codenames.parse(" ".join(words))
        except codenames.CodenameError as exc:
            assert exc.reason == "check"
            caught += 1
    # 6 check bits: 63 in 64 expected; allow for chance.
    assert caught / total > 0.93
    swaps = 0
    for _ in range(200):
        words = codenames.generate("en").split()
        if words[0] == words[1]:
            continue
        words[0], words[1] = words[1], words[0]
        try:
            codenames.parse(" ".join(words))
        except codenames.CodenameError:
            swaps += 1
    assert swaps > 180


def test_lists_are_tried_in_registry_order_so_older_codenames_parse_as_before() -> None:
    # en and fr were the only lists before es and it: they stay first.
    assert codenames.available_languages() == ("en", "fr", "es", "it")


def test_a_codename_that_could_parse_in_another_list_is_never_given() -> None:
    # Nine Italian words that all start like English words: typed as their four
    # first letters, they might parse as an English codename (tried first), a
    # different account. generate draws such a candidate first and refuses it.
    en, it = codenames.wordlist("en"), codenames.wordlist("it")
    en_prefixes = {w[:4] for w in en.normalized}
    shared = [i for i, w in enumerate(it.normalized) if w[:4] in en_prefixes]
    first8 = shared[:8]
    top = next(
        t
        for t in range(1 << (codenames.BITS_PER_WORD - codenames.CHECK_BITS))
        if it.normalized[codenames._complete("it", first8, t)[-1]][:4] in en_prefixes
    )
    candidate = codenames._complete("it", first8, top)
    assert codenames._also_in_another_list("it", candidate)
    fresh = random.Random(1)
    drawn = iter([*first8, top])

    def randbits(n: int) -> int:
        value = next(drawn, -1)
        return value if value >= 0 else fresh.getrandbits(n)

    name = codenames.generate("it", randbits)
    assert name.split() != [it.words[i] for i in candidate]
    assert not codenames._also_in_another_list("it", [it.words.index(w) for w in name.split()])
    assert codenames.parse(name) == " ".join(codenames.normalize_word(w) for w in name.split())
