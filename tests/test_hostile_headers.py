"""Malformed headers get a 4xx, never a 500, on both apps; no request value
reaches the server's log (issue 11, item 18). Real server process, raw sockets
for headers httpx would refuse to send."""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator

import httpx
import pytest

from journalist_cli.identity_store import JournalistIdentity, write_new_identity
from tests.server_process import ROOT, SERVER_CMD, Instance, Server, SourceClient, run_server
from tests.test_journalist_api import Room, client

CANARY = "7319264805"  # digits, so that it passes a naive isdigit() check


@pytest.fixture(scope="module")
def room(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Room]:
    base = tmp_path_factory.mktemp("headers")
    people = {"alice": JournalistIdentity.generate("alice")}
    write_new_identity(people["alice"], base / "keys", None)
    data = base / "data"
    init = [*SERVER_CMD, "init", "--data-dir", str(data)]
    init += ["--journalist", str(base / "keys" / "alice.pub")]
    subprocess.run(init, check=True, cwd=ROOT, capture_output=True)
    instance = Instance(data, [], base / "server-tmp", base / "server.log")
    instance.tmp_dir.mkdir()
    with run_server(instance, journalist_api=True) as server:
        with SourceClient(server.base_url) as source:
            source.first_submission("Le rapport.", [("r.txt", b"x" * 5000, "text/plain")])
        room = Room(server, people, "")
        yield room
        for c in room.clients:
            c.close()


def wire(text: str) -> bytes:
    """Latin-1 where it can be (how Starlette decodes headers: b'\\xb2' is '²'), else UTF-8."""
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:
        return text.encode("utf-8")


def raw_request(url: str, head: bytes) -> tuple[int, bytes]:
    """Send ``head`` (request line and headers, no body) as is; the status and body."""
    host, port = url.split("/")[2].split(":")
    with socket.create_connection((host, int(port)), timeout=30) as s:
        s.sendall(head)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    status = int(data.split(b" ", 2)[1])
    return status, data.partition(b"\r\n\r\n")[2]


def an_object(api: httpx.Client) -> str:
    [source] = api.get("/sources").json()
    detail = api.get(f"/sources/{source['id']}").json()
    return str(detail["items"]["submissions"][0]["objects"][0]["id"])


BAD_RANGES = [
    "bytes=١٢٣-",  # Arabic-Indic digits: isdigit() is true, int() reads 123
    "bytes=²-",  # a superscript two: isdigit() is true, int() raises
    f"bytes=²{CANARY}-",
    "bytes=" + "9" * 5000 + "-",  # past int()'s 4,300-digit limit
    "bytes=" + "9" * 40 + "-",
    "bytes=-5",  # a suffix range
    "bytes=0-10",
    "bytes=0-,5-",
    "bytes=-",
    "items=0-",
    "bytes= 5-",
]


@pytest.mark.parametrize("value", BAD_RANGES)
def test_a_malformed_range_is_a_416(room: Room, value: str) -> None:
    api = client(room)
    object_id = an_object(api)
    token = api.headers["Authorization"]
    path = room.api.split("/", 3)[3]
    head = (
        f"GET /{path}/objects/{object_id} HTTP/1.1\r\nHost: {room.api.split('/')[2]}\r\n"
        f"Authorization: {token}\r\nRange: {value}\r\nConnection: close\r\n\r\n"
    )
    status, body = raw_request(room.api, wire(head))
    assert status == 416, body[:200]
    assert b"internal" not in body


def test_a_good_range_still_works(room: Room) -> None:
    api = client(room)
    object_id = an_object(api)
    whole = api.get(f"/objects/{object_id}").content
    part = api.get(f"/objects/{object_id}", headers={"Range": "bytes=10-"})
    assert part.status_code == 206 and part.content == whole[10:]


@pytest.mark.parametrize("value", ["²", "١٢", "9" * 5000])
def test_a_malformed_content_length_is_a_4xx(room: Room, value: str) -> None:
    api = client(room)
    [source] = api.get("/sources").json()
    path = room.api.split("/", 3)[3]
    head = (
        f"POST /{path}/sources/{source['id']}/notes HTTP/1.1\r\n"
        f"Host: {room.api.split('/')[2]}\r\nAuthorization: {api.headers['Authorization']}\r\n"
        f"Content-Length: {value}\r\nConnection: close\r\n\r\n"
    )
    status, body = raw_request(room.api, wire(head))
    assert 400 <= status < 500, body[:200]


def test_tus_and_submit_numbers_are_4xx(room: Room) -> None:
    server: Server = room.server
    base = server.base_url
    for value in ["١٢٣", "²", "9" * 5000]:
        r = httpx.post(
            f"{base}/tus/", headers={"Tus-Resumable": "1.0.0", "Upload-Length": wire(value)}
        )
        assert r.status_code == 400


def test_no_request_value_reaches_the_log(room: Room) -> None:
    """The canary went out in Range headers above (and a header of its own here):
    the log shows none of it, nor any traceback."""
    api = client(room)
    object_id = an_object(api)
    api.get(
        f"/objects/{object_id}", headers={"Range": wire(f"bytes=²{CANARY}-"), "X-Canary": CANARY}
    )
    httpx.get(f"{room.server.base_url}/en/{CANARY}", headers={"X-Canary": CANARY})
    log = room.server.log()
    assert CANARY not in log
    assert "Traceback" not in log
    assert "²" not in log


def test_the_shared_middleware_logs_the_exception_type_only(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Neither the method, the path nor the exception's message (which quotes a
    header) reaches the log; the client gets the app's own 500."""
    import anyio
    from starlette.responses import PlainTextResponse

    from server.web.contain_errors import ContainErrorsMiddleware

    async def failing(scope: object, receive: object, send: object) -> None:
        int(f"²{CANARY}")  # ValueError quoting the value

    app = ContainErrorsMiddleware(failing, respond=lambda s: PlainTextResponse("no", 500))
    sent: list[dict[str, object]] = []

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": b"", "more_body": False}

    scope = {"type": "http", "method": f"X{CANARY}", "path": f"/{CANARY}", "headers": []}
    with caplog.at_level("DEBUG"):
        anyio.run(app, scope, receive, send)
    assert sent[0]["status"] == 500
    assert "ValueError" in caplog.text
    assert CANARY not in caplog.text


def test_the_log_filter_drops_exception_text_and_traceback() -> None:
    import logging

    from server.web.contain_errors import RedactTracebacks

    try:
        int(f"²{CANARY}")
    except ValueError:
        import sys

        record = logging.LogRecord("x", logging.ERROR, "f", 1, "boom", None, sys.exc_info())
    assert RedactTracebacks().filter(record)
    text = logging.Formatter().format(record)
    assert CANARY not in text and "Traceback" not in text and "ValueError" in text
