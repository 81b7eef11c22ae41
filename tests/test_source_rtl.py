"""Right-to-left pages (Arabic) lay out right to left in Chromium and in Firefox ESR.

For each right-to-left language of the registry, each browser walks the source
pages (home, form, login, an error page, then the codename, replies and delete
pages after a first message), saves a
screenshot of each under a temporary folder (its path is printed; the
screenshots were looked at when this test was written), and asserts what the
layout must show: the document's direction is rtl; each page's main heading
hugs the right edge of the content and leaves room on its left; the site name
is at the header's right edge; the error box's bar is on its right; the
language menu runs from right to left; and codes read left to right
inside the right-to-left page (the first group of a fingerprint and the first
word of the codename are left of the second). An
English page is measured the same way, so the measures are shown to tell the
two directions apart. Chromium runs with JavaScript off and on; Firefox with
Tor Browser's "Safest" prefs (JavaScript off), as sources often do.
"""

from __future__ import annotations

import base64
import tempfile
import warnings
from pathlib import Path
from typing import Any

import pytest

from server.languages import REGISTRY
from tests.e2e import browsers
from tests.test_source_browsers import reply_to_latest_source
from tests.waiting import wait_until

pytestmark = pytest.mark.browser

RTL = [language.code for language in REGISTRY if language.direction == "rtl"]
VIEWPORT = (900, 1100)
TOLERANCE = 2.0  # CSS pixels

# Returns the layout facts asserted below; runs as a function body (Marionette)
# and as an expression (Playwright), with no page script needed.
LAYOUT_JS = """
const box = (el) => el.getBoundingClientRect();
const textBox = (el) => {
  const r = document.createRange(); r.selectNodeContents(el); return r.getBoundingClientRect();
};
const charsBox = (el, from, to) => {
  const node = el.firstChild; const r = document.createRange();
  r.setStart(node, from); r.setEnd(node, to); return r.getBoundingClientRect();
};
const main = document.querySelector("main");
const style = getComputedStyle(main);
const h1 = main.querySelector("h1");
const facts = {
  direction: getComputedStyle(document.documentElement).direction,
  lang: document.documentElement.lang,
  contentLeft: box(main).left + parseFloat(style.paddingLeft),
  contentRight: box(main).right - parseFloat(style.paddingRight),
  h1Left: textBox(h1).left,
  h1Right: textBox(h1).right,
  brandLeft: box(document.querySelector(".brand")).left,
  brandRight: box(document.querySelector(".brand")).right,
  headerLeft: box(document.querySelector("header.site")).left,
  headerRight: box(document.querySelector("header.site")).right,
  firstLanguageLeft: box(document.querySelector(".languages li:first-child")).left,
  lastLanguageLeft: box(document.querySelector(".languages li:last-child")).left,
  codes: [],
};
const reply = document.querySelector(".reply");
if (reply) {
  const text = textBox(reply);
  const inner = box(reply).right - parseFloat(getComputedStyle(reply).paddingRight);
  facts.reply = {
    direction: getComputedStyle(reply).direction,
    endsRight: Math.abs(text.right - inner) < 2,
  };
}
const error = document.querySelector(".error");
if (error) {
  const es = getComputedStyle(error);
  facts.errorBar = { left: es.borderLeftWidth, right: es.borderRightWidth };
}
for (const el of document.querySelectorAll(".fingerprint, #codename")) {
  const node = el.firstChild;
  if (!node || node.nodeType !== Node.TEXT_NODE || !el.textContent.trim()) continue;
  const text = el.textContent;
  const words = text.trim().split(" ");
  const start = text.indexOf(words[0]);
  const next = text.indexOf(words[1], start + words[0].length);
  const first = charsBox(el, start, start + words[0].length);
  const second = charsBox(el, next, next + words[1].length);
  facts.codes.push({
    direction: getComputedStyle(el).direction,
    sameLine: Math.abs(first.top - second.top) < 1,
    firstLeft: first.left,
    secondLeft: second.left,
  });
}
return facts;
"""

PAGES_BEFORE = ("", "submit", "login", "nowhere")
PAGES_AFTER = ("codename", "inbox", "delete")


def check_layout(facts: dict[str, Any], where: str, *, rtl: bool) -> None:
    assert facts["direction"] == ("rtl" if rtl else "ltr"), where
    width = facts["contentRight"] - facts["contentLeft"]
    if rtl:
        assert abs(facts["h1Right"] - facts["contentRight"]) <= TOLERANCE, (where, facts)
        assert facts["h1Left"] - facts["contentLeft"] > width * 0.05, (where, facts)
        assert abs(facts["brandRight"] - facts["headerRight"]) <= TOLERANCE, (where, facts)
        assert facts["firstLanguageLeft"] > facts["lastLanguageLeft"], (where, facts)
    else:
        assert abs(facts["h1Left"] - facts["contentLeft"]) <= TOLERANCE, (where, facts)
        assert facts["contentRight"] - facts["h1Right"] > width * 0.05, (where, facts)
        assert abs(facts["brandLeft"] - facts["headerLeft"]) <= TOLERANCE, (where, facts)
        assert facts["firstLanguageLeft"] < facts["lastLanguageLeft"], (where, facts)
    if "errorBar" in facts:
        bar = facts["errorBar"]
        assert (bar["right"], bar["left"]) == (("4px", "0px") if rtl else ("0px", "4px")), where
    for code in facts["codes"]:
        assert code["direction"] == "ltr", (where, code)
        assert code["sameLine"], (where, code)
        assert code["firstLeft"] < code["secondLeft"], (where, code)


@pytest.fixture(scope="module")
def shots() -> Path:
    # A fixed folder, not pytest's tmp_path (pytest keeps only its last three
    # runs' folders, and other runs on the machine rotate them away).
    folder = Path(tempfile.gettempdir()) / "lanterne-rtl-screenshots"
    folder.mkdir(exist_ok=True)
    print(f"\nscreenshots of the right-to-left pages: {folder}")
    return folder


@pytest.mark.parametrize("code", RTL)
@pytest.mark.parametrize("javascript", [False, True], ids=["js-off", "js-on"])
def test_rtl_pages_in_chromium(served, shots: Path, javascript: bool, code: str) -> None:  # type: ignore[no-untyped-def]
    instance, server = served
    seen: dict[str, dict[str, Any]] = {}
    with browsers.playwright_chromium() as browser:
        ctx = browser.new_context(  # type: ignore[attr-defined]
            java_script_enabled=javascript,
            viewport={"width": VIEWPORT[0], "height": VIEWPORT[1]},
        )
        page = ctx.new_page()

        def visit(path: str, name: str) -> None:
            page.goto(f"{server.base_url}/{code}/{path}")
            # Sync evaluation runs even with JavaScript off (no promise is used).
            seen[name] = page.evaluate(f"(() => {{ {LAYOUT_JS} }})()")
            page.screenshot(
                path=str(shots / f"{code}-chromium-{'js' if javascript else 'nojs'}-{name}.png"),
                full_page=True,
            )

        for path in PAGES_BEFORE:
            visit(path, path or "home")
        page.goto(f"{server.base_url}/{code}/submit")
        page.fill("#message", "فحص الاتجاه من اليمين إلى اليسار")
        page.click("button[type=submit]")
        page.wait_for_url(f"**/{code}/codename")
        codename = page.inner_text("#codename").strip()
        for path in PAGES_AFTER:
            visit(path, path)
        # A reply in English shows left to right in the right-to-left page.
        reply_to_latest_source(instance, "Thank you, we have read it. (1/2)")
        page.goto(f"{server.base_url}/{code}/login")
        page.fill("#codename", codename)
        page.click("button[type=submit]")
        page.wait_for_url(f"**/{code}/inbox")
        visit("inbox", "inbox-with-reply")
        page.goto(f"{server.base_url}/en/nowhere")
        english = page.evaluate(f"(() => {{ {LAYOUT_JS} }})()")
        ctx.close()
    for name, facts in seen.items():
        assert facts["lang"] == code, name
        check_layout(facts, f"chromium {name}", rtl=True)
    check_layout(english, "chromium english", rtl=False)
    assert len(seen["home"]["codes"]) >= 2  # journalists' and newsroom fingerprints
    assert len(seen["codename"]["codes"]) == 1
    assert "errorBar" in seen["nowhere"]
    assert seen["inbox-with-reply"]["reply"] == {"direction": "ltr", "endsRight": False}


@pytest.mark.parametrize("code", RTL)
def test_rtl_pages_in_firefox(served, shots: Path, code: str) -> None:  # type: ignore[no-untyped-def]
    with warnings.catch_warnings():
        # mozinfo/mozrunner use deprecated distro and telnetlib calls at import time.
        warnings.simplefilter("ignore", DeprecationWarning)
        from marionette_driver.by import By

    _instance, server = served
    seen: dict[str, dict[str, Any]] = {}
    with browsers.marionette("safest") as client:
        client.set_window_rect(width=VIEWPORT[0], height=VIEWPORT[1])

        def visit(path: str, name: str) -> None:
            client.navigate(f"{server.base_url}/{code}/{path}")
            seen[name] = client.execute_script(LAYOUT_JS, sandbox="system")
            png = base64.b64decode(client.screenshot(full=True))
            (shots / f"{code}-firefox-safest-{name}.png").write_bytes(png)

        for path in PAGES_BEFORE:
            visit(path, path or "home")
        client.navigate(f"{server.base_url}/{code}/submit")
        client.find_element(By.ID, "message").send_keys("فحص الاتجاه من اليمين إلى اليسار")
        client.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        wait_until(lambda: client.get_url().endswith(f"/{code}/codename"), 60, "no codename page")
        for path in PAGES_AFTER:
            visit(path, path)
        client.navigate(f"{server.base_url}/en/nowhere")
        english = client.execute_script(LAYOUT_JS, sandbox="system")
    for name, facts in seen.items():
        assert facts["lang"] == code, name
        check_layout(facts, f"firefox {name}", rtl=True)
    check_layout(english, "firefox english", rtl=False)
    assert len(seen["codename"]["codes"]) == 1
