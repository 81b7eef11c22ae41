"""Resumable uploads (tus 1.0) and the commit of the JavaScript path, on a real server.

`tuspy`, an independent tus client, creates, resumes and terminates uploads;
httpx plays the browser for what tuspy does not do (the commit, raw PATCHes).
Ciphertext is made in Python with the envelope package, exactly as the page
makes it in the browser, and the journalists must decrypt the exact bytes.
"""

from __future__ import annotations

import io
import json
import os
import re
import secrets
import signal
import socket
import sqlite3
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from tusclient.client import TusClient
from tusclient.exceptions import TusCommunicationError

import envelope
from server.settings import GiB, MiB, Settings
from server.store.uploads import is_envelope_length, max_upload_length
from server.web.app import create_app
from tests.clocks import FakeClock
from tests.server_process import (
    CSRF_RE,
    Instance,
    Server,
    db_rows,
    decrypt_object,
    find_canaries,
    init_instance,
    object_files,
    run_server,
    serve_in_thread,
)

TUS = {"Tus-Resumable": "1.0.0"}
PATCH_TYPE = "application/offset+octet-stream"
OWNER_COOKIE = "lanterne_uploads"


def seal(instance: Instance, plaintext: bytes) -> bytes:
    return envelope.encrypt_bytes(plaintext, [j.public.recipient for j in instance.journalists])


def seal_streaming(instance: Instance, plaintext: bytes, piece: int = 100_000) -> Iterator[bytes]:
    """Ciphertext piece by piece, as the page produces it while it uploads."""
    enc = envelope.Encryptor([j.public.recipient for j in instance.journalists])
    yield enc.header
    for start in range(0, len(plaintext), piece):
        if out := enc.update(plaintext[start : start + piece]):
            yield out
    yield from enc.finish()


def manifest(message: tuple[str, int] | None, files: list[tuple[str, str, str, int]]) -> bytes:
    """The manifest the page encrypts (docs/JOURNALIST_API.md), naming upload ids."""
    doc = {
        "type": "lanterne-manifest/v1",
        "received_on": "2026-11-26",
        "language": "en",
        "follow_up": False,
        "message": {"object": message[0], "size": message[1]} if message else None,
        "files": [{"object": i, "name": n, "type": t, "size": s} for i, n, t, s in files],
        "answers": [],
    }
    return json.dumps(doc).encode()


@dataclass
class Browser:
    """A source's browser with JavaScript: a cookie jar, tus requests, the commit form."""

    base_url: str
    lang: str = "en"
    client: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.client = httpx.Client(base_url=self.base_url, timeout=120, follow_redirects=False)

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def csrf(self) -> str:
        page = self.client.get(f"/{self.lang}/submit")
        assert page.status_code == 200
        match = CSRF_RE.search(page.text)
        assert match
        return match.group(1)

    def create(self, length: int) -> str:
        r = self.client.post("/tus/", headers={**TUS, "Upload-Length": str(length)})
        assert r.status_code == 201, r.status_code
        assert r.headers["tus-resumable"] == "1.0.0"
        location = r.headers["location"]
        assert location.startswith("/tus/")
        return location.removeprefix("/tus/")

    def head(self, upload_id: str) -> httpx.Response:
        return self.client.head(f"/tus/{upload_id}", headers=TUS)

    def offset(self, upload_id: str) -> int:
        r = self.head(upload_id)
        assert r.status_code == 200, r.status_code
        return int(r.headers["upload-offset"])

    def patch(
        self, upload_id: str, offset: int, data: bytes, content_type: str = PATCH_TYPE
    ) -> httpx.Response:
        headers = {**TUS, "Upload-Offset": str(offset), "Content-Type": content_type}
        return self.client.patch(f"/tus/{upload_id}", headers=headers, content=data)

    def delete(self, upload_id: str) -> httpx.Response:
        return self.client.delete(f"/tus/{upload_id}", headers=TUS)

    def upload(self, data: bytes, segment: int = 256 * 1024) -> str:
        upload_id = self.create(len(data))
        for start in range(0, len(data), segment):
            r = self.patch(upload_id, start, data[start : start + segment])
            assert r.status_code == 204, r.status_code
            assert int(r.headers["upload-offset"]) == min(start + segment, len(data))
        return upload_id

    def commit(
        self,
        manifest_id: str,
        message_id: str | None = None,
        file_ids: list[str] | tuple[str, ...] = (),
        token: str | None = None,
        extra: list[tuple[str, str]] | None = None,
    ) -> httpx.Response:
        fields = [("csrf_token", self.csrf() if token is None else token)]
        fields.append(("manifest", manifest_id))
        if message_id:
            fields.append(("message", message_id))
        fields += [("file", f) for f in file_ids]
        fields += extra or []
        return self.client.post(
            f"/{self.lang}/submit/commit",
            content=str(httpx.QueryParams(fields)).encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )

    @property
    def owner_cookie(self) -> str:
        return self.client.cookies[OWNER_COOKIE]


def tus_client(server: Server, browser: Browser) -> TusClient:
    # tuspy keeps no cookie jar: the browser's upload cookie goes in a header.
    return TusClient(
        server.base_url + "/tus/", headers={"Cookie": f"{OWNER_COOKIE}={browser.owner_cookie}"}
    )


def upload_path(instance: Instance, upload_id: str) -> Path:
    return instance.data_dir / "uploads" / f"{upload_id}.part"


def upload_rows(instance: Instance) -> list[tuple[object, ...]]:
    return db_rows(instance, "uploads")


def age_upload(instance: Instance, upload_id: str, days: int) -> None:
    """The day of the upload's last activity moves back (finer times are in memory)."""
    conn = sqlite3.connect(instance.data_dir / "lanterne.sqlite3")
    try:
        with conn:
            conn.execute(
                "UPDATE uploads SET active_on = date(active_on, ?) WHERE id = ?",
                (f"-{days} days", upload_id),
            )
    finally:
        conn.close()


@pytest.fixture
def browser(served: tuple[Instance, Server]) -> Iterator[Browser]:
    with Browser(served[1].base_url) as b:
        yield b


def complete_submission(instance: Instance, browser: Browser, plaintexts: list[bytes]) -> dict:
    """Upload a message and files, then their manifest; returns what was sent."""
    message = b"A message typed on the page, " + secrets.token_hex(8).encode()
    message_id = browser.upload(seal(instance, message))
    files = []
    for i, plain in enumerate(plaintexts):
        files.append(
            (browser.upload(seal(instance, plain)), f"doc{i}.pdf", "application/pdf", len(plain))
        )
    manifest_plain = manifest((message_id, len(message)), files)
    manifest_id = browser.upload(seal(instance, manifest_plain))
    return {
        "message": (message_id, message),
        "files": [(f[0], p) for f, p in zip(files, plaintexts, strict=True)],
        "manifest": (manifest_id, manifest_plain),
    }


def assert_nothing_half_visible(instance: Instance, before_objects: set[str], subs: int) -> None:
    assert object_files(instance) == before_objects
    assert len(db_rows(instance, "submissions")) == subs


# The protocol


def test_options_advertises_tus_and_the_largest_envelope(served) -> None:
    _instance, server = served
    r = httpx.options(server.base_url + "/tus/")
    assert r.status_code == 204
    assert r.headers["tus-version"] == "1.0.0"
    assert r.headers["tus-extension"] == "creation,termination,expiration"
    # The envelope of a 2 GiB file (the default limit) with the largest header.
    assert int(r.headers["tus-max-size"]) == max_upload_length(2 * GiB)
    assert 2 * GiB < int(r.headers["tus-max-size"]) < 2.2 * GiB


def test_envelope_lengths_are_recognised_exactly() -> None:
    ident = envelope.X25519Identity.generate()
    for n in (0, 1, 4095, 4096, 65535, 65536, 200_000, 1_000_003):
        sealed = envelope.encrypt_bytes(os.urandom(n), [ident.recipient])
        header = 27 + 84 + 32
        assert is_envelope_length(len(sealed), header), n
        assert not is_envelope_length(len(sealed) - 1, header), n
        assert not is_envelope_length(len(sealed) + 16, header), n


def test_tuspy_uploads_in_chunks_resumes_with_a_new_client_and_terminates(served, browser) -> None:
    instance, server = served
    data = seal(instance, os.urandom(300_000))
    browser.create(10)  # the first creation gives this browser its upload cookie
    client = tus_client(server, browser)
    first = client.uploader(file_stream=io.BytesIO(data), chunk_size=70_000)
    first.upload_chunk()
    first.upload_chunk()
    assert first.offset == 140_000
    upload_id = urlsplit(first.url).path.removeprefix("/tus/")
    assert upload_path(instance, upload_id).read_bytes() == data[:140_000]
    # Interrupted: a new client instance resumes from the server's offset.
    second = tus_client(server, browser).uploader(
        file_stream=io.BytesIO(data), chunk_size=70_000, url=first.url
    )
    assert second.offset == 140_000
    second.upload()
    assert second.offset == len(data)
    assert browser.offset(upload_id) == len(data)
    assert upload_path(instance, upload_id).read_bytes() == data
    mode = stat.S_IMODE(upload_path(instance, upload_id).stat().st_mode)
    assert mode == 0o600
    assert stat.S_IMODE((instance.data_dir / "uploads").stat().st_mode) == 0o700
    # Termination (tuspy has no call for it: the same headers, by hand).
    r = httpx.delete(first.url, headers={**TUS, **client.headers})
    assert r.status_code == 204
    assert not upload_path(instance, upload_id).exists()
    assert browser.head(upload_id).status_code == 404
    with pytest.raises(TusCommunicationError):
        tus_client(server, browser).uploader(file_stream=io.BytesIO(data), url=first.url)


def test_tuspy_upload_then_commit_journalists_decrypt_the_exact_bytes(served, browser) -> None:
    instance, server = served
    document = os.urandom(500_000)
    message = "Bonjour, ceci vient du navigateur — 1/1".encode()
    msg_id = browser.upload(seal(instance, message))
    client = tus_client(server, browser)
    up = client.uploader(file_stream=io.BytesIO(seal(instance, document)), chunk_size=128 * 1024)
    up.upload()
    doc_id = urlsplit(up.url).path.removeprefix("/tus/")
    # The manifest is streamed out of an Encryptor, as the page does.
    plain_manifest = manifest(
        (msg_id, len(message)), [(doc_id, "rapport.pdf", "application/pdf", len(document))]
    )
    manifest_id = browser.upload(b"".join(seal_streaming(instance, plain_manifest)), 4096)
    subs = len(db_rows(instance, "submissions"))
    r = browser.commit(manifest_id, msg_id, [doc_id])
    assert r.status_code == 303
    assert r.headers["location"] == "/en/codename"
    codename = browser.client.get("/en/codename")
    assert codename.status_code == 200 and 'id="codename"' in codename.text
    # Visible as one submission, objects named by the upload ids, sizes in ciphertext.
    assert len(db_rows(instance, "submissions")) == subs + 1
    rows = {r[0]: r for r in db_rows(instance, "objects")}
    assert rows[manifest_id][2:] == (
        "manifest",
        (instance.objects_dir / manifest_id).stat().st_size,
    )
    assert rows[msg_id][2] == "message" and rows[doc_id][2] == "file"
    assert rows[manifest_id][1] == rows[msg_id][1] == rows[doc_id][1]
    for j in instance.journalists:
        for object_id, plain in (
            (manifest_id, plain_manifest),
            (msg_id, message),
            (doc_id, document),
        ):
            data = (instance.objects_dir / object_id).read_bytes()
            assert envelope.decrypt_bytes(data, [j.identity]) == plain
    # The uploads are gone: moved, not copied, and their rows with them.
    for upload_id in (manifest_id, msg_id, doc_id):
        assert not upload_path(instance, upload_id).exists()
        assert browser.head(upload_id).status_code == 404
    assert not any(r[0] in (manifest_id, msg_id, doc_id) for r in upload_rows(instance))


def test_follow_up_commit_goes_to_the_inbox_of_the_same_source(served, browser) -> None:
    instance, _server = served
    sent = complete_submission(instance, browser, [b"first"])
    assert (
        browser.commit(sent["manifest"][0], sent["message"][0], [sent["files"][0][0]]).status_code
        == 303
    )
    source_ids = {r[1] for r in db_rows(instance, "submissions")}
    again = complete_submission(instance, browser, [b"second", b"third"])
    r = browser.commit(again["manifest"][0], again["message"][0], [f for f, _ in again["files"]])
    assert r.status_code == 303
    assert r.headers["location"] == "/en/inbox"
    assert {r[1] for r in db_rows(instance, "submissions")} == source_ids  # no new source
    assert decrypt_object(instance, again["files"][1][0]) == b"third"


def test_logging_out_deletes_the_browsers_unfinished_uploads_and_cookie(served) -> None:
    instance, server = served
    with Browser(server.base_url) as mine, Browser(server.base_url) as other:
        sent = complete_submission(instance, mine, [b"first"])
        assert (
            mine.commit(sent["manifest"][0], sent["message"][0], [sent["files"][0][0]]).status_code
            == 303
        )
        pending = [mine.upload(seal(instance, b"not sent yet")) for _ in range(2)]
        kept = other.upload(seal(instance, b"another browser's"))
        assert all(upload_path(instance, u).exists() for u in [*pending, kept])
        inbox = mine.client.get("/en/inbox")
        token = CSRF_RE.search(inbox.text)
        assert token
        r = mine.client.post("/en/logout", data={"csrf_token": token.group(1)})
        assert r.status_code == 200
        assert f'{OWNER_COOKIE}=""' in ";".join(r.headers.get_list("set-cookie"))
        assert not any(upload_path(instance, u).exists() for u in pending)
        assert {row[0] for row in upload_rows(instance)} >= {kept}
        assert not {row[0] for row in upload_rows(instance)} & set(pending)
        assert upload_path(instance, kept).exists()  # only this browser's uploads go
        assert other.offset(kept) > 0
        other.delete(kept)


def test_a_long_upload_keeps_the_session_so_the_commit_finds_the_same_source(tmp_path) -> None:
    """Idle timeout 3 s: a follow-up upload whose segments come 1.5 s apart and last
    longer than that still commits to the source who started it (every PATCH is
    activity for the session), while a session with nothing going on still ends.
    In process, with the app's clock in the test's hands: time passes, nobody waits."""
    instance = init_instance(tmp_path, config="session_idle_seconds = 3\n")
    clock = FakeClock()
    app = create_app(Settings.load(instance.data_dir), clock=clock, wall_clock=clock)
    with serve_in_thread(app) as base_url, Browser(base_url) as page:
        first = complete_submission(instance, page, [b"first"])
        r = page.commit(first["manifest"][0], first["message"][0], [first["files"][0][0]])
        assert r.status_code == 303 and r.headers["location"] == "/en/codename"
        sources_before = {row[1] for row in db_rows(instance, "submissions")}

        plain = os.urandom(300_000)
        sealed = seal(instance, plain)
        file_id = page.create(len(sealed))
        step = len(sealed) // 3 + 1
        for start in range(0, len(sealed), step):
            clock.advance(1.5)  # a slow Tor circuit, in miniature
            r = page.patch(file_id, start, sealed[start : start + step])
            assert r.status_code == 204, r.status_code
        clock.advance(1.5)  # 6 s since the commit's page, twice the idle timeout
        listed = [(file_id, "late.bin", "application/octet-stream", len(plain))]
        manifest_id = page.upload(seal(instance, manifest(None, listed)))
        r = page.commit(manifest_id, None, [file_id])  # reads the CSRF token again first
        assert r.status_code == 303
        assert r.headers["location"] == "/en/inbox"  # not /en/codename: no new source
        assert {row[1] for row in db_rows(instance, "submissions")} == sources_before
        assert decrypt_object(instance, file_id) == plain

        clock.advance(3.5)  # nothing going on: the session ends as before
        assert page.client.get("/en/inbox").headers["location"] == "/en/login"


def test_recipients_json_lists_the_journalists_keys(served) -> None:
    instance, server = served
    for lang in ("en", "fr"):
        r = httpx.get(f"{server.base_url}/{lang}/recipients.json")
        assert r.status_code == 200
        assert r.headers["content-type"] == "application/json"
        assert r.headers["cache-control"] == "no-store"
        expected = sorted(
            (j.public.name, j.public.x25519.to_text(), j.public.fingerprint)
            for j in instance.journalists
        )
        listed = r.json()["recipients"]
        assert (
            sorted((k["name"], k["encryption_key"], k["fingerprint"]) for k in listed) == expected
        )
        for k in listed:
            assert envelope.X25519Recipient.from_text(k["encryption_key"])
    assert httpx.get(f"{server.base_url}/xx/recipients.json").status_code == 404


# Bad input on the upload API


def test_wrong_and_overlapping_offsets_are_409_and_change_nothing(served, browser) -> None:
    instance, _server = served
    data = seal(instance, os.urandom(10_000))
    upload_id = browser.create(len(data))
    assert browser.patch(upload_id, 1, data[1:100]).status_code == 409  # a gap
    assert browser.patch(upload_id, 0, data[:5000]).status_code == 204
    overlap = browser.patch(upload_id, 4000, data[4000:6000])  # bytes already received
    assert overlap.status_code == 409
    ahead = browser.patch(upload_id, 6000, data[6000:7000])
    assert ahead.status_code == 409
    assert browser.offset(upload_id) == 5000
    assert upload_path(instance, upload_id).read_bytes() == data[:5000]


def test_segments_past_the_length_or_over_16_mib_are_refused_whole(served, browser) -> None:
    instance, _server = served
    upload_id = browser.create(1000)
    r = browser.patch(upload_id, 0, b"x" * 1001)  # Content-Length says it at once
    assert r.status_code == 413
    # Without a Content-Length (chunked), counted as it arrives and refused whole.
    r = browser.client.patch(
        f"/tus/{upload_id}",
        headers={**TUS, "Upload-Offset": "0", "Content-Type": PATCH_TYPE},
        content=iter([b"y" * 600, b"y" * 600]),
    )
    assert r.status_code == 413
    assert browser.offset(upload_id) == 0
    assert upload_path(instance, upload_id).stat().st_size == 0
    big = browser.create(40 * MiB)
    r = browser.patch(big, 0, bytes(16 * MiB + 1))
    assert r.status_code == 413
    assert browser.offset(big) == 0
    r = browser.patch(big, 0, bytes(16 * MiB))  # exactly the cap is fine
    assert r.status_code == 204
    assert browser.offset(big) == 16 * MiB
    assert browser.delete(big).status_code == 204


def test_creation_refuses_bad_lengths_and_unsupported_features(served, browser) -> None:
    _instance, _server = served
    too_long = max_upload_length(2 * GiB) + 1
    r = browser.client.post("/tus/", headers={**TUS, "Upload-Length": str(too_long)})
    assert r.status_code == 413
    for bad in ("", "-1", "1e6", "0x10", "٣".encode(), "9" * 30):
        r = browser.client.post("/tus/", headers={**TUS, "Upload-Length": bad})
        assert r.status_code == 400, bad
    r = browser.client.post("/tus/", headers={**TUS, "Upload-Defer-Length": "1"})
    assert r.status_code == 400
    r = browser.client.post("/tus/", headers={**TUS, "Upload-Length": "5"}, content=b"hello")
    assert r.status_code == 400  # creation-with-upload is not offered
    r = browser.client.post("/tus/", headers={"Upload-Length": "5"})
    assert r.status_code == 412
    assert r.headers["tus-version"] == "1.0.0"
    r = browser.client.post("/tus/", headers={"Tus-Resumable": "0.2.2", "Upload-Length": "5"})
    assert r.status_code == 412


def test_wrong_content_type_is_415(served, browser) -> None:
    upload_id = browser.create(100)
    for ctype in ("application/octet-stream", "text/plain", "multipart/form-data; boundary=x"):
        assert browser.patch(upload_id, 0, b"z" * 10, ctype).status_code == 415
    assert browser.offset(upload_id) == 0


def test_unknown_ids_are_404_and_another_browsers_upload_is_invisible(served, browser) -> None:
    instance, server = served
    upload_id = browser.create(100)
    assert browser.patch(upload_id, 0, b"a" * 50).status_code == 204
    for unknown in (secrets.token_hex(16), "not-an-id", upload_id.upper(), upload_id + "0"):
        assert browser.head(unknown).status_code == 404
        assert browser.patch(unknown, 0, b"a").status_code == 404
        assert browser.delete(unknown).status_code == 404
    with Browser(server.base_url) as other:
        other.create(10)  # has its own upload cookie
        assert other.head(upload_id).status_code == 404
        assert other.patch(upload_id, 50, b"b" * 50).status_code == 404
        assert other.delete(upload_id).status_code == 404
    # No cookie at all, or a forged one, is no better.
    assert httpx.head(f"{server.base_url}/tus/{upload_id}", headers=TUS).status_code == 404
    forged = {"Cookie": f"{OWNER_COOKIE}={browser.owner_cookie[:-4]}AAAA", **TUS}
    assert httpx.head(f"{server.base_url}/tus/{upload_id}", headers=forged).status_code == 404
    assert browser.offset(upload_id) == 50
    assert upload_path(instance, upload_id).read_bytes() == b"a" * 50


def test_a_planted_upload_cookie_is_replaced_not_adopted(served) -> None:
    _instance, server = served
    planted = "A" * 64
    r = httpx.post(
        server.base_url + "/tus/",
        headers={**TUS, "Upload-Length": "10", "Cookie": f"{OWNER_COOKIE}={planted}"},
    )
    assert r.status_code == 201
    cookie = r.headers["set-cookie"]
    assert cookie.startswith(f"{OWNER_COOKIE}=") and planted not in cookie
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie


# Bad commits: a clear 4xx, nothing half-visible, uploads left as they were


def test_bad_commits_are_refused_and_leave_everything_as_it_was(served, browser) -> None:
    instance, server = served
    sent = complete_submission(instance, browser, [os.urandom(20_000)])
    manifest_id, msg_id = sent["manifest"][0], sent["message"][0]
    file_id = sent["files"][0][0]
    unfinished = browser.create(len(seal(instance, b"later")))
    assert browser.patch(unfinished, 0, b"LANTERNE").status_code == 204
    not_envelope = browser.upload(os.urandom(5000))
    truncated_plain = seal(instance, os.urandom(70_000))
    truncated = browser.upload(truncated_plain[:-16])  # a whole tag short
    with Browser(server.base_url) as other:
        someone_elses = other.upload(seal(instance, b"theirs"))
    before = object_files(instance)
    subs = len(db_rows(instance, "submissions"))
    uploads_before = sorted(upload_rows(instance))
    cases = [
        ({"file_ids": [secrets.token_hex(16)]}, 400, "Part of the submission is missing"),
        ({"file_ids": ["../../etc/passwd"]}, 400, "Part of the submission is missing"),
        ({"file_ids": [someone_elses]}, 400, "Part of the submission is missing"),
        ({"file_ids": [unfinished]}, 409, "The upload is not finished"),
        ({"file_ids": [not_envelope]}, 400, "An upload was not encrypted"),
        ({"file_ids": [truncated]}, 400, "An upload was not encrypted"),
        ({"file_ids": [file_id, file_id]}, 400, "The submission could not be read"),
        ({"file_ids": [manifest_id]}, 400, "The submission could not be read"),
        ({"file_ids": [file_id], "token": "forged"}, 403, "This form has expired"),
        ({"file_ids": [file_id], "extra": [("other", "x")]}, 400, "The form could not be read"),
        ({"file_ids": [file_id], "extra": [("manifest", file_id)]}, 400, "could not be read"),
        ({"file_ids": [file_id], "extra": [("website", "spam")]}, 400, "must stay empty"),
    ]
    for kwargs, status, title in cases:
        r = browser.commit(manifest_id, msg_id, **kwargs)
        assert r.status_code == status, (kwargs, r.status_code)
        assert title in r.text, kwargs
        assert "Nothing was submitted" in r.text
        assert "Traceback" not in r.text
        assert_nothing_half_visible(instance, before, subs)
        assert sorted(upload_rows(instance)) == uploads_before
    # No manifest, nothing but a manifest, or no session: refused as well.
    r = browser.client.post(
        "/en/submit/commit",
        content=f"csrf_token={browser.csrf()}&file={file_id}".encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 400
    assert browser.commit(manifest_id).status_code == 400
    stranger = httpx.post(
        f"{server.base_url}/en/submit/commit",
        data={"csrf_token": "x", "manifest": manifest_id},
        headers={"Cookie": f"{OWNER_COOKIE}={browser.owner_cookie}"},
    )
    assert stranger.status_code == 403
    r = browser.client.post(
        "/en/submit/commit", files={"manifest": ("m", b"x")}, data={"csrf_token": browser.csrf()}
    )
    assert r.status_code == 415
    assert_nothing_half_visible(instance, before, subs)
    # The uploads are untouched, so the page can still commit them.
    assert browser.commit(manifest_id, msg_id, [file_id]).status_code == 303
    assert len(db_rows(instance, "submissions")) == subs + 1
    assert decrypt_object(instance, file_id) == sent["files"][0][1]


def test_commit_in_french_gives_french_pages(served) -> None:
    instance, server = served
    with Browser(server.base_url, lang="fr") as browser:
        manifest_id = browser.upload(seal(instance, b"{}"))
        r = browser.commit(manifest_id, None, [secrets.token_hex(16)])
        assert r.status_code == 400
        assert (
            "Une partie de l&#39;envoi manque" in r.text or "Une partie de l'envoi manque" in r.text
        )


# Expiry


def test_an_idle_upload_expires_and_is_deleted(tmp_path) -> None:
    """Expiry follows the last activity, kept in memory (test_uploads_store.py
    checks the times exactly); here a real HTTP server in this process, whose clock
    the test moves on instead of waiting."""
    config = "[uploads]\nexpire_seconds = 2\nempty_expire_seconds = 2\n"
    instance = init_instance(tmp_path, config=config)
    clock = FakeClock()
    app = create_app(Settings.load(instance.data_dir), clock=clock, wall_clock=clock)
    with serve_in_thread(app) as base_url, Browser(base_url) as browser:
        upload_id = browser.create(1000)
        assert browser.patch(upload_id, 0, b"q" * 100).status_code == 204
        expires = browser.head(upload_id).headers["upload-expires"]
        assert expires.endswith(" GMT")
        assert browser.offset(upload_id) == 100
        clock.advance(3)
        assert browser.head(upload_id).status_code == 410  # known to have expired...
        assert not upload_path(instance, upload_id).exists()
        assert browser.head(upload_id).status_code == 404  # ...and then simply gone
        assert all(r[0] != upload_id for r in upload_rows(instance))
        # The table holds the day of the last activity, nothing finer.
        other = browser.create(1000)
        [row] = upload_rows(instance)
        assert row[0] == other and re.fullmatch(r"\d{4}-\d\d-\d\d", str(row[4]))


def test_expired_uploads_are_swept_at_start_up_and_orphans_removed(tmp_path) -> None:
    instance = init_instance(tmp_path)
    with run_server(instance) as server, Browser(server.base_url) as browser:
        stale = browser.create(100)
        fresh = browser.create(100)
        assert browser.patch(fresh, 0, b"f" * 10).status_code == 204
        cookie = browser.owner_cookie
    age_upload(instance, stale, 3)
    orphan = instance.data_dir / "uploads" / f"{secrets.token_hex(16)}.part"
    orphan.write_bytes(b"left by a crash")
    with run_server(instance) as server, Browser(server.base_url) as browser:
        # Swept before the first request.
        assert not upload_path(instance, stale).exists()
        assert not orphan.exists()
        assert {r[0] for r in upload_rows(instance)} == {fresh}
        browser.client.cookies.set(OWNER_COOKIE, cookie)
        assert browser.offset(fresh) == 10


# Restarts


def test_resume_after_the_server_is_killed_mid_upload(tmp_path) -> None:
    instance = init_instance(tmp_path)
    document = os.urandom(3 * MiB + 12345)
    data = seal(instance, document)
    segment = 1 * MiB
    with run_server(instance) as server, Browser(server.base_url) as browser:
        stale_token = browser.csrf()
        upload_id = browser.create(len(data))
        for start in (0, segment):
            assert browser.patch(upload_id, start, data[start : start + segment]).status_code == 204
        # A third segment is on the wire, half sent, when the server dies.
        host, port = urlsplit(server.base_url).netloc.split(":")
        raw = socket.create_connection((host, int(port)))
        head = (
            f"PATCH /tus/{upload_id} HTTP/1.1\r\nHost: {host}\r\nTus-Resumable: 1.0.0\r\n"
            f"Content-Type: {PATCH_TYPE}\r\nUpload-Offset: {2 * segment}\r\n"
            f"Content-Length: {segment}\r\nCookie: {OWNER_COOKIE}={browser.owner_cookie}\r\n\r\n"
        )
        raw.sendall(head.encode() + data[2 * segment : 2 * segment + segment // 2])
        server.proc.send_signal(signal.SIGKILL)
        server.proc.wait()
        raw.close()
        cookies = dict(browser.client.cookies)
    assert upload_path(instance, upload_id).exists()
    with run_server(instance) as server, Browser(server.base_url) as browser:
        for name, value in cookies.items():
            browser.client.cookies.set(name, value)
        # HEAD gives the last acknowledged (fsynced) offset, not what half arrived.
        assert browser.offset(upload_id) == 2 * segment
        for start in range(2 * segment, len(data), segment):
            assert browser.patch(upload_id, start, data[start : start + segment]).status_code == 204
        assert browser.offset(upload_id) == len(data)
        manifest_id = browser.upload(
            seal(
                instance,
                manifest(None, [(upload_id, "big.bin", "application/octet-stream", len(document))]),
            )
        )
        # Another browser's form token is refused...
        with Browser(server.base_url) as other:
            foreign = other.csrf()
        r = browser.commit(manifest_id, None, [upload_id], token=foreign)
        assert r.status_code == 403
        assert "Nothing was submitted" in r.text
        assert db_rows(instance, "submissions") == []
        # ...while this browser's, from before the restart, still commits: it
        # lives in the browser (bound to its visit cookie), not in server memory.
        r = browser.commit(manifest_id, None, [upload_id], token=stale_token)
        assert r.status_code == 303
    assert decrypt_object(instance, upload_id) == document
    assert len(db_rows(instance, "submissions")) == 1


# Limits per browser and for the whole instance


def test_caps_per_browser_and_for_the_instance(tmp_path) -> None:
    config = "\n".join(
        [
            "[uploads]",
            "max_open_per_browser = 3",
            "max_bytes_per_browser = 1000",
            "max_bytes_total = 1500",
        ]
    )
    instance = init_instance(tmp_path, config=config)
    with run_server(instance) as server, Browser(server.base_url) as first:
        ids = [first.create(100) for _ in range(3)]
        r = first.client.post("/tus/", headers={**TUS, "Upload-Length": "1"})
        assert r.status_code == 429  # a fourth open upload for this browser
        assert first.delete(ids[0]).status_code == 204
        r = first.client.post("/tus/", headers={**TUS, "Upload-Length": "801"})
        assert r.status_code == 507  # 200 + 801 > 1000 for this browser
        big = first.create(800)
        with Browser(server.base_url) as second:
            second.create(500)  # 1000 + 500: the instance is full
            r = second.client.post("/tus/", headers={**TUS, "Upload-Length": "1"})
            assert r.status_code == 507
        assert first.delete(big).status_code == 204
        with Browser(server.base_url) as third:
            third.create(300)  # room again
    assert "Traceback" not in server.log()


# No plaintext anywhere


def test_no_canary_reaches_the_disk_or_the_logs(served, browser) -> None:
    instance, _server = served
    canaries = [b"CANARY-" + secrets.token_hex(12).encode() for _ in range(3)]
    message = b"the message " + canaries[0]
    document = os.urandom(100_000) + canaries[1] + os.urandom(100_000)
    message_data, document_data = seal(instance, message), seal(instance, document)
    for c in canaries:
        assert c not in message_data and c not in document_data
    msg_id = browser.upload(message_data)
    doc_id = browser.upload(document_data, segment=70_000)
    plain_manifest = manifest(
        (msg_id, len(message)),
        [(doc_id, canaries[2].decode() + ".pdf", "application/pdf", len(document))],
    )
    manifest_id = browser.upload(seal(instance, plain_manifest))
    assert browser.commit(manifest_id, msg_id, [doc_id]).status_code == 303
    assert decrypt_object(instance, doc_id) == document
    assert decrypt_object(instance, manifest_id) == plain_manifest
    roots = [instance.data_dir, instance.tmp_dir, instance.log_path]
    assert find_canaries(canaries, roots) == []
