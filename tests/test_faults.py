"""kill -9 at many points of a no-JS submission, a resumable upload and a commit,
then a restart on the same data directory (issue 13, item 5).

After each restart: the journalist API lists only complete submissions (every
object there decrypts whole); no file is left that no row names, and no row
whose file is gone (start-up's collection); no plaintext canary anywhere in the
data directory, the server's TMPDIR or its log; an upload resumes from at least
the offset the server last acknowledged, and its bytes are exactly the client's.

The kill points are chosen deterministically, without any hook in the server:
either by the client (after N bytes of a request were sent), or by ``strace``,
which sends SIGKILL to the server at the first call of a given system call on a
given file (``-P``: the upload's file, the database's WAL) or anywhere
(``rename``: an object being completed). The test checks that the server did
die there (status -9), so a kill point that is never reached fails the test.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import socket
import subprocess
import termios
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

import envelope
from journalist_cli.identity_store import JournalistIdentity
from server.settings import MiB
from tests.server_process import (
    CSRF_RE,
    Instance,
    Server,
    SourceClient,
    db_rows,
    find_canaries,
    run_server,
)
from tests.test_full_disk import Journalist, make_instance, seal_to
from tests.test_uploads_tus import Browser, manifest
from tests.waiting import wait_until

pytestmark = pytest.mark.slow

CANARY = b"FAULT-CANARY-7c1e9b2f"
BOUNDARY = "lanterne-fault-boundary"


@dataclass
class Killed:
    server: Server

    def wait(self) -> None:
        """The server died of SIGKILL within 30 s: the kill point was reached."""
        try:
            code = self.server.proc.wait(30)
        except subprocess.TimeoutExpired:
            pytest.fail("the kill point was never reached: the server is still running")
        assert code == -signal.SIGKILL, code


def _traced(pid: int) -> bool:
    tasks = Path(f"/proc/{pid}/task")
    return all("TracerPid:\t0\n" not in (t / "status").read_text() for t in tasks.iterdir())


@contextlib.contextmanager
def kill_at(server: Server, syscalls: str, path: Path | None = None) -> Iterator[Killed]:
    """SIGKILL to the server at the first call of one of ``syscalls`` (on ``path``
    if given), by strace, attached to every thread before the block runs."""
    args = ["strace", "-f", "-qq", "-o", "/dev/null", "-p", str(server.pid)]
    if path is not None:
        args += ["-P", str(path)]
    args += ["-e", f"trace={syscalls}", "-e", f"inject={syscalls}:signal=KILL:when=1"]
    tracer = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: _traced(server.pid), 30, "strace did not attach")
        killed = Killed(server)
        yield killed
        killed.wait()
    finally:
        with contextlib.suppress(subprocess.TimeoutExpired):
            tracer.wait(30)
        if tracer.poll() is None:
            tracer.kill()
            tracer.wait()


def kill_now(server: Server) -> None:
    server.proc.send_signal(signal.SIGKILL)
    Killed(server).wait()


RENAME = "rename,renameat,renameat2"
SYNC = "fsync,fdatasync"
WRITE = "pwrite64,write"


def wal(instance: Instance) -> Path:
    return instance.data_dir / "lanterne.sqlite3-wal"


# Checking an instance after the restart


def check_instance(instance: Instance, server: Server, alice: JournalistIdentity) -> int:
    """Every invariant of the module docstring; returns how many submissions are listed."""
    journalist = Journalist(server, alice)
    try:
        listed = journalist.submissions()
    finally:
        journalist.close()
    for submission in listed:
        objects = submission["objects"]
        assert isinstance(objects, list) and objects
        for obj in objects:
            data = (instance.objects_dir / obj["id"]).read_bytes()
            envelope.decrypt_bytes(data, alice.identities())  # whole, or it raises
    named = {r[0] for r in db_rows(instance, "objects")}
    named |= {r[2] for r in db_rows(instance, "replies")}
    named |= {r[2] for r in db_rows(instance, "notes")}
    assert set(os.listdir(instance.objects_dir)) == named, "an orphan object, or one missing"
    uploads = {r[0] for r in db_rows(instance, "uploads")}
    on_disk = {n.removesuffix(".part") for n in os.listdir(instance.data_dir / "uploads")}
    assert on_disk == uploads, "an upload file without its row, or a row without its file"
    hits = find_canaries([CANARY], [instance.data_dir, instance.tmp_dir, instance.log_path])
    assert hits == []
    return len(listed)


# The no-JavaScript submission


def form_body(token: str, size: int) -> bytes:
    parts = [("csrf_token", token), ("website", ""), ("message", CANARY.decode() + " message")]
    head = "".join(
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{n}"\r\n\r\n{v}\r\n'
        for n, v in parts
    )
    head += (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="files"; filename="f.bin"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    )
    document = (CANARY + os.urandom(1000)) * (size // (len(CANARY) + 1000))
    return head.encode() + document + f"\r\n--{BOUNDARY}--\r\n".encode()


def raw_post(server: Server, src: SourceClient, body: bytes) -> socket.socket:
    """Open a connection and send the request head of a no-JS submission of ``body``."""
    port = int(server.base_url.rsplit(":", 1)[1])
    cookies = "; ".join(f"{k}={v}" for k, v in src.client.cookies.items())
    head = (
        f"POST /en/submit HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nCookie: {cookies}\r\n"
        f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    conn = socket.create_connection(("127.0.0.1", port), 10)
    conn.sendall(head.encode())
    return conn


def token_of(src: SourceClient) -> str:
    match = CSRF_RE.search(src.get("/en/submit").text)
    assert match
    return match.group(1)


FORM_SIZE = 3 * MiB
# (what, where): by the client after N bytes of the body, or by strace.
NOJS_POINTS = [
    ("sent", 0),
    ("sent", 40_000),
    ("sent", 1 * MiB),
    ("sent", FORM_SIZE - 4096),
    ("first rename (the message object completed)", RENAME),
    ("first fsync (an object made durable)", SYNC),
    ("first WAL write (recording the submission)", "wal"),
    ("first WAL sync (committing the submission)", "wal-sync"),
]


@pytest.mark.parametrize(("what", "where"), NOJS_POINTS, ids=[p[0] for p in NOJS_POINTS])
def test_kill_during_a_no_js_submission(tmp_path: Path, what: str, where: object) -> None:
    instance, alice = make_instance(tmp_path, tmp_path / "data")
    with run_server(instance, journalist_api=True) as server, SourceClient(server.base_url) as src:
        body = form_body(token_of(src), FORM_SIZE)
        conn = raw_post(server, src, body)
        try:
            if isinstance(where, int):
                conn.sendall(body[:where])
                wait_until(lambda: read_by_server(conn), 10, "the server never read it")
                kill_now(server)
            else:
                target = {"wal": (WRITE, wal(instance)), "wal-sync": (SYNC, wal(instance))}
                syscalls, path = target.get(str(where), (str(where), None))
                with kill_at(server, syscalls, path), contextlib.suppress(OSError):
                    conn.sendall(body)
        finally:
            conn.close()
    with run_server(instance, journalist_api=True) as again:
        listed = check_instance(instance, again, alice)
    # Killed before the record was committed, nothing is listed; a kill during the
    # commit's sync may land either side of it, but never half.
    assert listed <= 1
    if where != "wal-sync":
        assert listed == 0


def read_by_server(conn: socket.socket) -> bool:
    """Everything sent on ``conn`` has left this end and was read by the server
    process (its socket's receive queue, in /proc/net/tcp, is empty)."""
    if fcntl.ioctl(conn.fileno(), termios.TIOCOUTQ, b"\0\0\0\0") != b"\0\0\0\0":
        return False
    server_port, client_port = conn.getpeername()[1], conn.getsockname()[1]
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote, queues = fields[1], fields[2], fields[4]
        if int(local.split(":")[1], 16) == server_port and (
            int(remote.split(":")[1], 16) == client_port
        ):
            return int(queues.split(":")[1], 16) == 0
    return False


# Resumable uploads and the commit


SEGMENT = 1 * MiB


def started_upload(
    server: Server, alice: JournalistIdentity, size: int = 3 * MiB
) -> tuple[Browser, str, bytes, int]:
    """A browser with one upload, its first segment acknowledged."""
    document = seal_to(alice, os.urandom(size))
    browser = Browser(server.base_url)
    upload_id = browser.create(len(document))
    r = browser.patch(upload_id, 0, document[:SEGMENT])
    assert r.status_code == 204
    return browser, upload_id, document, int(r.headers["upload-offset"])


TUS_POINTS = [
    ("sent", SEGMENT // 2),
    ("sync of the upload's file", "part-sync"),
    ("WAL write (recording the offset)", "wal"),
    ("WAL sync (committing the offset)", "wal-sync"),
]


@pytest.mark.parametrize(("what", "where"), TUS_POINTS, ids=[p[0] for p in TUS_POINTS])
def test_kill_during_a_resumable_upload(tmp_path: Path, what: str, where: object) -> None:
    instance, alice = make_instance(tmp_path, tmp_path / "data")
    with run_server(instance, journalist_api=True) as server:
        browser, upload_id, document, acked = started_upload(server, alice)
        cookies = dict(browser.client.cookies.items())
        browser.close()
        part = instance.data_dir / "uploads" / f"{upload_id}.part"
        segment = document[acked : acked + SEGMENT]
        if isinstance(where, int):
            port = int(server.base_url.rsplit(":", 1)[1])
            with socket.create_connection(("127.0.0.1", port), 10) as conn:
                cookie = "; ".join(f"{k}={v}" for k, v in cookies.items())
                conn.sendall(
                    (
                        f"PATCH /tus/{upload_id} HTTP/1.1\r\nHost: x\r\nCookie: {cookie}\r\n"
                        "Tus-Resumable: 1.0.0\r\nContent-Type: application/offset+octet-stream\r\n"
                        f"Upload-Offset: {acked}\r\nContent-Length: {len(segment)}\r\n\r\n"
                    ).encode()
                    + segment[:where]
                )
                wait_until(lambda: read_by_server(conn), 10, "the server never read it")
                kill_now(server)
        else:
            target = {
                "part-sync": (SYNC, part),
                "wal": (WRITE, wal(instance)),
                "wal-sync": (SYNC, wal(instance)),
            }
            syscalls, path = target[str(where)]
            with kill_at(server, syscalls, path), Browser(server.base_url) as again:
                again.client.cookies.update(cookies)
                with contextlib.suppress(httpx.HTTPError):
                    again.patch(upload_id, acked, segment)
    with run_server(instance, journalist_api=True) as server, Browser(server.base_url) as browser:
        browser.client.cookies.update(cookies)
        offset = browser.offset(upload_id)
        assert acked <= offset <= acked + len(segment)
        assert part.read_bytes()[:offset] == document[:offset]
        check_instance(instance, server, alice)
        # It resumes from there, and the journalists get exactly what was sent.
        for start in range(offset, len(document), SEGMENT):
            r = browser.patch(upload_id, start, document[start : start + SEGMENT])
            assert r.status_code == 204
        manifest_id = browser.upload(
            seal_to(alice, manifest(None, [(upload_id, "d.bin", "", len(document))]))
        )
        assert browser.commit(manifest_id, None, [upload_id]).status_code == 303
        assert check_instance(instance, server, alice) == 1
        assert (instance.objects_dir / upload_id).read_bytes() == document


COMMIT_POINTS = [
    ("rename of the first upload", "rename-first"),
    ("rename of the second upload", "rename-second"),
    ("WAL write (recording the submission)", "wal"),
    ("WAL sync (committing the submission)", "wal-sync"),
]


@pytest.mark.parametrize(("what", "where"), COMMIT_POINTS, ids=[p[0] for p in COMMIT_POINTS])
def test_kill_during_a_commit(tmp_path: Path, what: str, where: str) -> None:
    instance, alice = make_instance(tmp_path, tmp_path / "data")
    with run_server(instance, journalist_api=True) as server:
        browser = Browser(server.base_url)
        document = seal_to(alice, os.urandom(2 * MiB))
        file_id = browser.upload(document, SEGMENT)
        manifest_id = browser.upload(
            seal_to(alice, manifest(None, [(file_id, "d.bin", "", len(document))]))
        )
        token = browser.csrf()
        uploads = instance.data_dir / "uploads"
        # The commit moves the manifest first, then the file.
        target = {
            "rename-first": (RENAME, uploads / f"{manifest_id}.part"),
            "rename-second": (RENAME, uploads / f"{file_id}.part"),
            "wal": (WRITE, wal(instance)),
            "wal-sync": (SYNC, wal(instance)),
        }
        syscalls, path = target[where]
        with kill_at(server, syscalls, path), contextlib.suppress(httpx.HTTPError):
            browser.commit(manifest_id, None, [file_id], token=token)
        cookies = dict(browser.client.cookies.items())
        browser.close()
    with run_server(instance, journalist_api=True) as server, Browser(server.base_url) as again:
        listed = check_instance(instance, server, alice)
        if where != "wal-sync":
            assert listed == 0
        # The page sends the commit again. Recorded, its uploads are no longer
        # uploads ("missing"); else what the commit had moved was taken back at
        # start, and the same commit goes through.
        again.client.cookies.update(cookies)
        r = again.commit(manifest_id, None, [file_id])
        assert r.status_code == (400 if listed else 303), r.status_code
        listed = check_instance(instance, server, alice)
    assert listed == 1
    assert (instance.objects_dir / file_id).read_bytes() == document
