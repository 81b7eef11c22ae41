"""Receipts in a real browser (issue 16 §5): Chromium submits through the page,
with JavaScript on (the page encrypts and uploads with tus) and off (the plain
form), follows the codename page's link to the receipt, and the text shown
verifies against the newsroom key and covers exactly the stored ciphertexts."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import envelope
from journalist_cli.identity_store import JournalistIdentity, write_new_identity
from tests.e2e import browsers
from tests.server_process import Instance, Server, db_rows, run_server
from tests.test_newsroom_key import newsroom_identity
from tests.test_receipts_server import admin

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def signed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Instance, Server, bytes]]:
    base = tmp_path_factory.mktemp("receipts-browser")
    keys = base / "keys"
    write_new_identity(JournalistIdentity.generate("alice"), keys, None)
    key_file, newsroom = newsroom_identity(base / "newsroom")
    data = base / "data"
    done = admin(
        "init", "--data-dir", data, "--journalist", keys / "alice.pub", "--newsroom-key", key_file
    )
    assert done.returncode == 0, done.stderr
    instance = Instance(data, [], base / "server-tmp", base / "server.log")
    instance.tmp_dir.mkdir()
    with run_server(instance) as server:
        yield instance, server, newsroom


def latest_objects_hash(instance: Instance) -> str:
    sub_id = db_rows(instance, "submissions")[-1][0]
    ids = [r[0] for r in db_rows(instance, "objects") if r[1] == sub_id]
    hashes = [hashlib.sha256((instance.objects_dir / str(i)).read_bytes()).digest() for i in ids]
    return envelope.receipt_objects_hash(hashes).hex()


@pytest.mark.parametrize("javascript", [True, False], ids=["js-on", "js-off"])
def test_the_page_offers_a_receipt_that_verifies(
    signed: tuple[Instance, Server, bytes], tmp_path: Path, javascript: bool
) -> None:
    instance, server, newsroom = signed
    document = tmp_path / "note.txt"
    document.write_bytes(b"receipt in a browser " + javascript.__repr__().encode())
    with browsers.playwright_chromium() as browser:
        ctx = browser.new_context(java_script_enabled=javascript)
        page = ctx.new_page()
        uploads: list[str] = []
        page.on("request", lambda r: uploads.append(r.url) if "/tus/" in r.url else None)
        page.goto(f"{server.base_url}/en/submit")
        page.fill("#message", "a receipt, please")
        page.set_input_files("#files", [str(document)])
        page.click("button[type=submit]")
        page.wait_for_url("**/en/codename")
        page.click("a[href='/en/receipt']")
        page.wait_for_url("**/en/receipt")
        text: Any = page.inner_text("#receipt")
        ctx.close()
    # The JavaScript path really went through the page's encrypted uploads.
    assert bool(uploads) == javascript
    receipt = envelope.verify_receipt(str(text), newsroom)
    assert receipt.objects == 3
    assert receipt.sha256 == latest_objects_hash(instance)
