"""The API client: the signed-challenge message, Tor through SOCKS (socks5h), answers
checked as untrusted input."""

from __future__ import annotations

import json
import socket
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import nacl.exceptions
import nacl.signing
import pytest

from journalist_cli import api_client, config, records
from journalist_cli.api_client import ApiClient, auth_message, b64
from journalist_cli.errors import UsageProblem
from journalist_cli.records import SourceDetail, SourceInfo
from journalist_cli.workflow_errors import LoginRefused, ServerError

ONION = "abcdefghijklmnopqrstuvwxyz234567abcdefghijklmnopqrstuvwx.onion"


def test_auth_message_layout_and_host_binding() -> None:
    challenge = bytes(range(32))
    message = auth_message(challenge, "xyz.onion:8080")
    assert message == b"lanterne/v1/api-auth\x00" + challenge + b"xyz.onion:8080"
    key = nacl.signing.SigningKey.generate()
    sig = key.sign(message).signature
    key.verify_key.verify(message, sig)
    with pytest.raises(nacl.exceptions.BadSignatureError):
        key.verify_key.verify(auth_message(challenge, "evil.onion:8080"), sig)


def test_auth_message_is_what_the_server_verifies() -> None:
    server_auth = pytest.importorskip("server.web.journalist_api.auth")
    challenge = bytes(32)
    assert auth_message(challenge, "h:1") == server_auth.signed_message(challenge, "h:1")


# --- a tiny SOCKS5 proxy and HTTP endpoint, all on 127.0.0.1 ---------------------


@dataclass
class Seen:
    socks_requests: list[tuple[int, str, int]] = field(default_factory=list)
    hosts: list[str] = field(default_factory=list)
    tokens: list[str] = field(default_factory=list)


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        piece = sock.recv(n - len(data))
        if not piece:
            raise ConnectionError("closed")
        data += piece
    return data


def _pipe(a: socket.socket, b: socket.socket) -> None:
    try:
        while data := a.recv(65536):
            b.sendall(data)
    except OSError:
        pass
    finally:
        for s in (a, b):
            with suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)


@contextmanager
def socks5_proxy(target_port: int, seen: Seen) -> Iterator[int]:
    """Accepts CONNECT to any name and relays it to 127.0.0.1:target_port, recording what
    the client asked for: ATYP 3 (a domain name) is what socks5h means."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    stop = threading.Event()

    def handle(client: socket.socket) -> None:
        try:
            ver, n = _recv_exact(client, 2)
            assert ver == 5
            _recv_exact(client, n)
            client.sendall(b"\x05\x00")
            _ver, _cmd, _rsv, atyp = _recv_exact(client, 4)
            if atyp == 3:
                host = _recv_exact(client, _recv_exact(client, 1)[0]).decode()
            elif atyp == 1:
                host = socket.inet_ntoa(_recv_exact(client, 4))
            else:
                host = socket.inet_ntop(socket.AF_INET6, _recv_exact(client, 16))
            (dport,) = struct.unpack("!H", _recv_exact(client, 2))
            seen.socks_requests.append((atyp, host, dport))
            with socket.create_connection(("127.0.0.1", target_port)) as upstream:
                client.sendall(b"\x05\x00\x00\x01\x00\x00\x00\x00\x00\x00")
                back = threading.Thread(target=_pipe, args=(upstream, client), daemon=True)
                back.start()
                _pipe(client, upstream)
                back.join(5)
        except (OSError, ConnectionError, AssertionError):
            pass
        finally:
            client.close()

    def serve() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            threading.Thread(target=handle, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield port
    finally:
        stop.set()
        thread.join(5)
        listener.close()


@contextmanager
def challenge_endpoint(seen: Seen, key: nacl.signing.VerifyKey) -> Iterator[int]:
    """Just enough of the API's login to check what the client sends over the proxy."""
    challenges: list[bytes] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def _json(self, status: int, doc: object) -> None:
            body = json.dumps(doc).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            seen.hosts.append(self.headers["Host"])
            length = int(self.headers.get("Content-Length", 0))
            body = self.rfile.read(length)
            if self.path == "/api/v1/auth/challenge":
                challenges.append(bytes(range(32)))
                self._json(200, {"challenge": b64(challenges[-1]), "expires_in": 60})
            elif self.path == "/api/v1/auth/token":
                doc = json.loads(body)
                sig = api_client.unb64(doc["signature"])
                try:
                    key.verify(auth_message(challenges[-1], self.headers["Host"]), sig)
                except nacl.exceptions.BadSignatureError:
                    self._json(401, {"error": "unauthorized", "message": "bad"})
                    return
                self._json(
                    200,
                    {
                        "token": "tok",
                        "expires_in": 900,
                        "name": doc["journalist"],
                        "role": "journalist",
                    },
                )
            else:
                self._json(404, {"error": "not_found", "message": "no"})

        def do_GET(self) -> None:
            seen.hosts.append(self.headers["Host"])
            seen.tokens.append(self.headers.get("Authorization", ""))
            self._json(200, [])

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("scheme", ["socks5h", "socks5"])
def test_onion_names_go_to_the_proxy_unresolved(scheme: str) -> None:
    seen = Seen()
    key = nacl.signing.SigningKey.generate()
    with (
        challenge_endpoint(seen, key.verify_key) as http_port,
        socks5_proxy(http_port, seen) as socks_port,
    ):
        proxy = config.check_proxy_url(f"{scheme}://127.0.0.1:{socks_port}")
        with ApiClient(f"http://{ONION}", proxy=proxy) as client:
            session = client.login("alice", key)
            assert session.name == "alice"
            assert client.sources() == []
    # ATYP 3: the proxy (Tor) got the name itself; nothing resolved it locally.
    assert seen.socks_requests and all(r == (3, ONION, 80) for r in seen.socks_requests)
    # The Host header signed over is the onion address, and it is what arrived.
    assert set(seen.hosts) == {ONION}
    assert seen.tokens == ["Bearer tok"]


def test_a_signature_for_another_host_is_refused() -> None:
    seen = Seen()
    key = nacl.signing.SigningKey.generate()
    with (
        challenge_endpoint(seen, key.verify_key) as http_port,
        ApiClient(f"http://127.0.0.1:{http_port}") as client,
    ):
        client.host = "other.onion"  # sign for a host other than the one we send
        client._http.headers["Host"] = f"127.0.0.1:{http_port}"
        with pytest.raises(LoginRefused):
            client.login("alice", key)


def test_unreachable_server_is_a_server_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with (
        ApiClient(f"http://127.0.0.1:{port}") as client,
        pytest.raises(ServerError, match="cannot reach"),
    ):
        client.login("alice", nacl.signing.SigningKey.generate())


# --- settings and answers ----------------------------------------------------------


@pytest.mark.parametrize(
    "url", ["ftp://x.onion", "http://x.onion/path", "http://user@x.onion", "x.onion", "http://"]
)
def test_bad_server_urls(url: str) -> None:
    with pytest.raises(UsageProblem):
        config.check_server_url(url)


def test_server_url_normalised() -> None:
    assert config.check_server_url(f"http://{ONION}/") == f"http://{ONION}"
    assert config.check_server_url("http://127.0.0.1:8080") == "http://127.0.0.1:8080"


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:9050", "socks4://127.0.0.1:9050", "socks5h://127.0.0.1"]
)
def test_bad_proxy_urls(url: str) -> None:
    with pytest.raises(UsageProblem):
        config.check_proxy_url(url)


def _source(**changes: object) -> dict[str, object]:
    doc: dict[str, object] = {
        "id": "a" * 32,
        "reply_key": "k",
        "last_activity": "2026-11-20",
        "submissions": 1,
        "size": 10,
        "seen": False,
        "starred": True,
        "tags": ["x"],
        "assignee": None,
        "notes": 0,
        "replies": 0,
    }
    doc.update(changes)
    return doc


def test_source_parsing() -> None:
    info = SourceInfo.parse(_source())
    assert info.starred and info.tags == ("x",)
    detail = SourceDetail.parse(
        {
            **_source(),
            "items": {
                "submissions": [
                    {
                        "id": "s1",
                        "received_on": "2026-11-20",
                        "objects": [{"id": "o1", "kind": "manifest", "size": 3}],
                    }
                ],
                "replies": [
                    {
                        "id": "r1",
                        "object_id": "o2",
                        "sent_on": "2026-11-21",
                        "journalist": "alice",
                        "size": 4339,
                    }
                ],
                "notes": [
                    {
                        "id": "n1",
                        "object_id": "o3",
                        "written_on": "2026-11-22",
                        "journalist": None,
                        "size": 4339,
                    }
                ],
            },
        }
    )
    assert detail.submissions[0].objects[0].kind == "manifest"
    assert detail.replies[0].day == "2026-11-21" and detail.notes[0].journalist is None


@pytest.mark.parametrize(
    "bad",
    [
        _source(id="../../etc"),
        _source(id="a/b"),
        _source(id=""),
        _source(size=-1),
        _source(submissions=True),
        _source(seen="no"),
        _source(tags=["../x"]),
        _source(tags="x"),
        _source(last_activity="2026-11-20T10:00:00"),
        _source(assignee=7),
        [],
    ],
)
def test_answers_outside_the_contract_are_refused(bad: object) -> None:
    with pytest.raises(ServerError):
        SourceInfo.parse(bad)


def test_unknown_object_kind_is_refused() -> None:
    with pytest.raises(ServerError, match="kind"):
        records.ObjectInfo.parse({"id": "o", "kind": "script", "size": 1})
