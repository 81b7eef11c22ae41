"""Idle and slow clients against a real server held to 384 descriptors (issue 13, items 1 and 5).

More connections than the server has descriptors, some silent, some sending a
request head a byte at a time, some trickling a body far below the minimum
rate: the source interface refuses what is over its cap at once, cuts the late
ones, and then serves a normal visitor who submits; the journalist API, in its
own process, answers all along; the log stays short and quotes nothing sent.
"""

from __future__ import annotations

import base64
import contextlib
import os
import re
import resource
import secrets
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from journalist_cli.identity_store import JournalistIdentity, write_new_identity
from server.web.journalist_api.auth import signed_message
from tests.server_process import (
    ROOT,
    SERVER_CMD,
    Instance,
    Server,
    SourceClient,
    init_instance,
    run_server,
)
from tests.waiting import wait_until

pytestmark = pytest.mark.slow

SERVER_DESCRIPTORS = 384
IDLE = 450  # more than the server's descriptors on their own
SLOW_BODIES = 30
CONFIG = """
[server]
header_timeout_seconds = 3
body_window_seconds = 4
min_body_bytes_per_second = 1024
"""


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@pytest.fixture(autouse=True)
def enough_descriptors_here() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 4 * IDLE:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4 * IDLE), hard))


def make_instance(base: Path) -> tuple[Instance, JournalistIdentity]:
    alice = JournalistIdentity.generate("alice")
    write_new_identity(alice, base / "keys", None)
    data = base / "data"
    init = [*SERVER_CMD, "init", "--data-dir", str(data), "--journalist"]
    subprocess.run([*init, str(base / "keys" / "alice.pub")], check=True, cwd=ROOT)
    (data / "config.toml").write_text(CONFIG, encoding="utf-8")
    instance = Instance(data, [], base / "server-tmp", base / "server.log")
    instance.tmp_dir.mkdir()
    return instance, alice


def api_answers(server: Server) -> bool:
    assert server.api_url is not None
    with httpx.Client(base_url=server.api_url, timeout=10) as client:
        return client.post("/auth/challenge").status_code == 200


def journalist_sources(server: Server, alice: JournalistIdentity) -> list[dict[str, object]]:
    """Log in to the journalist API and list the sources, failing within seconds."""
    api = server.api_url
    assert api is not None
    with httpx.Client(base_url=api, timeout=10) as client:
        challenge = client.post("/auth/challenge").json()["challenge"]
        host = api.split("/")[2]
        sig = alice.signing.sign(signed_message(unb64(challenge), host)).signature
        body = {"journalist": "alice", "challenge": challenge, "signature": b64(sig)}
        token = client.post("/auth/token", json=body).json()["token"]
        r = client.get("/sources", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200
        sources: list[dict[str, object]] = r.json()
        return sources


class Flood:
    """Connections that never finish a request: silent, slow heads, slow bodies."""

    def __init__(self, port: int, canary: str) -> None:
        self.port = port
        self.canary = canary
        self.idle: list[socket.socket] = []
        self.slow: list[socket.socket] = []
        self.cut: set[int] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._trickle, daemon=True)

    def open(self) -> None:
        head = (
            f"POST /en/submit HTTP/1.1\r\nHost: x\r\nX-Canary: {self.canary}\r\n"
            "Content-Type: multipart/form-data; boundary=b\r\nContent-Length: 10000000\r\n\r\n"
        )
        for _ in range(SLOW_BODIES):
            s = socket.create_connection(("127.0.0.1", self.port), timeout=5)
            s.sendall(head.encode() + b"--b\r\n")
            self.slow.append(s)
        for i in range(IDLE):
            s = socket.create_connection(("127.0.0.1", self.port), timeout=5)
            if i % 4 == 1:  # a request head that never ends, quoting the canary
                s.sendall(f"GET /{self.canary} HTTP/1.1\r\nHost: x\r\n".encode())
            self.idle.append(s)
        self._thread.start()

    def _trickle(self) -> None:
        """Ten bytes a second on each slow body: a hundredth of the minimum rate."""
        while not self._stop.wait(1):
            for i, s in enumerate(self.slow):
                if i in self.cut:
                    continue
                try:
                    s.sendall(self.canary.encode()[:10])
                except OSError:
                    self.cut.add(i)

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        for s in self.idle + self.slow:
            s.close()


def refused_at_once(s: socket.socket) -> bool:
    s.settimeout(2)
    try:
        return s.recv(100).startswith(b"HTTP/1.1 503")
    except OSError:
        return False


def closed_by_server(s: socket.socket) -> bool:
    """The server closed ``s`` (after a 503 or nothing at all)."""
    s.settimeout(0.5)
    try:
        while s.recv(4096):
            pass
        return True
    except TimeoutError:
        return False
    except OSError:
        return True


@contextlib.contextmanager
def flooding(server: Server, canary: str) -> Iterator[Flood]:
    flood = Flood(int(server.base_url.rsplit(":", 1)[1]), canary)
    try:
        flood.open()
        yield flood
    finally:
        flood.close()


def test_idle_and_slow_clients_past_the_descriptor_limit(tmp_path: Path) -> None:
    instance, alice = make_instance(tmp_path)
    canary = secrets.token_hex(8)
    with (
        run_server(instance, journalist_api=True, max_descriptors=SERVER_DESCRIPTORS) as server,
        flooding(server, canary) as flood,
    ):
        # The journalist API, its own process, answers during the flood.
        assert journalist_sources(server, alice) == []
        # More connections than descriptors: those over the cap got a 503 at once.
        assert refused_at_once(flood.idle[-1])
        # Heads that do not arrive in time are cut (3 s here), and so are bodies
        # below the minimum rate (a 4 s window here): the source interface serves
        # a visitor again, who loads the page and submits.
        deadline = time.monotonic() + 30
        while True:
            try:
                with SourceClient(server.base_url) as visitor:
                    visitor.client.timeout = httpx.Timeout(10)
                    codename = visitor.first_submission("Un document, pendant l'attaque.")
                break
            except (httpx.HTTPError, AssertionError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(1)
        assert codename
        assert len(journalist_sources(server, alice)) == 1
        # Every flooding connection still open here was closed by the server.
        assert all(closed_by_server(s) for s in flood.idle)
        deadline = time.monotonic() + 15
        while len(flood.cut) < SLOW_BODIES and time.monotonic() < deadline:
            time.sleep(0.5)
        assert len(flood.cut) == SLOW_BODIES
        # Cut, not refused: the slow bodies were opened first, under the cap.
        assert not any(refused_at_once(s) for s in flood.slow)
    log = server.log()
    assert canary not in log
    assert len(log.splitlines()) < 50, log[-2000:]


def test_running_out_of_descriptors_is_logged_once_and_passes(tmp_path: Path) -> None:
    instance = init_instance(tmp_path)
    with run_server(instance, max_descriptors=64) as server:
        port = int(server.base_url.rsplit(":", 1)[1])
        conns: list[socket.socket] = []
        for _ in range(400):  # accept() runs out of descriptors, again and again
            with contextlib.suppress(OSError):
                conns.append(socket.create_connection(("127.0.0.1", port), timeout=1))
        time.sleep(3)
        for s in conns:
            s.close()
        time.sleep(2)
        with SourceClient(server.base_url) as visitor:
            assert visitor.get("/en/submit").status_code == 200
    log = server.log()
    assert log.count("Too many open files") == 1, log[-3000:]
    assert "Traceback" not in log


def journalist_token(server: Server, alice: JournalistIdentity) -> str:
    api = server.api_url
    assert api is not None
    challenge = httpx.post(f"{api}/auth/challenge", timeout=10).json()["challenge"]
    sig = alice.signing.sign(signed_message(unb64(challenge), api.split("/")[2])).signature
    body = {"journalist": "alice", "challenge": challenge, "signature": b64(sig)}
    token: str = httpx.post(f"{api}/auth/token", json=body, timeout=10).json()["token"]
    return token


def test_a_download_nobody_reads_is_cut(tmp_path: Path) -> None:
    instance, alice = make_instance(tmp_path)
    with run_server(instance, journalist_api=True) as server:
        with SourceClient(server.base_url) as source:
            source.first_submission("", [("big.bin", os.urandom(48 << 20), "x/y")])
        biggest = max(instance.objects_dir.iterdir(), key=lambda p: p.stat().st_size)
        assert server.api_url is not None
        host, port = server.api_url.split("/")[2].split(":")
        reader = socket.socket()
        reader.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        reader.connect((host, int(port)))
        reader.sendall(
            f"GET /api/v1/objects/{biggest.name} HTTP/1.1\r\nHost: {host}:{port}\r\n"
            f"Authorization: Bearer {journalist_token(server, alice)}\r\n\r\n".encode()
        )
        # Read nothing for longer than a window (4 s here) plus a check...
        time.sleep(8)
        # ...then everything there is: the server cut the response short.
        received = 0
        reader.settimeout(10)
        with contextlib.suppress(ConnectionResetError):
            while data := reader.recv(1 << 20):
                received += len(data)
        reader.close()
        assert 0 < received < biggest.stat().st_size
        # The journalist API still answers.
        assert journalist_sources(server, alice)


def read_response(s: socket.socket) -> bytes:
    """One HTTP/1.1 response with a Content-Length; b"" if the server closed."""
    data = b""
    while b"\r\n\r\n" not in data:
        if not (more := s.recv(65536)):
            return b""
        data += more
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))  # type: ignore[union-attr]
    while len(body) < length:
        body += s.recv(65536)
    return head


def test_a_busy_keep_alive_connection_is_never_cut(tmp_path: Path) -> None:
    """Requests every half second on one connection, for longer than the head deadline:
    each head arrives in time, though the connection awaits one at every check."""
    instance, _alice = make_instance(tmp_path)
    with run_server(instance) as server:
        port = int(server.base_url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            deadline = time.monotonic() + 8  # the head deadline is 3 s here
            while time.monotonic() < deadline:
                s.sendall(b"GET /en/ HTTP/1.1\r\nHost: x\r\n\r\n")
                assert read_response(s).startswith(b"HTTP/1.1 200")
                time.sleep(0.5)


def test_a_flood_of_the_journalist_api_leaves_the_source_answering(tmp_path: Path) -> None:
    instance, alice = make_instance(tmp_path)
    with run_server(instance, journalist_api=True, max_descriptors=SERVER_DESCRIPTORS) as server:
        assert server.api_url is not None
        api_port = int(server.api_url.split("/")[2].split(":")[1])
        idle = []
        try:
            for _ in range(IDLE):
                idle.append(socket.create_connection(("127.0.0.1", api_port), timeout=5))
            # At once, while every connection the API admits is taken.
            with SourceClient(server.base_url) as visitor:
                visitor.client.timeout = httpx.Timeout(10)
                assert visitor.first_submission("Pendant que l'API est inondée.")
        finally:
            for s in idle:
                s.close()
        # The API frees its slots as it sees the closes (a 503 until then).
        wait_until(lambda: api_answers(server), 15, "the API never answered again")
        assert len(journalist_sources(server, alice)) == 1
