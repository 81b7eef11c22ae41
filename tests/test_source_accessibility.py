"""axe-core in Chromium: no WCAG 2.2 A or AA violation on any source page, in both languages.

axe-core comes from the npm registry: `scripts/bootstrap.sh --test` runs
`npm ci` on tests/js/package-lock.json (pinned version and integrity). axe needs
JavaScript to run, so this context has JS on and bypasses our CSP for the
injected script only; the pages themselves contain no script.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e import browsers

pytestmark = pytest.mark.browser

AXE_DIR = Path(__file__).resolve().parent / "js"
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22a", "wcag22aa"]


def axe_source() -> str:
    script = AXE_DIR / "node_modules" / "axe-core" / "axe.min.js"
    if not script.exists():
        pytest.fail(f"{script} is missing: scripts/bootstrap.sh --test installs it (npm ci)")
    return script.read_text(encoding="utf-8")


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


@pytest.mark.parametrize("lang", ["en", "fr"])
def test_no_wcag_violation_on_any_page(served, page_factory, lang: str) -> None:
    _instance, server = served
    axe = axe_source()
    ctx = page_factory.new_context(bypass_csp=True)
    page = ctx.new_page()
    checked: dict[str, list[str]] = {}

    def check(name: str) -> None:
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
    for path in ("inbox", "delete"):
        page.goto(f"{server.base_url}/{lang}/{path}")
        check(path)
    # The logged-out notice (error pages share error.html with the 404 above).
    page.goto(f"{server.base_url}/{lang}/inbox")
    page.click("form[action$='logout'] button")
    check("logged-out")
    # The check can fail: a page with an unlabelled field and no language is caught.
    page.set_content("<html><body><input type=text></body></html>")
    assert violations(page, axe)
    ctx.close()
    assert len(checked) == 8
    assert {name: v for name, v in checked.items() if v} == {}
