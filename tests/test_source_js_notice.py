"""The pages say truthfully how what a source sends is encrypted, in real browsers.

Home and submit pages, in French and English, in Debian's Chromium (Playwright)
and Firefox ESR with Tor Browser's prefs (Marionette):

- JavaScript off (Chromium without JS, Firefox "Safest"): the server-side
  statement "your browser is not running JavaScript", and nothing else;
- JavaScript on with WebCrypto X25519 (Chromium, Firefox "Safer"): the page
  says the browser encrypts, and not that the server sees plaintext;
- JavaScript on in a browser that cannot encrypt here (an insecure context:
  no WebCrypto): the page says the browser is not encrypting.

Before this, the home page told every browser that it was not running JavaScript.
"""

from __future__ import annotations

import pytest

from tests.e2e import browsers
from tests.server_process import Instance, Server
from tests.waiting import wait_until

pytestmark = pytest.mark.browser

PAGES = ("/en/", "/en/submit", "/fr/", "/fr/submit")
# The beginning of each statement, per language.
NO_JS = {
    "en": "Because your browser is not running JavaScript",
    "fr": "Comme votre navigateur n'exécute pas JavaScript",
}
NOT_ENCRYPTING = {
    "en": "Your browser is not encrypting on this page",
    "fr": "Votre navigateur ne chiffre pas sur cette page",
}
ENCRYPTS = {
    "en": "Your browser encrypts your message",
    "fr": "Votre navigateur chiffre votre message",
}


def statements(browser: browsers.Browser) -> set[str]:
    """Which of the three statements the page shows (its visible text only)."""
    text = " ".join(browser.text("main").split()).replace("\u2019", "'")
    found = set()
    for name, texts in (
        ("no-js", NO_JS),
        ("not-encrypting", NOT_ENCRYPTING),
        ("encrypts", ENCRYPTS),
    ):
        if any(t in text for t in texts.values()):
            found.add(name)
    return found


def check(browser: browsers.Browser, base: str, expected: str) -> None:
    for path in PAGES:
        browser.goto(base + path)
        if expected == "encrypts":
            # The script swaps the statements once it has checked WebCrypto.
            wait_until(lambda: "encrypts" in statements(browser), 20, f"{path}: no JS statement")
        lang = path.split("/")[1]
        assert statements(browser) == {expected}, (browser.name, path)
        text = " ".join(browser.text("main").split()).replace("\u2019", "'")
        wanted = {"no-js": NO_JS, "not-encrypting": NOT_ENCRYPTING, "encrypts": ENCRYPTS}
        assert wanted[expected][lang] in text, (browser.name, path)


@pytest.mark.parametrize("javascript", [False, True], ids=["js-off", "js-on"])
def test_chromium(served: tuple[Instance, Server], javascript: bool) -> None:
    _, server = served
    with browsers.chromium(javascript=javascript) as chromium:
        check(chromium, server.base_url, "encrypts" if javascript else "no-js")


@pytest.mark.parametrize(("level", "expected"), [("safest", "no-js"), ("safer", "encrypts")])
def test_firefox_tor_browser_levels(
    served: tuple[Instance, Server], level: str, expected: str
) -> None:
    _, server = served
    with browsers.firefox(level) as firefox:
        check(firefox, server.base_url, expected)


def test_a_browser_that_cannot_encrypt_is_told_so(served: tuple[Instance, Server]) -> None:
    """JavaScript runs, but over plain http to a name that is not this machine the
    page is not a secure context: no WebCrypto, so the server-side path is used."""
    _, server = served
    port = server.base_url.rsplit(":", 1)[1]
    rules = "--host-resolver-rules=MAP lanterne.test 127.0.0.1"
    with browsers.chromium(javascript=True, extra_args=[rules]) as chromium:
        check(chromium, f"http://lanterne.test:{port}", "not-encrypting")
