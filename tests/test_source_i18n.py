"""Every language of the registry: complete catalogs, language chosen by link only, light pages."""

from __future__ import annotations

import functools
import gettext
import re
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from server.languages import LANGUAGES, REGISTRY
from server.web.i18n import Pages
from tests.server_process import SourceClient, init_instance, run_server

ROOT = Path(__file__).resolve().parent.parent
PAGE_BUDGET = 50_000  # bytes, HTML plus the stylesheet: sources load it over Tor


def extracted_msgids() -> set[str]:
    method_map = [("server/**.py", "python"), ("templates/**.html", "jinja2")]
    options = {"templates/**.html": {"extensions": "jinja2.ext.i18n"}}
    ids = set()
    for _file, _line, message, _comments, _ctx in extract_from_dir(
        ROOT,
        method_map,
        options,
        keywords={"_": None, "gettext": None, "N_": None, "ngettext": (1, 2)},
    ):
        ids.add(message if isinstance(message, str) else message[0])
    return ids


def read_catalog(lang: str):  # type: ignore[no-untyped-def]
    with (ROOT / "server" / "locale" / lang / "LC_MESSAGES" / "messages.po").open("rb") as f:
        # abort_invalid: a broken entry (a msgid without its msgstr, left by a
        # merge) fails here, where Babel would only warn in the server's log.
        return read_po(f, locale=lang, abort_invalid=True)


PLACEHOLDER = re.compile(r"%\(\w+\)s|\{\w+\}")


def catalogue_problems(catalog) -> list[str]:  # type: ignore[no-untyped-def]
    """What is wrong in a translated catalogue: untranslated, fuzzy, left in
    English, or placeholders not the msgid's."""
    problems = []
    for message in catalog:
        if not message.id:
            continue
        if message.pluralizable:
            problems += _plural_problems(catalog, message)
            continue
        if not message.string:
            problems.append(f"untranslated: {message.id}")
        elif message.fuzzy:
            problems.append(f"fuzzy: {message.id}")
        elif message.string == message.id and len(str(message.id)) > 12:
            problems.append(f"left in English: {message.id}")
        elif sorted(PLACEHOLDER.findall(str(message.id))) != sorted(
            PLACEHOLDER.findall(str(message.string))
        ):
            problems.append(f"placeholders differ: {message.id}")
    return problems


def _plural_problems(catalog, message) -> list[str]:  # type: ignore[no-untyped-def]
    """A plural message needs every form of the language (Arabic has six), each
    translated; a form may leave out the number ("un jour") but add none."""
    forms = list(message.string)
    allowed = set(PLACEHOLDER.findall(str(message.id[1])))
    if message.fuzzy:
        return [f"fuzzy: {message.id[0]}"]
    if len(forms) != catalog.num_plurals or not all(forms):
        return [f"untranslated: {message.id[0]} ({catalog.num_plurals} forms)"]
    if any(set(PLACEHOLDER.findall(form)) - allowed for form in forms):
        return [f"placeholders differ: {message.id[0]}"]
    return []


@pytest.mark.parametrize("lang", LANGUAGES)
def test_catalog_has_every_string_translated(lang: str) -> None:
    """Every string of the code is in every catalogue, translated (English is the
    msgids), not fuzzy, with the same placeholders; no catalogue keeps a string
    the code no longer has."""
    ids = extracted_msgids()
    assert len(ids) > 80
    catalog = read_catalog(lang)
    assert not catalog.fuzzy, f"{lang}: the header is marked fuzzy (pybabel init does that)"
    in_catalog = {m.id if isinstance(m.id, str) else m.id[0] for m in catalog if m.id}
    missing = ids - in_catalog
    assert missing == set(), f"{lang}: add and translate (see server/babel.cfg): {sorted(missing)}"
    assert in_catalog - ids == set(), f"{lang}: strings the code no longer has"
    if lang != REGISTRY[0].code:
        assert catalogue_problems(catalog) == [], lang


# One word for one thing in each language, whoever adds the string: a source
# who reads "nombre en clave" on one page and "código" on the next may think
# they are two things. Keyed by English word; each value a stem the
# translation must contain (case-insensitive) whenever the msgid has the word.
GLOSSARY: dict[str, dict[str, str]] = {
    "fr": {"codename": "nom de code", "fingerprint": "empreinte", "newsroom": "rédaction"},
    "es": {"codename": "nombre en clave", "fingerprint": "huella", "newsroom": "redacción"},
    "it": {"codename": "nome in codice", "fingerprint": "impronta", "newsroom": "redazione"},
    "de": {"codename": "codename", "fingerprint": "fingerabdruck", "newsroom": "redaktion"},
    "ar": {"codename": "رمزي", "fingerprint": "بصم", "newsroom": "هيئة التحرير"},
}


def glossary_problems(catalog, terms: dict[str, str]) -> list[str]:  # type: ignore[no-untyped-def]
    return [
        f"{english!r} is not {term!r} in: {message.id}"
        for message in catalog
        if message.id and message.string
        for english, term in terms.items()
        if english in str(message.id).lower() and term not in str(message.string).lower()
    ]


@pytest.mark.parametrize("lang", sorted(GLOSSARY))
def test_each_catalogue_keeps_to_its_words(lang: str) -> None:
    assert glossary_problems(read_catalog(lang), GLOSSARY[lang]) == []


RETENTION = (
    "How long we keep your messages: what you sent and our replies are deleted about"
    " %(num)s day{} after your last login or message (we may keep them longer if the"
    " case needs it). Logging in again counts."
)
FILES = "You can choose several files at once: up to %(num)s file{}, each up to %(size)s."


@functools.cache
def _translations() -> dict[str, gettext.GNUTranslations | gettext.NullTranslations]:
    return Pages().translations  # as the server loads them, once for the module


@pytest.mark.parametrize(
    ("message", "lang", "n", "words"),
    [
        (RETENTION, "ar", 1, "بعد يوم واحد من"),
        (RETENTION, "ar", 2, "بعد يومين من"),
        (RETENTION, "ar", 7, "بعد نحو 7 أيام من"),
        (RETENTION, "ar", 30, "بعد نحو 30 يومًا من"),
        (RETENTION, "ar", 100, "بعد نحو 100 يوم من"),
        (RETENTION, "ar", 1825, "بعد نحو 1825 يومًا من"),
        (RETENTION, "fr", 1, "environ 1 jour après"),
        (RETENTION, "fr", 1825, "environ 1825 jours après"),
        (RETENTION, "de", 1, "etwa einen Tag nach"),
        (RETENTION, "de", 30, "etwa 30 Tage nach"),
        (RETENTION, "es", 30, "unos 30 días después"),
        (RETENTION, "it", 1, "circa un giorno dopo"),
        (RETENTION, "en", 1, "about 1 day after"),
        (RETENTION, "en", 30, "about 30 days after"),
        (FILES, "ar", 10, "حتى 10 ملفات،"),
        (FILES, "ar", 20, "حتى 20 ملفًا،"),
        (FILES, "fr", 20, "jusqu'à 20 fichiers,"),
        (FILES, "de", 1, "höchstens eine Datei,"),
        (FILES, "en", 20, "up to 20 files,"),
    ],
)
def test_numbers_take_their_plural_form(message: str, lang: str, n: int, words: str) -> None:
    # Arabic has six forms: 7 days is "أيام", 30 "يومًا", 100 "يوم" (one
    # catalogue string for every number was wrong for most of them).
    trans = _translations()[lang]
    line = trans.ngettext(message.format(""), message.format("s"), n)
    assert words in line % {"num": n, "size": "1 MB"}


def test_the_catalogue_check_can_fail() -> None:
    from babel.messages.catalog import Catalog

    catalog = Catalog(locale="es")
    catalog.add("Reply of %(day)s", "Respuesta")
    catalog.add("Home", "")
    catalog.add("Log in", "Entrar", flags=("fuzzy",))
    catalog.add("Send a first message", "Send a first message")
    catalog.add("Cancel", "Cancelar")
    catalog.add("Your codename", "Su código")
    catalog.add(("%(n)s day", "%(n)s days"), ("%(n)s día", ""))
    catalog.add(("%(n)s week", "%(n)s weeks"), ("una semana", "%(n)s semanas", "%(x)s semanas"))
    catalog.add(("%(n)s year", "%(n)s years"), ("un año", "%(n)s de años", "%(n)s años"))
    assert catalog.num_plurals == 3  # Spanish in CLDR: one, many, other
    assert glossary_problems(catalog, GLOSSARY["es"]) == [
        "'codename' is not 'nombre en clave' in: Your codename"
    ]
    assert catalogue_problems(catalog) == [
        "placeholders differ: Reply of %(day)s",
        "untranslated: Home",
        "fuzzy: Log in",
        "left in English: Send a first message",
        "untranslated: %(n)s day (3 forms)",
        "placeholders differ: %(n)s week",
    ]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    instance = init_instance(tmp_path_factory.mktemp("i18n"))
    with run_server(instance) as srv:
        yield srv


def visible_text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def source_pages(src: SourceClient, lang: str) -> dict[str, str]:
    pages = {}
    for name in ("", "submit", "login", "nowhere"):
        pages[name or "home"] = src.get(f"/{lang}/{name}").text
    codename = src.first_submission("i18n")
    assert codename
    for name in ("codename", "inbox", "delete"):
        pages[name] = src.get(f"/{lang}/{name}").text
    return pages


@pytest.fixture(scope="module")
def english_pages(server) -> dict[str, str]:
    with SourceClient(server.base_url, "en") as en:
        return source_pages(en, "en")


@pytest.mark.parametrize("language", REGISTRY[1:], ids=lambda language: language.code)
def test_every_page_exists_in_every_language(server, english_pages, language) -> None:  # type: ignore[no-untyped-def]
    code = language.code
    with SourceClient(server.base_url, code) as src:
        pages = source_pages(src, code)
    for name, page in pages.items():
        assert f'<html lang="{code}" dir="{language.direction}">' in page, name
        assert '<html lang="en" dir="ltr">' in english_pages[name], name
        assert visible_text(page) != visible_text(english_pages[name]), name
        # The menu names every language in its own name, linked with its code.
        for other in REGISTRY:
            if other.code != code:
                link = f'hreflang="{other.code}" lang="{other.code}" dir="auto">{other.name}</a>'
                assert link in page, (code, name, other.code)
        # No English sentence left (the language menu's names aside).
        text = visible_text(page)
        for other in REGISTRY:
            text = text.replace(other.name, "")
        english = ("Send a first message", "Log in", "Home", "Your replies", "Which administration")
        for phrase in english:
            assert phrase not in text, (code, name, phrase)
    if code == "fr":
        assert "Nous transmettre des informations en sécurité" in pages["home"]
        assert "Chiffrer et envoyer" in pages["submit"]
        assert "Quelle administration ou organisation est concernée ?" in pages["submit"]
        assert "Page introuvable" in pages["nowhere"]


def test_a_question_without_text_in_a_language_shows_the_catalogue_translation(server) -> None:
    # config.toml's default questions have English and French texts only: the
    # Spanish page shows the Spanish catalogue's translation of the English.
    with SourceClient(server.base_url, "es") as src:
        page = src.get("/es/submit").text
    assert "¿Qué administración u organización está implicada?" in page
    assert "Fechas o periodos, con la mayor precisión posible." in page


def test_language_is_chosen_by_link_never_by_accept_language(server) -> None:
    with SourceClient(server.base_url) as src:
        response = src.client.get("/", headers={"Accept-Language": "fr-FR,fr;q=0.9"})
        assert response.headers["location"] == "/en/"
        page = src.client.get("/en/submit", headers={"Accept-Language": "fr"})
        assert '<html lang="en" dir="ltr">' in page.text
        # The switch links point at the same page in the other language.
        assert 'href="/fr/submit" hreflang="fr"' in page.text
        assert '<span aria-current="true">English</span>' in page.text


def test_landing_lists_journalists_with_fingerprints(server) -> None:
    instance = server.instance
    with SourceClient(server.base_url) as src:
        page = src.get("/en/").text
    for j in instance.journalists:
        assert f"<strong>{j.public.name}</strong>" in page
        assert j.public.fingerprint in page
        assert re.fullmatch(r"(\d{5} ){7}\d{5}", j.public.fingerprint)


def test_every_page_weighs_under_50_kb_with_its_css(server) -> None:
    with SourceClient(server.base_url, "fr") as src:
        css = len(src.get("/static/style.css").content)
        pages = source_pages(src, "fr")
    assert css < 10_000
    for name, page in pages.items():
        assert len(page.encode()) + css < PAGE_BUDGET, name
