"""Bad input to the submission form: a 4xx with a clear page, never a 500, nothing kept.

One server (small limits, so "oversize" is quick to reach) serves every case;
after each one the object store, the database and the temp dir must be as
they were, and the page must name the problem in the source's language.
"""

from __future__ import annotations

import os
import secrets
import socket
import time
from pathlib import Path

import httpx
import pytest

from tests.server_process import (
    Instance,
    SourceClient,
    db_rows,
    find_canaries,
)

SERVER_CONFIG = """
[limits]
max_file_bytes = 300000
max_files = 3
max_message_bytes = 20000
max_field_bytes = 2000
max_parts = 40

[[question]]
id = "dates"
label.en = "When?"
label.fr = "Quand ?"
max_length = 50
"""


@pytest.fixture
def src(served):
    _instance, server = served
    with SourceClient(server.base_url) as client:
        yield client


def assert_nothing_kept(instance: Instance) -> None:
    assert list(instance.objects_dir.iterdir()) == []
    for table in ("submissions", "objects", "sources", "replies"):
        assert db_rows(instance, table) == [], table
    assert list(instance.tmp_dir.iterdir()) == []


def assert_clear_page(response: httpx.Response, status: int, title: str) -> None:
    assert response.status_code == status, response.text[:500]
    assert response.headers["content-type"].startswith("text/html")
    assert f'<h1 id="error-title">{title}</h1>' in response.text
    assert "Traceback" not in response.text


def multipart(
    token: str, parts: list[tuple[str, str | None, bytes]], boundary: str = "b0undary"
) -> tuple[bytes, str]:
    out = []
    first = [("csrf_token", None, token.encode())] if token else []
    for name, filename, value in first + parts:
        disp = f'form-data; name="{name}"'
        if filename is not None:
            disp += f'; filename="{filename}"'
        out.append(
            f"--{boundary}\r\nContent-Disposition: {disp}\r\n\r\n".encode() + value + b"\r\n"
        )
    body = b"".join(out) + f"--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def post(src: SourceClient, body: bytes, ctype: str | None, lang: str = "en") -> httpx.Response:
    headers = {"content-type": ctype} if ctype else {}
    return src.client.post(f"/{lang}/submit", content=body, headers=headers)


def test_truncated_multipart(served, src) -> None:
    instance, _ = served
    body, ctype = multipart(src.csrf("/en/submit"), [("files", "a.txt", os.urandom(50_000))])
    response = post(src, body[:-200], ctype)  # complete HTTP body, unfinished multipart
    assert_clear_page(response, 400, "The upload was interrupted")
    assert "Nothing you sent was kept." in response.text
    assert_nothing_kept(instance)


def test_missing_boundary_and_wrong_type(served, src) -> None:
    instance, _ = served
    src.csrf("/en/submit")
    response = post(src, b"--x\r\n", "multipart/form-data")
    assert_clear_page(response, 400, "The form could not be read")
    response = post(src, b"message=hello", "application/x-www-form-urlencoded")
    assert_clear_page(response, 415, "The form could not be read")
    response = post(src, b"garbage", None)
    assert response.status_code == 415
    assert_nothing_kept(instance)


def test_garbage_after_boundary_is_malformed(served, src) -> None:
    instance, _ = served
    token = src.csrf("/en/submit")
    body = (
        b'--b0undary\r\nContent-Disposition: form-data; name="csrf_token"\r\n\r\n'
        + token.encode()
        + b"\r\n--b0undary\r\ngarbage header without a colon\x00\r\n\r\n"
    )
    response = post(src, body, "multipart/form-data; boundary=b0undary")
    assert_clear_page(response, 400, "The form could not be read")
    assert_nothing_kept(instance)


def test_huge_field(served, src) -> None:
    instance, _ = served
    token = src.csrf("/en/submit")
    body, ctype = multipart(token, [("message", None, b"hi"), ("q_dates", None, b"x" * 10_000)])
    assert_clear_page(post(src, body, ctype), 413, "An answer is too long")
    # Within the byte limit but over the question's own character limit.
    body, ctype = multipart(token, [("message", None, b"hi"), ("q_dates", None, b"y" * 60)])
    assert_clear_page(post(src, body, ctype), 413, "An answer is too long")
    body, ctype = multipart(token, [("message", None, b"m" * 30_000)])
    assert_clear_page(post(src, body, ctype), 413, "The message is too long")
    assert_nothing_kept(instance)


def test_ten_thousand_tiny_parts(served, src) -> None:
    instance, _ = served
    token = src.csrf("/en/submit")
    parts = [("files", f"{i}.txt", b"x") for i in range(10_000)]
    body, ctype = multipart(token, parts)
    assert_clear_page(post(src, body, ctype), 413, "Too many files")
    parts = [("q_dates", None, b"x") for _ in range(10_000)]
    body, ctype = multipart(token, parts)
    response = post(src, body, ctype)
    assert response.status_code == 400
    assert "Traceback" not in response.text
    assert_nothing_kept(instance)


@pytest.mark.parametrize(
    "filename",
    ["../../etc/passwd", "..\\..\\boot.ini", "a\x00b.pdf", "bell\x07.txt", "..", "x" * 300],
)
def test_path_traversal_and_control_characters_in_file_names(served, src, filename: str) -> None:
    instance, _ = served
    token = src.csrf("/en/submit")
    body, ctype = multipart(token, [("message", None, b"hello"), ("files", filename, b"data")])
    assert_clear_page(post(src, body, ctype), 400, "A file name cannot be accepted")
    assert_nothing_kept(instance)
    assert not Path("/etc/passwd.part").exists()


def test_wrong_or_missing_csrf_token(served, src) -> None:
    instance, _ = served
    src.csrf("/en/submit")
    body, ctype = multipart("not-the-token", [("message", None, b"hello")])
    assert_clear_page(post(src, body, ctype), 403, "This form has expired")
    # The token must come first: a file before it is refused before it is written.
    body, ctype = multipart("", [("files", "a.bin", os.urandom(1000)), ("csrf_token", None, b"x")])
    assert_clear_page(post(src, body, ctype), 403, "This form has expired")
    # No session cookie at all (another site's form, or an expired session).
    with SourceClient(src.base_url) as stranger:
        body, ctype = multipart("anything", [("message", None, b"hello")])
        assert_clear_page(post(stranger, body, ctype), 403, "This form has expired")
    assert_nothing_kept(instance)


def test_honeypot(served, src) -> None:
    instance, _ = served
    token = src.csrf("/fr/submit")
    body, ctype = multipart(token, [("website", None, b"http://spam"), ("message", None, b"buy")])
    assert_clear_page(post(src, body, ctype, "fr"), 400, "Le formulaire n'a pas pu être accepté")
    assert_nothing_kept(instance)


def test_oversize_file_after_a_good_one(served, src) -> None:
    instance, _ = served
    started = time.time() - 1
    canary = f"CANARY-{secrets.token_hex(8)}".encode()
    token = src.csrf("/en/submit")
    parts = [
        ("message", None, canary),
        ("files", "ok.bin", canary + os.urandom(1000)),
        ("files", "big.bin", canary + os.urandom(400_000)),
    ]
    body, ctype = multipart(token, parts)
    assert_clear_page(post(src, body, ctype), 413, "A file is too large")
    assert_nothing_kept(instance)  # the message and first file were removed too
    assert find_canaries([canary], [instance.data_dir, instance.tmp_dir], since=started) == []


def test_declared_body_too_large_is_refused_before_reading(served, src) -> None:
    instance, server = served
    src.csrf("/en/submit")
    port = int(server.base_url.rsplit(":", 1)[1])
    cookie = "; ".join(f"{k}={v}" for k, v in src.client.cookies.items())
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(
            b"POST /en/submit HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: multipart/form-data; boundary=b\r\n"
            b"Content-Length: 99999999999\r\nCookie: " + cookie.encode() + b"\r\n\r\n--b\r\n"
        )
        sock.shutdown(socket.SHUT_WR)
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 413")
    assert b"The submission is too large" in reply
    assert_nothing_kept(instance)


def test_empty_submission(served, src) -> None:
    instance, _ = served
    token = src.csrf("/en/submit")
    body, ctype = multipart(token, [("message", None, b""), ("files", "", b"")])
    assert_clear_page(post(src, body, ctype), 400, "Nothing to send")
    assert_nothing_kept(instance)


def test_unknown_field_and_not_utf8(served, src) -> None:
    instance, _ = served
    token = src.csrf("/en/submit")
    body, ctype = multipart(token, [("admin", None, b"1")])
    assert_clear_page(post(src, body, ctype), 400, "The form could not be read")
    body, ctype = multipart(token, [("message", None, b"hi"), ("q_dates", None, b"\xff\xfe")])
    assert_clear_page(post(src, body, ctype), 400, "The text could not be read")
    assert_nothing_kept(instance)


def test_unknown_pages_and_methods(served, src) -> None:
    _instance, _server = served
    assert_clear_page(src.get("/en/nowhere"), 404, "Page not found")
    assert_clear_page(src.get("/xx/"), 404, "Page not found")
    assert_clear_page(src.get("/fr/nulle-part"), 404, "Page introuvable")
    response = src.client.delete("/en/submit")
    assert_clear_page(response, 405, "Not allowed")


def test_wrong_codename(served, src) -> None:
    instance, _ = served
    token = src.csrf("/en/login")
    response = src.client.post("/en/login", data={"csrf_token": token, "codename": "a b c"})
    assert response.status_code == 400
    assert "exactly nine words" in response.text
    response = src.client.post(
        "/en/login", data={"csrf_token": token, "codename": " ".join(["abandon"] * 8 + ["zzzz"])}
    )
    assert response.status_code == 400
    assert "Word 9 is not in our word list" in response.text
    response = src.client.post("/en/login", data={"csrf_token": "bad", "codename": "x"})
    assert_clear_page(response, 403, "This form has expired")
    assert_nothing_kept(instance)


def test_server_log_holds_no_body_bytes(served) -> None:
    _instance, server = served
    # Runs last in this module, after every bad request above; and sends one more
    # that makes the multipart parser complain about the bytes it saw.
    with SourceClient(server.base_url) as src:
        token = src.csrf("/en/submit")
        body = (
            b'--b0undary\r\nContent-Disposition: form-data; name="csrf_token"\r\n\r\n'
            + token.encode()
            + b"\r\n--b0undary\r\ngarbage header without a colon\r\n\r\n"
        )
        assert post(src, body, "multipart/form-data; boundary=b0undary").status_code == 400
    log = server.log()
    # The garbage and the file names sent above never reach the log.
    for needle in ("garbage", "passwd", "boot.ini", "spam", "Traceback", "CANARY"):
        assert needle not in log
    # No access log, no parser chatter quoting body bytes, no client address.
    for needle in ("GET /", "POST /", "HTTP/1.1", "invalid character", "boundary", "Cookie"):
        assert needle not in log
    lines = [line for line in log.splitlines() if line.strip()]
    assert lines == [f"Lanterne source interface on {server.base_url}/"]
