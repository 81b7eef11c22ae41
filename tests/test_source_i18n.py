"""French and English: complete catalogs, language chosen by link only, light pages."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

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
        keywords={"_": None, "gettext": None, "N_": None},
    ):
        ids.add(message if isinstance(message, str) else message[0])
    return ids


@pytest.mark.parametrize("lang", ["en", "fr"])
def test_catalog_has_every_string(lang: str) -> None:
    ids = extracted_msgids()
    assert len(ids) > 80
    with (ROOT / "server" / "locale" / lang / "LC_MESSAGES" / "messages.po").open("rb") as f:
        catalog = read_po(f, locale=lang)
    in_catalog = {m.id for m in catalog if m.id}
    assert ids - in_catalog == set(), "run pybabel extract/update (see server/babel.cfg)"
    if lang == "fr":
        for message in catalog:
            if not message.id:
                continue
            assert message.string, f"untranslated: {message.id}"
            placeholders = re.findall(r"%\(\w+\)s", str(message.id))
            assert sorted(placeholders) == sorted(re.findall(r"%\(\w+\)s", message.string))


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


def test_every_page_exists_in_both_languages(server) -> None:
    with SourceClient(server.base_url, "en") as en, SourceClient(server.base_url, "fr") as fr:
        en_pages, fr_pages = source_pages(en, "en"), source_pages(fr, "fr")
    for name, page in fr_pages.items():
        assert '<html lang="fr">' in page, name
        assert '<html lang="en">' in en_pages[name], name
        assert visible_text(page) != visible_text(en_pages[name]), name
        # No English sentence left in the French page (fingerprint words excluded).
        for phrase in ("Send a first message", "Log in", "Home", "Your replies"):
            assert phrase not in visible_text(page).replace("English", ""), (name, phrase)
    assert "Nous transmettre des informations en sécurité" in fr_pages["home"]
    assert "Chiffrer et envoyer" in fr_pages["submit"]
    assert "Quelle administration ou organisation est concernée ?" in fr_pages["submit"]
    assert "Page introuvable" in fr_pages["nowhere"]


def test_language_is_chosen_by_link_never_by_accept_language(server) -> None:
    with SourceClient(server.base_url) as src:
        response = src.client.get("/", headers={"Accept-Language": "fr-FR,fr;q=0.9"})
        assert response.headers["location"] == "/en/"
        page = src.client.get("/en/submit", headers={"Accept-Language": "fr"})
        assert '<html lang="en">' in page.text
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
