"""Submissions through a real uvicorn process: encrypted on arrival, nothing in the clear.

Each test plants random canary strings in the message, the files, the file
names and the answers, then scans the data dir, the database, the server's
temp dir, the system temp dirs and the server log for them.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

import envelope
from tests.server_process import (
    Instance,
    Server,
    SourceClient,
    db_rows,
    decrypt_object,
    find_canaries,
    init_instance,
    object_files,
    run_server,
)
from tests.waiting import wait_until

SYSTEM_TMP = [Path("/tmp"), Path("/var/tmp"), Path("/dev/shm")]


@pytest.fixture
def instance(tmp_path: Path) -> Instance:
    return init_instance(tmp_path / "srv")


@pytest.fixture
def server(instance: Instance) -> Server:
    with run_server(instance) as srv:
        yield srv


@pytest.fixture
def new_source(server: Server):
    """Make source clients (a fresh browser each), closed after the test."""
    clients: list[SourceClient] = []

    def make(lang: str = "en") -> SourceClient:
        clients.append(SourceClient(server.base_url, lang=lang))
        return clients[-1]

    yield make
    for c in clients:
        c.close()


def canary(label: str) -> bytes:
    return f"CANARY-{label}-{secrets.token_hex(12)}".encode()


def scan_roots(instance: Instance) -> list[Path]:
    return [instance.data_dir, instance.tmp_dir, instance.log_path, *SYSTEM_TMP]


def manifests(instance: Instance) -> list[dict]:
    rows = db_rows(instance, "objects")
    return [json.loads(decrypt_object(instance, r[0])) for r in rows if r[2] == "manifest"]


def test_no_js_submission_to_hybrid_journalists_has_only_hybrid_stanzas(
    tmp_path: Path,
) -> None:
    """Issue 15: the server's no-JS path writes one X-Wing stanza per hybrid journalist."""
    instance = init_instance(tmp_path / "srv", names=("alice", "bruno"), hybrid=True)
    with run_server(instance) as server, SourceClient(server.base_url) as src:
        keys = httpx.get(f"{server.base_url}/en/recipients.json").json()["recipients"]
        assert [k["name"] for k in keys] == ["alice", "bruno"]
        for k, j in zip(keys, instance.journalists, strict=True):
            assert k["keys"] == j.public.typed_keys()
            assert k["fingerprint"] == j.public.fingerprint
            assert "encryption_key" not in k  # no X25519-only fallback to offer
        token = src.csrf("/en/submit")
        response = src.submit("post-quantum", files=[("a.txt", b"A" * 5000, "text/plain")],
                              token=token)  # fmt: skip
        assert response.status_code == 303
    rows = db_rows(instance, "objects")
    assert sorted(r[2] for r in rows) == ["file", "manifest", "message"]
    for row in rows:
        data = (instance.objects_dir / row[0]).read_bytes()
        parsed = envelope._header.parse_header(data)
        assert parsed is not None
        assert [(s.type, len(s.body)) for s in parsed.stanzas] == [(0x0002, 1168)] * 2
        for j in instance.journalists:  # each opens with its hybrid key alone
            envelope.decrypt_bytes(data, [j.identity])


@pytest.mark.slow
def test_httpx_submission_is_encrypted_and_decrypts_exactly(
    new_source, server: Server, instance: Instance, tmp_path: Path
) -> None:
    started = time.time() - 1
    c_msg, c_file, c_name, c_answer = (canary(x) for x in ("msg", "file", "name", "answer"))
    big = os.urandom(3 * 65536 + 123) + c_file + os.urandom(5000)
    small = b"note " + c_file + b"\n"
    message = "Bonjour, voici les faits : " + c_msg.decode() + " — été"
    src = new_source()
    token = src.csrf("/en/submit")
    response = src.submit(
        message,
        files=[
            (f"{c_name.decode()}.pdf", big, "application/pdf"),
            ("plain.txt", small, "text/plain"),
        ],
        answers={"administration": "Ministère " + c_answer.decode()},
        token=token,
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/en/codename"

    # Everything on disk is ciphertext; no canary anywhere a file could leak.
    hits = find_canaries([c_msg, c_file, c_name, c_answer], scan_roots(instance), since=started)
    assert hits == []
    assert c_msg.decode() not in server.log()

    # Four objects: manifest, message, two files; each decrypts for every journalist.
    rows = db_rows(instance, "objects")
    assert sorted(r[2] for r in rows) == ["file", "file", "manifest", "message"]
    assert object_files(instance) == {r[0] for r in rows}
    for row in rows:
        data = (instance.objects_dir / row[0]).read_bytes()
        assert row[3] == len(data)
        for identity in instance.identities():
            envelope.decrypt_bytes(data, [identity])

    [manifest] = manifests(instance)
    assert manifest["type"] == "lanterne-manifest/v1"
    assert manifest["follow_up"] is False
    assert manifest["answers"] == [
        {
            "id": "administration",
            "question": "Which administration or organisation is concerned?",
            "answer": "Ministère " + c_answer.decode(),
        }
    ]
    assert decrypt_object(instance, manifest["message"]["object"]).decode() == message
    files = {f["name"]: f for f in manifest["files"]}
    assert set(files) == {f"{c_name.decode()}.pdf", "plain.txt"}
    assert files[f"{c_name.decode()}.pdf"]["type"] == "application/pdf"
    assert files[f"{c_name.decode()}.pdf"]["size"] == len(big)
    assert decrypt_object(instance, files[f"{c_name.decode()}.pdf"]["object"]) == big
    assert decrypt_object(instance, files["plain.txt"]["object"]) == small
    # Padded: the ciphertext does not give the exact size of the small file away.
    assert (instance.objects_dir / files["plain.txt"]["object"]).stat().st_size > 4096


def test_follow_up_joins_the_same_source(new_source, server: Server, instance: Instance) -> None:
    src = new_source("fr")
    src.first_submission("premier message")
    response = src.submit("deuxième message")
    assert response.status_code == 303
    assert response.headers["location"] == "/fr/inbox"
    inbox = src.get("/fr/inbox")
    assert "Votre envoi a été reçu et chiffré" in inbox.text
    subs = db_rows(instance, "submissions")
    assert len(subs) == 2
    assert subs[0][1] == subs[1][1]  # same source id
    assert sorted(m["follow_up"] for m in manifests(instance)) == [False, True]
    assert len(db_rows(instance, "sources")) == 1


@pytest.mark.slow
def test_curl_multipart_submission(
    new_source, server: Server, instance: Instance, tmp_path: Path
) -> None:
    client_dir = tmp_path / "client"  # the source's own files: not scanned
    client_dir.mkdir()
    started = time.time() - 1
    c_msg, c_file = canary("curlmsg"), canary("curlfile")
    content = os.urandom(200_000) + c_file
    (client_dir / "evidence.bin").write_bytes(content)
    jar = client_dir / "cookies"
    page = subprocess.run(
        ["curl", "-sS", "-c", jar, "-b", jar, f"{server.base_url}/en/submit"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    token = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    out = subprocess.run(
        [
            "curl",
            "-sS",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code} %{redirect_url}",
            "-c",
            jar,
            "-b",
            jar,
            "-F",
            f"csrf_token={token}",
            "-F",
            f"message={c_msg.decode()}",
            "-F",
            f"files=@{client_dir / 'evidence.bin'};type=application/octet-stream",
            "-F",
            "q_dates=2025",
            f"{server.base_url}/en/submit",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert out.startswith("303 ") and out.endswith("/en/codename")
    assert (
        find_canaries([c_msg, c_file], scan_roots(instance), since=started, exclude=[client_dir])
        == []
    )
    [manifest] = manifests(instance)
    [entry] = manifest["files"]
    assert entry["name"] == "evidence.bin"
    assert (
        hashlib.sha256(decrypt_object(instance, entry["object"])).digest()
        == hashlib.sha256(content).digest()
    )
    assert decrypt_object(instance, manifest["message"]["object"]) == c_msg
    assert manifest["answers"][0]["answer"] == "2025"


def _raw_upload_start(
    server: Server, src: SourceClient, file_bytes: int
) -> tuple[socket.socket, bytes, bytes]:
    """Open a multipart POST by hand and send all but the end of it."""
    token = src.csrf("/en/submit")
    cookie = "; ".join(f"{k}={v}" for k, v in src.client.cookies.items())
    boundary = b"----lanterne" + secrets.token_hex(8).encode()
    head = (
        b"--"
        + boundary
        + b'\r\nContent-Disposition: form-data; name="csrf_token"\r\n\r\n'
        + token.encode()
        + b"\r\n--"
        + boundary
        + b'\r\nContent-Disposition: form-data; name="files"; filename="big.bin"\r\n'
        b"Content-Type: application/octet-stream\r\n\r\n"
    )
    tail = b"\r\n--" + boundary + b"--\r\n"
    length = len(head) + file_bytes + len(tail)
    port = int(server.base_url.rsplit(":", 1)[1])
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(
        b"POST /en/submit HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: multipart/form-data; boundary=" + boundary + b"\r\n"
        b"Content-Length: " + str(length).encode() + b"\r\n"
        b"Cookie: " + cookie.encode() + b"\r\n\r\n" + head
    )
    return sock, tail, boundary


def part_file_exists(instance: Instance) -> Callable[[], bool]:
    return lambda: any(p.name.endswith(".part") for p in instance.objects_dir.iterdir())


def test_submission_is_invisible_until_complete(
    new_source, server: Server, instance: Instance
) -> None:
    src = new_source()
    size = 4 * 1024 * 1024
    sock, tail, _ = _raw_upload_start(server, src, size)
    try:
        sent = 0
        block = os.urandom(256 * 1024)
        while sent < size - len(block):
            sock.sendall(block)
            sent += len(block)
        # Most of the file is in: a temporary object exists, but no submission.
        wait_until(part_file_exists(instance), 10, "no temporary object appeared")
        assert db_rows(instance, "submissions") == []
        sock.sendall(os.urandom(size - sent) + tail)
        reply = sock.recv(4096)
        assert reply.startswith(b"HTTP/1.1 303")
    finally:
        sock.close()
    assert len(db_rows(instance, "submissions")) == 1
    assert not any(p.name.endswith(".part") for p in instance.objects_dir.iterdir())


def test_dropped_connection_leaves_nothing(new_source, server: Server, instance: Instance) -> None:
    started = time.time() - 1
    c_file = canary("dropped")
    src = new_source()
    sock, _tail, _ = _raw_upload_start(server, src, 8 * 1024 * 1024)
    sock.sendall((c_file + os.urandom(100_000)) * 20)
    wait_until(part_file_exists(instance), 10, "no temporary object appeared")
    sock.close()  # the source's circuit drops mid-upload
    wait_until(lambda: not any(instance.objects_dir.iterdir()), 10, "objects left behind")
    assert db_rows(instance, "submissions") == []
    assert db_rows(instance, "objects") == []
    assert db_rows(instance, "sources") == []
    assert find_canaries([c_file], scan_roots(instance), since=started) == []
    # The server is still serving.
    assert src.get("/en/").status_code == 200
