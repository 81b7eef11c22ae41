"""Real browsers with JavaScript off go through the whole source journey.

Debian's Chromium (Playwright, ``java_script_enabled=False``) and Debian's
Firefox ESR (Marionette, Tor Browser's "Safest" prefs) each: open the home
page, follow the plain link to the form, type a message, attach two files,
answer a question, send, read the codename, then log back in from a fresh
browser context and read a reply a journalist wrote to them. A missing
browser fails the test (`scripts/bootstrap.sh --test` installs both).
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import subprocess
import tempfile
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import envelope
from server.db import Database
from server.sources import store_reply
from server.storage import ObjectStore
from tests.e2e import browsers
from tests.server_process import Instance, Server, db_rows, init_instance, run_server


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Instance, Server]]:
    instance = init_instance(tmp_path_factory.mktemp("browsers"))
    with run_server(instance) as server:
        yield instance, server


@pytest.fixture
def upload_files(tmp_path: Path) -> list[Path]:
    a = tmp_path / "rapport annuel été.pdf"
    a.write_bytes(b"%PDF-1.4\n" + os.urandom(150_000))
    b = tmp_path / "notes.txt"
    b.write_text("Réunion du 3 mars : décision prise sans vote.\n", encoding="utf-8")
    return [a, b]


def reply_to_latest_source(instance: Instance, text: str) -> None:
    source_id, reply_key = None, None
    sub = db_rows(instance, "submissions")[-1]
    for row in db_rows(instance, "sources"):
        if row[0] == sub[1]:
            source_id, reply_key = str(row[0]), bytes(row[2])  # type: ignore[arg-type]
    assert source_id and reply_key
    store_reply(
        Database(instance.data_dir / "lanterne.sqlite3"),
        ObjectStore(instance.objects_dir),
        source_id,
        text,
        reply_key,
        [j.public.recipient for j in instance.journalists],
        "2026-11-26",
    )


def check_submission(instance: Instance, message: str, files: list[Path]) -> None:
    """The latest submission decrypts to exactly what the browser sent."""
    objects = db_rows(instance, "objects")
    sub_id = db_rows(instance, "submissions")[-1][0]
    [manifest_id] = [r[0] for r in objects if r[1] == sub_id and r[2] == "manifest"]
    ident = instance.identities()[:1]
    read = lambda oid: envelope.decrypt_bytes((instance.objects_dir / str(oid)).read_bytes(), ident)  # noqa: E731
    manifest = json.loads(read(manifest_id))
    assert read(manifest["message"]["object"]).decode().replace("\r\n", "\n") == message
    got = {f["name"]: read(f["object"]) for f in manifest["files"]}
    assert got == {p.name: p.read_bytes() for p in files}
    assert manifest["answers"][0]["answer"] == "Ministère de l'Exemple"


# Chromium ------------------------------------------------------------------


@contextlib.contextmanager
def chromium_contexts() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    if not Path(browsers.CHROMIUM).exists():
        pytest.fail(f"Chromium is missing ({browsers.CHROMIUM}); run scripts/bootstrap.sh --test")
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=browsers.CHROMIUM, headless=True, args=["--no-sandbox"]
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.mark.parametrize("lang", ["fr", "en"])
def test_chromium_without_javascript(served, upload_files: list[Path], lang: str) -> None:
    instance, server = served
    message = f"Chromium sans JavaScript ({lang}).\nDeuxième ligne."
    with chromium_contexts() as browser:
        ctx = browser.new_context(java_script_enabled=False)
        page = ctx.new_page()
        page.goto(f"{server.base_url}/{lang}/")
        page.click(f"main a[href='/{lang}/submit']")
        page.fill("#message", message)
        page.set_input_files("#files", [str(p) for p in upload_files])
        page.fill("#q_administration", "Ministère de l'Exemple")
        page.click("button[type=submit]")
        page.wait_for_url(f"**/{lang}/codename")
        codename = page.inner_text("#codename").strip()
        assert len(codename.split()) == 9
        ctx.close()
        check_submission(instance, message, upload_files)

        reply_to_latest_source(instance, f"Bien reçu ({lang}), merci.")
        ctx = browser.new_context(java_script_enabled=False)
        page = ctx.new_page()
        page.goto(f"{server.base_url}/{lang}/login")
        page.fill("#codename", codename)
        page.click("button[type=submit]")
        page.wait_for_url(f"**/{lang}/inbox")
        assert f"Bien reçu ({lang}), merci." in page.inner_text("main")
        ctx.close()


# Firefox ESR with Tor Browser's Safest prefs -------------------------------


@contextlib.contextmanager
def firefox_safest() -> Iterator[Any]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from marionette_driver.marionette import Marionette

    if not Path(browsers.FIREFOX).exists():
        pytest.fail("firefox-esr is missing; run scripts/bootstrap.sh --test")
    port = browsers.free_port()
    prefs = {**browsers.AUTOMATION_PREFS, **browsers.SAFEST_PREFS, "marionette.port": port}
    with tempfile.TemporaryDirectory(prefix="lanterne-ff-") as profile:
        Path(profile, "user.js").write_text(
            "".join(
                f'user_pref("{k}", {str(v).lower() if isinstance(v, bool) else v});\n'
                for k, v in prefs.items()
            )
        )
        proc = subprocess.Popen(
            [
                browsers.FIREFOX,
                "-marionette",
                "-remote-allow-system-access",
                "-headless",
                "-no-remote",
                "-profile",
                profile,
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = Marionette(host="127.0.0.1", port=port)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ResourceWarning)
                client.start_session(timeout=90)
                gc.collect()
            yield client
        finally:
            with contextlib.suppress(Exception), warnings.catch_warnings():
                warnings.simplefilter("ignore", ResourceWarning)
                client.delete_session()
                gc.collect()
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def wait_for_path(client: Any, path: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not client.get_url().endswith(path):
        if time.monotonic() > deadline:
            raise TimeoutError(f"still on {client.get_url()}, expected {path}")
        time.sleep(0.1)


def test_firefox_safest(served, upload_files: list[Path]) -> None:
    with warnings.catch_warnings():
        # mozinfo uses a deprecated distro call at import time.
        warnings.simplefilter("ignore", DeprecationWarning)
        from marionette_driver.by import By

    instance, server = served
    message = "Firefox au niveau « Le plus sûr »."
    with firefox_safest() as ff:
        ff.navigate(f"{server.base_url}/fr/")
        ff.find_element(By.CSS_SELECTOR, "main a[href='/fr/submit']").click()
        wait_for_path(ff, "/fr/submit")
        ff.find_element(By.ID, "message").send_keys(message)
        ff.find_element(By.ID, "files").send_keys("\n".join(str(p) for p in upload_files))
        ff.find_element(By.ID, "q_administration").send_keys("Ministère de l'Exemple")
        ff.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        wait_for_path(ff, "/fr/codename")
        codename = ff.find_element(By.ID, "codename").text.strip()
        assert len(codename.split()) == 9
        check_submission(instance, message, upload_files)

        reply_to_latest_source(instance, "Réponse lue sans JavaScript.")
        ff.delete_all_cookies()
        ff.navigate(f"{server.base_url}/fr/login")
        ff.find_element(By.ID, "codename").send_keys(codename)
        ff.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        wait_for_path(ff, "/fr/inbox")
        assert "Réponse lue sans JavaScript." in ff.find_element(By.TAG_NAME, "main").text
