"""The desk choice on the submit page (issue 16 §1): it works in a browser with
JavaScript off, and passes axe-core (WCAG 2.2 A and AA) in every language,
as does the page that asks a source to choose (tests/test_source_accessibility.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from server.languages import LANGUAGES
from server.web.i18n import load_translations
from tests.server_process import Instance, Server, run_server
from tests.test_desks import desked_instance, readers, source_desks
from tests.test_source_accessibility import axe_source, page_factory, violations

pytestmark = [pytest.mark.browser, pytest.mark.e2e]
__all__ = ["page_factory"]  # the module's browser fixture, shared


@pytest.fixture(scope="module")
def desks(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Instance, Server]]:
    instance = desked_instance(tmp_path_factory.mktemp("desks-a11y"), signed=False)
    with run_server(instance) as server:
        yield instance, server


@pytest.mark.parametrize("lang", LANGUAGES)
def test_the_desk_choice_passes_axe(desks, page_factory, lang: str) -> None:
    _instance, server = desks
    axe = axe_source()
    ctx = page_factory.new_context(bypass_csp=True)
    page = ctx.new_page()
    page.goto(f"{server.base_url}/{lang}/submit")
    assert page.locator("fieldset.desks input[type=radio]").count() == 2
    assert violations(page, axe) == []
    ctx.close()


def test_with_javascript_off_a_source_chooses_a_desk(desks, page_factory, tmp_path: Path) -> None:
    """No script at all: the browser's own required check, then the plain form."""
    instance, server = desks
    ctx = page_factory.new_context(java_script_enabled=False)
    page = ctx.new_page()
    page.goto(f"{server.base_url}/fr/submit")
    legend = page.locator("fieldset.desks legend").inner_text()
    assert legend == "Qui doit recevoir votre envoi ?"
    assert page.locator("label[for=desk-legal]").inner_text() == "Service juridique"
    page.fill("#message", "desk-no-js-browser")
    page.click("button[type=submit]")
    page.wait_for_timeout(500)  # the browser refuses the unchosen radio group itself
    assert page.url.endswith("/fr/submit")
    before = {p.name for p in instance.objects_dir.iterdir()}
    page.keyboard.press("Tab")  # the group is reachable with the keyboard
    page.check("#desk-legal")
    page.click("button[type=submit]")
    page.wait_for_url("**/fr/codename")
    added = [p for p in instance.objects_dir.iterdir() if p.name not in before]
    assert added and all(readers(instance, p) == ["bruno", "chloe"] for p in added)
    assert "legal" in source_desks(instance).values()
    ctx.close()


@pytest.mark.parametrize("lang", LANGUAGES)
def test_the_choose_a_desk_page_passes_axe(desks, page_factory, lang: str) -> None:
    """The page a source sees when a desk is missing (a form sent without it)."""
    _instance, server = desks
    axe = axe_source()
    ctx = page_factory.new_context(bypass_csp=True)
    page = ctx.new_page()
    page.goto(f"{server.base_url}/{lang}/submit")
    page.evaluate("document.querySelectorAll('input[name=desk]').forEach(e => e.remove())")
    page.fill("#message", "no desk chosen")
    with page.expect_navigation():
        page.evaluate(
            "HTMLFormElement.prototype.submit.call(document.getElementById('submit-form'))"
        )
    title = load_translations(lang).gettext("Choose who should receive this")
    assert page.locator("h1").inner_text() == title
    assert page.locator("html").get_attribute("lang") == lang
    assert violations(page, axe) == []
    ctx.close()
