"""The language registry (server/languages.py) is the one list of languages.

Adding a language is a registry entry plus its catalogue: these tests fail when
another module lists languages, when a catalogue or word list has no registry
entry (or the reverse), and when a page does not follow the registry's
direction, names and word lists.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from server import languages
from server.domain import codenames
from tests.server_process import SourceClient

ROOT = Path(__file__).resolve().parent.parent
REGISTRY_FILE = ROOT / "server" / "languages.py"
CODES = "|".join(language.code for language in languages.REGISTRY)
# A language code in quotes, or a language's own name: a list of languages.
HARD_CODED = re.compile(rf"""(?<![\w-])["']({CODES})["']""")


def hard_coded_languages(text: str) -> list[str]:
    found = [m.group(0) for m in HARD_CODED.finditer(text)]
    found += [language.name for language in languages.REGISTRY[1:] if language.name in text]
    return found


def source_files() -> list[Path]:
    files = [*ROOT.joinpath("server").rglob("*.py"), *ROOT.joinpath("templates").rglob("*.html")]
    files += [*ROOT.joinpath("server", "static").glob("*.js")]
    files += [*ROOT.joinpath("server", "static").glob("*.css")]
    return sorted(p for p in files if p != REGISTRY_FILE)


def test_no_module_but_the_registry_lists_languages() -> None:
    # journalist_cli/designations.py is outside server/ on purpose: designations
    # are in the journalist's language and journalist_cli never imports server/.
    offenders = {
        str(p.relative_to(ROOT)): found
        for p in source_files()
        if (found := hard_coded_languages(p.read_text(encoding="utf-8")))
    }
    assert offenders == {}


def test_the_hard_coded_check_can_fail() -> None:
    assert hard_coded_languages('LANGUAGES = ("en", "fr")') == ['"en"', '"fr"']
    assert hard_coded_languages("units = ['o', 'Ko'] if lang == 'fr' else []") == ["'fr'"]
    assert hard_coded_languages('NAMES = {"x": "Español"}') == ["Español"]
    assert hard_coded_languages('path = f"/{lang}/submit"; lang="en-x"') == []


def test_catalogues_and_word_lists_match_the_registry() -> None:
    catalogues = {p.parent.parent.name for p in ROOT.glob("server/locale/*/LC_MESSAGES/*.po")}
    assert catalogues == set(languages.LANGUAGES)
    lists = {p.stem for p in ROOT.glob("server/wordlists/*.txt")}
    assert lists == set(languages.wordlists())
    assert len(set(languages.LANGUAGES)) == len(languages.REGISTRY)
    for language in languages.REGISTRY:
        assert language.direction in ("ltr", "rtl")
        assert len(language.size_units) == 4 and all(language.size_units)
        assert codenames.wordlist(language.wordlist).words  # loads: 2048 words
    assert {lang.code for lang in languages.REGISTRY if lang.direction == "rtl"} == {"ar"}


def test_spanish_and_italian_lists_are_the_official_bip39_ones() -> None:
    # server/wordlists/README.md records where they come from and these digests.
    import hashlib

    expected = {
        "es": "46846a5a0139d1e3cb77293e521c2865f7bcdb82c44e8d0a06a2cd0ecba48c0b",
        "it": "d392c49fdb700a24cd1fceb237c1f65dcc128f6b34a8aacb58b59384b5c648c2",
    }
    for name, digest in expected.items():
        data = (ROOT / "server" / "wordlists" / f"{name}.txt").read_bytes()
        assert hashlib.sha256(data).hexdigest() == digest
        assert digest in (ROOT / "server" / "wordlists" / "README.md").read_text()


@pytest.mark.parametrize("language", languages.REGISTRY, ids=lambda language: language.code)
def test_a_new_source_gets_a_codename_from_its_languages_list(served, language) -> None:  # type: ignore[no-untyped-def]
    _instance, server = served
    with SourceClient(server.base_url, language.code) as src:
        codename = src.first_submission("word list check")
        page = src.get(f"/{language.code}/codename").text
    wordlist = codenames.wordlist(language.wordlist)
    assert all(word in wordlist.words for word in codename.split())
    # Codes and codenames read left to right on a right-to-left page too.
    assert 'id="codename" dir="ltr"' in page
    assert f'<html lang="{language.code}" dir="{language.direction}">' in page


def test_the_arabic_home_page_isolates_fingerprints(served) -> None:  # type: ignore[no-untyped-def]
    instance, server = served
    with SourceClient(server.base_url, "ar") as src:
        page = src.get("/ar/").text
        form = src.get("/ar/submit").text
    assert '<html lang="ar" dir="rtl">' in page
    for j in instance.journalists:
        # Without dir="ltr" the bidi algorithm lays digit groups right to left
        # in an Arabic paragraph: the groups would read in the wrong order.
        assert f'<span class="fingerprint" dir="ltr">{j.public.fingerprint}</span>' in page
    assert 'data-units="بايت كيلوبايت ميغابايت غيغابايت"' in form
    assert "2 غيغابايت" in form  # the form's file size limit, in the registry's units


def test_the_busy_answer_before_any_route_speaks_every_language() -> None:
    # A connection over the cap gets a plain 503 before any language is known
    # (server/ops/serving.py): one line per registry language, from its catalogue.
    from server.ops.serving import BUSY_MESSAGE, BUSY_RESPONSE
    from server.web.i18n import load_translations

    body = BUSY_RESPONSE.split(b"\r\n\r\n", 1)[1].decode()
    lines = body.splitlines()
    assert len(lines) == len(languages.REGISTRY)
    for language, line in zip(languages.REGISTRY, lines, strict=True):
        assert line == load_translations(language.code).gettext(BUSY_MESSAGE)
    assert len(set(lines)) == len(lines)  # each line translated
