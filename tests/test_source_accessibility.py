"""axe-core in Chromium: no WCAG 2.2 A or AA violation on any source page, in every
language of the registry, with JavaScript on and off.

axe-core comes from the npm registry: `scripts/bootstrap.sh --test` runs
`npm ci` on tests/js/package-lock.json (pinned version and integrity). axe needs
JavaScript to run, so the context has JS on and bypasses our CSP for the
injected script only. "JavaScript off" is the page a browser without JavaScript
shows: each HTML document reaches the browser with its <script> elements removed
and its <noscript> contents unwrapped. (In a Chromium context with JavaScript
disabled no evaluated script completes, not even axe's promises.)
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from server.languages import LANGUAGES
from tests.e2e import browsers
from tests.server_process import ROOT, SERVER_CMD, Instance, Server, init_instance, run_server
from tests.test_newsroom_key import newsroom_identity

pytestmark = pytest.mark.browser

AXE_DIR = Path(__file__).resolve().parent / "js"
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22a", "wcag22aa"]


def axe_source() -> str:
    script = AXE_DIR / "node_modules" / "axe-core" / "axe.min.js"
    if not script.exists():
        pytest.fail(f"{script} is missing: scripts/bootstrap.sh --test installs it (npm ci)")
    return script.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Instance, Server]]:
    """An instance whose newsroom key certified its receipt key, so that the
    receipt page (envelope/SPEC.md §12) is among the pages checked."""
    base = tmp_path_factory.mktemp("accessibility")
    instance = init_instance(base)
    key_file, _newsroom = newsroom_identity(base / "newsroom")
    done = subprocess.run(
        [*SERVER_CMD, "init", "--data-dir", instance.data_dir, "--newsroom-key", key_file],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert "receipt key certified" in done.stdout, done.stderr
    with run_server(instance) as server:
        yield instance, server


@pytest.fixture(scope="module")
def page_factory() -> Iterator[Any]:
    with browsers.playwright_chromium() as browser:
        yield browser


def violations(page: Any, axe: str) -> list[str]:
    page.add_script_tag(content=axe)
    result = page.evaluate(
        "tags => axe.run(document, {runOnly: {type: 'tag', values: tags}})", AXE_TAGS
    )
    assert result["passes"], "axe ran no check"
    return [
        f"{v['id']} ({v['impact']}): {[n['target'] for n in v['nodes']]}"
        for v in result["violations"]
    ]


SCRIPT = re.compile(r"<script\b[^>]*>.*?</script>", re.S)
NOSCRIPT = re.compile(r"</?noscript>")


def without_javascript(html: str) -> str:
    """The document as a browser with JavaScript off builds it."""
    return NOSCRIPT.sub("", SCRIPT.sub("", html))


def serve_as_without_javascript(page: Any, stripped: list[str]) -> None:
    def handle(route: Any) -> None:
        # A POST goes through untouched; its 303 brings a GET, rewritten here.
        if route.request.resource_type != "document" or route.request.method != "GET":
            route.continue_()
            return
        response = route.fetch(max_redirects=0)
        body = response.text()
        changed = without_javascript(body)
        if changed != body:
            stripped.append(route.request.url)
        route.fulfill(response=response, body=changed)

    page.route("**/*", handle)


@pytest.mark.parametrize("javascript", [True, False], ids=["js-on", "js-off"])
@pytest.mark.parametrize("lang", LANGUAGES)
def test_no_wcag_violation_on_any_page(served, page_factory, lang: str, javascript: bool) -> None:
    _instance, server = served
    axe = axe_source()
    ctx = page_factory.new_context(bypass_csp=True)
    page = ctx.new_page()
    stripped: list[str] = []
    if not javascript:
        serve_as_without_javascript(page, stripped)
    checked: dict[str, list[str]] = {}

    def check(name: str) -> None:
        assert page.evaluate("document.documentElement.lang") == lang
        if not javascript:
            assert page.evaluate("document.scripts.length") == 0, name
        checked[name] = violations(page, axe)

    for path in ("", "submit", "login", "nowhere"):
        page.goto(f"{server.base_url}/{lang}/{path}")
        check(path or "home")
    # Go through the form to reach the logged-in pages.
    page.goto(f"{server.base_url}/{lang}/submit")
    page.fill("#message", "accessibility check")
    page.click("button[type=submit]")
    page.wait_for_url(f"**/{lang}/codename")
    check("codename")
    for path in ("receipt", "inbox", "delete"):
        page.goto(f"{server.base_url}/{lang}/{path}")
        check(path)
    # The logged-out notice (error pages share error.html with the 404 above).
    page.goto(f"{server.base_url}/{lang}/inbox")
    page.click("form[action$='logout'] button")
    check("logged-out")
    if not javascript:
        # The submit page's scripts and <noscript> notice were really taken out.
        assert any(url.endswith(f"/{lang}/submit") for url in stripped), stripped
    # The check can fail: a page with an unlabelled field and no language is caught.
    page.set_content("<html><body><input type=text></body></html>")
    assert violations(page, axe)
    ctx.close()
    assert len(checked) == 9
    assert {name: v for name, v in checked.items() if v} == {}
