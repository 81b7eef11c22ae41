"""Encrypted uploads from real browsers with JavaScript on (docs/UPLOADS.md).

Debian's Chromium (Playwright) and Debian's Firefox ESR with Tor Browser's
"Safer" prefs (Marionette) submit through the real server on 127.0.0.1:

- with canary strings in the message, a file's contents, its name and an
  answer, behind a reverse proxy that records every request body: no canary
  in any body nor anywhere under the server's directories, and every stored
  envelope decrypts in Python to the exact bytes;
- cancelling deletes the uploads on the server;
- 256 MiB from Firefox "Safer"; 1 GiB from Chromium, and 192 MiB from
  Firefox "Safer" in French, while the server is killed and restarted
  mid-upload: the upload resumes and the object decrypts to the same SHA-256.

A missing browser fails (`scripts/bootstrap.sh --test` installs both).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import subprocess
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import envelope
from tests.e2e import browsers
from tests.server_process import (
    ROOT,
    SERVER_CMD,
    Instance,
    Server,
    db_rows,
    find_canaries,
    free_port,
    init_instance,
    run_server,
    wait_for_port,
)
from tests.test_site_integrity import Proxy, proxy_url, reverse_proxy
from tests.waiting import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

MiB = 1 << 20
ANSWER_FIELD = "q_administration"


# --- browsers, one start per module ----------------------------------------------


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    with browsers.playwright_chromium() as browser:
        yield browser


@pytest.fixture(scope="module")
def firefox() -> Iterator[Any]:
    """The Marionette client of a Firefox ESR with Tor Browser's Safer prefs."""
    with browsers.marionette("safer") as client:
        client.timeout.script = 600
        yield client


def firefox_by() -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from marionette_driver.by import By
    return By


def submit_in_chromium(
    browser: Any, base: str, message: str, files: list[Path], answer: str, timeout: float = 120
) -> Any:
    """Fill and send the form; returns the page, on the codename page."""
    ctx = browser.new_context()
    page = ctx.new_page()
    page.goto(f"{base}/en/submit")
    # upload.js decided this browser encrypts, and says so instead of the no-JS statement.
    page.wait_for_selector("#path-browser", state="visible")
    assert page.is_hidden("#path-server")
    assert page.is_hidden("#upload")
    page.fill("#message", message)
    page.set_input_files("#files", [str(f) for f in files])
    page.fill(f"#{ANSWER_FIELD}", answer)
    page.click("button[type=submit]")
    page.wait_for_url("**/en/codename", timeout=timeout * 1000)
    return page


def submit_in_firefox(
    client: Any, base: str, message: str, files: list[Path], answer: str, timeout: float = 120
) -> None:
    by = firefox_by()
    client.delete_all_cookies()
    client.navigate(f"{base}/fr/submit")
    wait_until(
        lambda: client.find_element(by.ID, "path-browser").is_displayed(), 20, "JS path not shown"
    )
    assert not client.find_element(by.ID, "path-server").is_displayed()
    client.find_element(by.ID, "message").send_keys(message)
    client.find_element(by.ID, "files").send_keys("\n".join(str(f) for f in files))
    client.find_element(by.ID, ANSWER_FIELD).send_keys(answer)
    client.find_element(by.CSS_SELECTOR, "button[type=submit]").click()
    wait_until(lambda: client.get_url().endswith("/fr/codename"), timeout, "no codename page")


# --- what the server kept ----------------------------------------------------------


def latest_manifest(instance: Instance) -> dict[str, Any]:
    sub_id = db_rows(instance, "submissions")[-1][0]
    [manifest_id] = [
        r[0] for r in db_rows(instance, "objects") if r[1] == sub_id and r[2] == "manifest"
    ]
    doc: dict[str, Any] = json.loads(read_object(instance, str(manifest_id)))
    return doc


def read_object(instance: Instance, object_id: str) -> bytes:
    data = (instance.objects_dir / object_id).read_bytes()
    return envelope.decrypt_bytes(data, instance.identities()[:1])


class _Hasher:
    def __init__(self) -> None:
        self.h = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.h.update(data)
        self.size += len(data)
        return len(data)


def object_sha256(instance: Instance, object_id: str) -> tuple[str, int]:
    """SHA-256 and size of a decrypted object, streamed (objects can be 1 GiB)."""
    out = _Hasher()
    with (instance.objects_dir / object_id).open("rb") as src:
        envelope.decrypt(src, out, instance.identities()[1:])  # type: ignore[arg-type]
    return out.h.hexdigest(), out.size


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(8 * MiB):
            h.update(block)
    return h.hexdigest()


def random_file(path: Path, size: int) -> Path:
    """Random bytes written in blocks: incompressible, and never held whole in memory."""
    with path.open("wb") as f:
        left = size
        while left:
            n = min(left, 16 * MiB)
            f.write(os.urandom(n))
            left -= n
    return path


# --- canaries ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Instance, Server, Proxy]]:
    instance = init_instance(tmp_path_factory.mktemp("js-uploads"))
    with run_server(instance) as server:
        port = int(server.base_url.rsplit(":", 1)[1])
        with reverse_proxy(port) as proxy:
            yield instance, server, proxy


def canary_files(tmp: Path, tag: str) -> tuple[list[bytes], str, str, list[Path]]:
    canaries = [
        f"CANARY-{tag}-{kind}-{os.urandom(6).hex()}" for kind in ("msg", "file", "name", "q")
    ]
    message = f"Message {canaries[0]} : réunion du 3 mars.\nDeuxième ligne."
    named = tmp / f"note {canaries[2]} été.txt"
    named.write_bytes(f"Preuve {canaries[1]} ".encode() * 1000)
    big = tmp / "scan.bin"
    # Several segments, with the canary straddling chunk and segment boundaries.
    big.write_bytes(
        os.urandom(65536 - 10)
        + canaries[1].encode()
        + os.urandom(4 * MiB)
        + canaries[1].encode() * 50
    )
    answer = f"Ministère {canaries[3]}"
    return [c.encode() for c in canaries], message, answer, [named, big]


def check_canary_submission(
    instance: Instance,
    proxy: Proxy,
    canaries: list[bytes],
    message: str,
    answer: str,
    files: list[Path],
    since: float,
) -> None:
    methods = {(m, p.split("/")[1]) for m, p, _b, _s in proxy.requests}
    # The JavaScript path really ran: tus uploads and a commit, no multipart form.
    assert ("PATCH", "tus") in methods and ("POST", "tus") in methods, methods
    assert not any(m == "POST" and p.endswith("/submit") for m, p, _b, _s in proxy.requests)
    assert any(m == "POST" and p.endswith("/submit/commit") for m, p, _b, _s in proxy.requests)
    patched = sum(len(b) for m, _p, b, _s in proxy.requests if m == "PATCH")
    assert patched > sum(f.stat().st_size for f in files)  # all of it went, encrypted
    for method, path, body, _status in proxy.requests:
        for c in canaries:
            assert c not in body, f"{method} {path} carries {c!r}"
            assert c.lower() not in body.lower()
    roots = [instance.data_dir, instance.tmp_dir]
    assert find_canaries(canaries, roots, since=since) == []

    manifest = latest_manifest(instance)
    assert manifest["type"] == "lanterne-manifest/v1"
    assert read_object(instance, manifest["message"]["object"]).decode() == message
    assert manifest["message"]["size"] == len(message.encode())
    got = {f["name"]: read_object(instance, f["object"]) for f in manifest["files"]}
    assert got == {f.name: f.read_bytes() for f in files}
    assert [f["size"] for f in manifest["files"]] == [f.stat().st_size for f in files]
    assert manifest["files"][0]["type"] == "text/plain"
    assert [(a["id"], a["answer"]) for a in manifest["answers"]] == [("administration", answer)]


def test_canaries_never_reach_the_server_from_chromium(served, chromium, tmp_path: Path) -> None:
    instance, _server, proxy = served
    canaries, message, answer, files = canary_files(tmp_path, "chromium")
    since = time.time()
    proxy.requests.clear()
    page = submit_in_chromium(chromium, proxy_url(proxy), message, files, answer)
    assert len(page.inner_text("#codename").split()) == 9
    page.context.close()
    check_canary_submission(instance, proxy, canaries, message, answer, files, since)


def test_canaries_never_reach_the_server_from_firefox_safer(
    served, firefox, tmp_path: Path
) -> None:
    instance, _server, proxy = served
    assert firefox.execute_script("return typeof WebAssembly") == "undefined"  # Safer applied
    canaries, message, answer, files = canary_files(tmp_path, "firefox")
    since = time.time()
    proxy.requests.clear()
    submit_in_firefox(firefox, proxy_url(proxy), message, files, answer)
    check_canary_submission(instance, proxy, canaries, message, answer, files, since)
    assert latest_manifest(instance)["language"] == "fr"


def test_cancel_deletes_the_uploads(served, chromium, tmp_path: Path) -> None:
    instance, server, _proxy = served
    port = int(server.base_url.rsplit(":", 1)[1])

    # Slow each PATCH down so that there is time to press Cancel mid-upload.
    def slow(method: str, _path: str) -> None:
        if method == "PATCH":
            time.sleep(0.4)

    big = random_file(tmp_path / "long.bin", 48 * MiB)
    with reverse_proxy(port, before_upstream=slow) as proxy:
        page = chromium.new_context().new_page()
        page.goto(f"{proxy_url(proxy)}/en/submit")
        page.wait_for_selector("#path-browser", state="visible")
        page.set_input_files("#files", [str(big)])
        page.click("button[type=submit]")
        page.wait_for_selector("#upload", state="visible")
        # Focus moved to the progress heading; the status is a live region.
        assert page.evaluate("document.activeElement.id") == "upload-title"
        assert page.get_attribute("#upload-status", "aria-live") == "polite"
        wait_until(
            lambda: page.eval_on_selector("#upload-all", "e => e.value") > 0, 60, "no progress"
        )
        assert "of" in page.inner_text("#upload-all-detail")
        page.click("#upload-cancel")
        wait_until(lambda: "cancelled" in page.inner_text("#upload-status"), 30, "not cancelled")
        created = [p for m, p, _b, s in proxy.requests if m == "POST" and p == "/tus/" and s == 201]
        deleted = {p for m, p, _b, s in proxy.requests if m == "DELETE" and s == 204}
        assert len(created) == 2  # the file and the manifest
        assert len(deleted) == 2
        for upload in deleted:
            head = "u => fetch(u, {method: 'HEAD', headers: {'Tus-Resumable': '1.0.0'}})"
            assert page.evaluate(head + ".then(r => r.status)", upload) in (404, 410)
        # The form works again, and nothing was submitted.
        assert page.evaluate("document.getElementById('submit-form').inert") is False
        assert page.evaluate("document.activeElement.type") == "submit"
        page.context.close()
    assert not any(p.endswith("/submit/commit") for _m, p, _b, _s in proxy.requests)
    uploads_dir = instance.data_dir / "uploads"
    leftover = [p for p in uploads_dir.rglob("*") if p.is_file()] if uploads_dir.exists() else []
    assert sum(p.stat().st_size for p in leftover) < MiB, leftover


# --- large files ---------------------------------------------------------------------


def test_256_mib_from_firefox_safer(served, firefox, tmp_path: Path) -> None:
    instance, server, _proxy = served
    big = random_file(tmp_path / "archive.tar", 256 * MiB)
    submit_in_firefox(firefox, server.base_url, "256 MiB", [big], "Firefox", timeout=480)
    [entry] = latest_manifest(instance)["files"]
    assert entry["size"] == 256 * MiB
    assert object_sha256(instance, entry["object"]) == (file_sha256(big), 256 * MiB)


@contextlib.contextmanager
def server_on(instance: Instance, port: int) -> Iterator[subprocess.Popen[bytes]]:
    """The server on a fixed port, so that a restarted one has the page's origin."""
    with instance.log_path.open("ab") as log:
        proc = subprocess.Popen(
            [*SERVER_CMD, "run", "--data-dir", str(instance.data_dir), "--port", str(port)],
            cwd=ROOT,
            env={**os.environ, "TMPDIR": str(instance.tmp_dir), "PYTHONDONTWRITEBYTECODE": "1"},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for_port(port, proc, 30, lambda: instance.log_path.read_text(errors="replace")[-3000:])
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def uploaded_bytes(instance: Instance) -> int:
    uploads = instance.data_dir / "uploads"
    if not uploads.exists():
        return 0
    return sum(p.stat().st_size for p in uploads.rglob("*") if p.is_file())


def test_1_gib_from_chromium_survives_a_server_restart(chromium, tmp_path: Path) -> None:
    instance = init_instance(tmp_path / "restart")
    big = random_file(tmp_path / "leak.bin", 1024 * MiB)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    page = chromium.new_context().new_page()
    with server_on(instance, port) as first:
        page.goto(f"{base}/en/submit")
        page.wait_for_selector("#path-browser", state="visible")
        page.fill("#message", "1 GiB, with a restart in the middle")
        page.set_input_files("#files", [str(big)])
        page.click("button[type=submit]")
        wait_until(lambda: uploaded_bytes(instance) > 300 * MiB, 300, "the upload never started")
        first.kill()  # no goodbye: as a crash or a power cut would do
        first.wait()
    at_kill = uploaded_bytes(instance)
    assert at_kill < 1024 * MiB
    # The page notices and waits, saying so.
    # (Polled from here: the page's CSP forbids the eval behind wait_for_function.)
    wait_until(lambda: "Trying again" in page.inner_text("#upload-status"), 60, "no retry shown")
    time.sleep(2)
    with server_on(instance, port):
        page.wait_for_url(lambda url: not url.endswith("/en/submit"), timeout=420_000)
        page.wait_for_load_state()
        # The session (in memory) died with the server; the page took a new
        # CSRF token, so the commit still works and a codename is shown.
        assert page.url.endswith("/en/codename"), page.inner_text("main")
        assert len(page.inner_text("#codename").split()) == 9
    page.context.close()
    manifest = latest_manifest(instance)
    [entry] = manifest["files"]
    assert entry["name"] == "leak.bin" and entry["size"] == 1024 * MiB
    assert object_sha256(instance, entry["object"]) == (file_sha256(big), 1024 * MiB)
    assert (
        read_object(instance, manifest["message"]["object"])
        == b"1 GiB, with a restart in the middle"
    )


def test_firefox_safer_upload_survives_a_server_restart(firefox, tmp_path: Path) -> None:
    """The same in Firefox with Tor Browser's Safer prefs, in French, on 192 MiB."""
    instance = init_instance(tmp_path / "ff-restart")
    big = random_file(tmp_path / "carnet.bin", 192 * MiB)
    port = free_port()
    by = firefox_by()
    with server_on(instance, port) as first:
        firefox.delete_all_cookies()
        firefox.navigate(f"http://127.0.0.1:{port}/fr/submit")
        wait_until(
            lambda: firefox.find_element(by.ID, "path-browser").is_displayed(), 20, "no JS path"
        )
        firefox.find_element(by.ID, "message").send_keys("Firefox, avec un redémarrage")
        firefox.find_element(by.ID, "files").send_keys(str(big))
        firefox.find_element(by.CSS_SELECTOR, "button[type=submit]").click()
        wait_until(lambda: uploaded_bytes(instance) > 48 * MiB, 120, "the upload never started")
        first.kill()
        first.wait()
    assert uploaded_bytes(instance) < 192 * MiB
    status = lambda: firefox.find_element(by.ID, "upload-status").text  # noqa: E731
    wait_until(lambda: "Nouvel essai" in status(), 60, "no retry shown")
    with server_on(instance, port):
        wait_until(lambda: firefox.get_url().endswith("/fr/codename"), 300, "no codename page")
    manifest = latest_manifest(instance)
    [entry] = manifest["files"]
    assert entry["name"] == "carnet.bin" and entry["size"] == 192 * MiB
    assert object_sha256(instance, entry["object"]) == (file_sha256(big), 192 * MiB)
    assert read_object(instance, manifest["message"]["object"]) == (
        "Firefox, avec un redémarrage".encode()
    )
