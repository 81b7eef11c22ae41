"""Source designations: deterministic, bilingual, and usable to name a source."""

from __future__ import annotations

import hashlib

import pytest

from journalist_cli import designations as d


def test_lists_are_aligned_unique_and_printable() -> None:
    assert len(d.ADJECTIVES) == 100
    assert len(d.ANIMALS) == 100
    for words in (d.ADJECTIVES, d.ANIMALS):
        for lang in (0, 1):
            column = [w[lang] for w in words]
            assert len(set(column)) == len(column), "duplicate word"
            assert all(w and w == w.strip() and " " not in w and w.islower() for w in column)


@pytest.mark.parametrize(
    ("sid", "en", "fr"),
    [
        ("0" * 32, "zany eel", "anguille loufoque"),
        ("3f2a9c1d5e7b4a6c8d0e1f2a3b4c5d6e", "tender llama", "lama tendre"),
        ("f" * 32, "capable butterfly", "papillon capable"),
    ],
)
def test_golden_designations_never_change(sid: str, en: str, fr: str) -> None:
    # Pinned: a change here would rename every source for every journalist.
    assert d.designation(sid, "en") == en
    assert d.designation(sid, "fr") == fr
    digest = hashlib.sha256(b"lanterne/v1/designation\x00" + sid.encode()).digest()
    assert d.ADJECTIVES[int.from_bytes(digest[:8], "big") % 100][0] == en.split()[0]


def test_same_id_same_designation_and_ids_spread_out() -> None:
    ids = [f"{i:032x}" for i in range(2000)]
    names = [d.designation(i) for i in ids]
    assert names == [d.designation(i) for i in ids]
    # 2000 ids over 10,000 designations: expect about 1800 distinct ones.
    assert len(set(names)) > 1700
    adjectives = {n.split(" ")[0] for n in names}
    animals = {n.split(" ")[1] for n in names}
    assert len(adjectives) == 100 and len(animals) == 100


@pytest.mark.parametrize(
    "typed", ["WISE OTTER", "wise-otter", "  wise   otter ", "loutre sage", "Loutre-Sage"]
)
def test_typed_designations_match_in_both_languages(typed: str) -> None:
    sid = next(f"{i:032x}" for i in range(100_000) if d.designation(f"{i:032x}") == "wise otter")
    assert d.designation(sid, "fr") == "loutre sage"
    assert d.matches(sid, typed)
    assert not d.matches(sid, "wise fox")
    assert d.slug(sid) == "wise-otter"
