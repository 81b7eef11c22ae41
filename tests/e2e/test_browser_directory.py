"""The browser encrypts only to a key directory signed by the newsroom key the
page names, never older than the page's serial (issue 15 §5; envelope/SPEC.md
§11; upload.js signedJournalists), in Chromium and in Firefox ESR at Safer."""

from __future__ import annotations

import sqlite3
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

import envelope
from tests.e2e import browsers
from tests.e2e.test_browser_uploads import firefox_by, latest_manifest, read_object
from tests.server_process import ROOT, SERVER_CMD, Instance, init_instance, run_server
from tests.test_newsroom_key import newsroom_identity
from tests.test_site_integrity import Proxy, proxy_url, reverse_proxy
from tests.waiting import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

REFUSAL = "failed its check"


def admin(*args: object) -> None:
    done = subprocess.run(
        [*SERVER_CMD, *map(str, args)], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr


def stored_document(instance: Instance) -> str:
    with sqlite3.connect(instance.data_dir / "lanterne.sqlite3") as conn:
        (value,) = conn.execute("SELECT value FROM meta WHERE key = 'key_directory'").fetchone()
    return str(value)


def store_document(instance: Instance, document: str) -> None:
    with sqlite3.connect(instance.data_dir / "lanterne.sqlite3") as conn:
        conn.execute("UPDATE meta SET value = ? WHERE key = 'key_directory'", (document,))


@pytest.fixture(scope="module")
def signed(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Instance, Proxy, str, str]]:
    """A served instance whose directory is at serial 2, with the serial-1 document
    (validly signed, older) and one signed by another key, to swap in."""
    base = tmp_path_factory.mktemp("directory")
    instance = init_instance(base)
    key_file, _newsroom = newsroom_identity(base / "keys")
    other_file, _other = newsroom_identity(base / "keys", "intruder")
    admin("init", "--data-dir", instance.data_dir, "--newsroom-key", key_file)
    older = stored_document(instance)
    # Another newsroom's directory of the same journalists, from a scratch copy.
    scratch = init_instance(base / "scratch")
    admin("directory", "sign", "--data-dir", scratch.data_dir, "--newsroom-key", other_file)
    foreign = stored_document(scratch)
    admin("directory", "sign", "--data-dir", instance.data_dir, "--newsroom-key", key_file)
    with run_server(instance) as server:
        port = int(server.base_url.rsplit(":", 1)[1])
        with reverse_proxy(port) as proxy:
            yield instance, proxy, older, foreign


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    with browsers.playwright_chromium() as browser:
        yield browser


@pytest.fixture(scope="module")
def firefox() -> Iterator[Any]:
    with browsers.marionette("safer") as client:
        client.timeout.script = 120
        yield client


def tus_requests(proxy: Proxy) -> int:
    return sum(1 for _m, p, _b, _s in proxy.requests if p.startswith("/tus"))


def chromium_send(browser: Any, base: str, message: str, swap: Any = None) -> Any:
    """Load the form (which pins the key and serial), optionally change the stored
    directory, then send; returns the page."""
    page = browser.new_context().new_page()
    page.goto(f"{base}/en/submit")
    page.wait_for_selector("#path-browser", state="visible")
    if swap is not None:
        swap()
    page.fill("#message", message)
    page.click("button[type=submit]")
    return page


def test_chromium_encrypts_to_the_signed_directory(signed, chromium) -> None:
    instance, proxy, _older, _foreign = signed
    proxy.requests.clear()
    page = chromium_send(chromium, proxy_url(proxy), "signed-directory-chromium")
    page.wait_for_url("**/en/codename", timeout=120_000)
    page.context.close()
    assert tus_requests(proxy) > 0  # the browser encrypted, not the server
    manifest = latest_manifest(instance)
    assert read_object(instance, manifest["message"]["object"]) == b"signed-directory-chromium"


@pytest.mark.parametrize("which", ["older", "foreign"])
def test_chromium_refuses_an_older_or_foreign_directory(signed, chromium, which: str) -> None:
    """An older directory is still validly signed, and the server serves it (a replay
    by whoever can write the database): only the page's serial stops it. A directory
    of another newsroom key makes the server serve none: the page stops too."""
    instance, proxy, older, foreign = signed
    current = stored_document(instance)
    before = sorted(p.name for p in instance.objects_dir.rglob("*") if p.is_file())
    proxy.requests.clear()
    try:
        page = chromium_send(
            chromium,
            proxy_url(proxy),
            f"refused-{which}",
            swap=lambda: store_document(instance, older if which == "older" else foreign),
        )
        wait_until(lambda: REFUSAL in page.inner_text("#upload-status"), 60, "no refusal shown")
        assert page.url.endswith("/en/submit")
        page.context.close()
    finally:
        store_document(instance, current)
    assert tus_requests(proxy) == 0  # nothing was encrypted or sent
    assert not any(m == "POST" and p.endswith("/submit") for m, p, _b, _s in proxy.requests)
    after = sorted(p.name for p in instance.objects_dir.rglob("*") if p.is_file())
    assert after == before


def test_firefox_safer_checks_the_directory(signed, firefox) -> None:
    instance, proxy, older, _foreign = signed
    by = firefox_by()
    assert firefox.execute_script("return typeof WebAssembly") == "undefined"  # Safer applied
    base = proxy_url(proxy)

    def send(message: str) -> None:
        firefox.delete_all_cookies()
        firefox.navigate(f"{base}/fr/submit")
        wait_until(
            lambda: firefox.find_element(by.ID, "path-browser").is_displayed(),
            20,
            "JS path not shown: Ed25519 or X25519 missing at Safer?",
        )
        firefox.find_element(by.ID, "message").send_keys(message)

    proxy.requests.clear()
    send("signed-directory-firefox")
    firefox.find_element(by.CSS_SELECTOR, "button[type=submit]").click()
    wait_until(lambda: firefox.get_url().endswith("/fr/codename"), 120, "no codename page")
    assert tus_requests(proxy) > 0
    manifest = latest_manifest(instance)
    assert read_object(instance, manifest["message"]["object"]) == b"signed-directory-firefox"

    current = stored_document(instance)
    proxy.requests.clear()
    send("refused-older-firefox")
    store_document(instance, older)
    try:
        firefox.find_element(by.CSS_SELECTOR, "button[type=submit]").click()
        status = firefox.find_element(by.ID, "upload-status")
        wait_until(lambda: "pas passé la vérification" in status.text, 60, "no refusal shown")
    finally:
        store_document(instance, current)
    assert tus_requests(proxy) == 0


def test_the_served_directory_verifies_as_the_page_pins_it(signed) -> None:
    """The serial and key the page pins are those of the stored directory."""
    import httpx

    instance, proxy, _older, _foreign = signed
    form = httpx.get(f"{proxy_url(proxy)}/en/submit").text
    directory = envelope.verify_directory(stored_document(instance), _pinned_key(form))
    assert f'data-directory-serial="{directory.serial}"' in form and directory.serial == 2


def _pinned_key(page: str) -> bytes:
    import base64
    import re

    match = re.search(r'data-newsroom-key="([A-Za-z0-9_-]+)"', page)
    assert match
    text = match.group(1)
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
