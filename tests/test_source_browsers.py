"""Real browsers with JavaScript off go through the whole source journey.

Debian's Chromium (Playwright, ``java_script_enabled=False``) and Debian's
Firefox ESR (Marionette, Tor Browser's "Safest" prefs) each: open the home
page, follow the plain link to the form, type a message, attach two files,
answer a question, send, read the codename, then log back in from a fresh
browser context and read a reply a journalist wrote to them. A missing
browser fails the test (`scripts/bootstrap.sh --test` installs both).
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any

import pytest

import envelope
from server.domain.source_lifecycle import SourceLifecycle
from server.domain.sources import store_reply
from server.languages import LANGUAGES
from server.store.db import Database
from server.store.objects import ObjectStore
from server.store.sources import SqliteSourceStore
from tests.e2e import browsers
from tests.server_process import Instance, db_rows
from tests.waiting import wait_until

pytestmark = pytest.mark.browser


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
        SourceLifecycle(
            SqliteSourceStore(Database(instance.data_dir / "lanterne.sqlite3")),
            ObjectStore(instance.objects_dir),
        ),
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


@pytest.mark.parametrize("lang", LANGUAGES)
def test_chromium_without_javascript(served, upload_files: list[Path], lang: str) -> None:
    instance, server = served
    message = f"Chromium sans JavaScript ({lang}).\nDeuxième ligne."
    with browsers.playwright_chromium() as browser:
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


def wait_for_path(client: Any, path: str, timeout: float = 60) -> None:
    wait_until(lambda: client.get_url().endswith(path), timeout, f"never reached {path}")


def test_firefox_safest(served, upload_files: list[Path]) -> None:
    with warnings.catch_warnings():
        # mozinfo uses a deprecated distro call at import time.
        warnings.simplefilter("ignore", DeprecationWarning)
        from marionette_driver.by import By

    instance, server = served
    message = "Firefox au niveau « Le plus sûr »."
    with browsers.marionette("safest") as ff:
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
