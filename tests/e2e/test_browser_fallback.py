"""When the resumable path refuses (here: the instance's upload cap is tiny, so
creation answers 507), the page says what the plain form changes and, on the
source's click, sends the same form as without JavaScript: the message and
the file still arrive (issue 11, item 8). Real Chromium, real server."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import envelope
from tests.e2e import browsers
from tests.server_process import Instance, Server, db_rows, init_instance, run_server

pytestmark = [pytest.mark.e2e, pytest.mark.browser]


@pytest.fixture
def refusing(tmp_path: Path) -> Iterator[tuple[Instance, Server]]:
    instance = init_instance(tmp_path, config="[uploads]\nmax_bytes_total = 1000\n")
    with run_server(instance) as server:
        yield instance, server


def read_object(instance: Instance, object_id: str) -> bytes:
    data = (instance.objects_dir / object_id).read_bytes()
    return envelope.decrypt_bytes(data, instance.identities()[:1])


def test_a_refused_upload_goes_with_the_plain_form(refusing, tmp_path: Path) -> None:
    instance, server = refusing
    document = os.urandom(300_000)
    path = tmp_path / "rapport.bin"
    path.write_bytes(document)
    statuses: list[tuple[str, str, int]] = []
    with browsers.playwright_chromium() as browser:
        page: Any = browser.new_context().new_page()
        page.on("response", lambda r: statuses.append((r.request.method, r.url, r.status)))
        page.goto(f"{server.base_url}/en/submit")
        page.wait_for_selector("#path-browser", state="visible")
        page.fill("#message", "Le message part quand même.")
        page.set_input_files("#files", [str(path)])
        page.click("button[type=submit]")
        page.wait_for_selector("#upload-plain", state="visible")
        # Before the source chooses, the page says the server will see the plaintext.
        assert "plain form" in page.inner_text("#upload-status")
        assert page.is_visible("#path-server") and page.is_hidden("#path-browser")
        assert not db_rows(instance, "submissions")
        page.click("#upload-plain")
        page.wait_for_url("**/en/codename", timeout=60_000)
    assert any(m == "POST" and u.endswith("/tus/") and s == 507 for m, u, s in statuses)
    assert not any(u.endswith("/submit/commit") for _m, u, _s in statuses)
    [submission] = db_rows(instance, "submissions")
    objects = {r[2]: r[0] for r in db_rows(instance, "objects") if r[1] == submission[0]}
    manifest = json.loads(read_object(instance, str(objects["manifest"])))
    assert read_object(instance, manifest["message"]["object"]).decode() == (
        "Le message part quand même."
    )
    [sent] = manifest["files"]
    assert sent["name"] == "rapport.bin" and read_object(instance, sent["object"]) == document
    # The uploads created before the refusal were deleted, not left to expire.
    assert db_rows(instance, "uploads") == []
