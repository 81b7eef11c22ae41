"""Resumable uploads spread over two instances on separate machines (issue 14 §3-§4).

Two ``lanterne-server run`` processes, each with its OWN data directory, share
a real PostgreSQL cluster and moto's S3 server, behind the round-robin TCP
proxy (the set-up of tests/test_scale_out_workflow.py: what an administrator
copies to the second machine, and nothing more). An upload's state is rows in
PostgreSQL and parts in the bucket (server/store/shared_uploads.py), so its
chunks may arrive at either instance, and one instance is SIGKILLed in the
middle of a chunk and started again:

- a plain tus client over httpx places each chunk on a chosen instance, and
  checks what the bucket holds at each step (a staging object for a chunk
  smaller than a part, then a part of the multipart upload);
- Chromium (Playwright) sends a multi-MiB file through the proxy while one
  instance is killed and restarted.

The journalist then pulls and decrypts with the real ``lanterne`` CLI, byte for
byte, and the plaintext canaries are looked for in PostgreSQL's data
directory, moto's storage (every object, through the S3 API) and log, and both
machines' directories.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

import envelope
from journalist_cli import designations
from tests.e2e import browsers
from tests.pg_cluster import Cluster
from tests.s3_server import S3Server
from tests.server_process import find_canaries
from tests.test_journalist_workflow import lanterne
from tests.test_multi_instance import one_connection_per_request, port_of
from tests.test_scale_out_workflow import (
    Pair,
    TwoMachines,
    bucket_keys,
    pg_count,
)
from tests.test_scale_out_workflow import machines as machines  # the fixture, used by name
from tests.test_uploads_tus import OWNER_COOKIE, PATCH_TYPE, Browser, manifest
from tests.waiting import wait_until

# Two server processes started three times, Chromium, the CLI: CI runs it.
pytestmark = [pytest.mark.slow, pytest.mark.browser]

MiB = 1 << 20
SEGMENT = 4 * MiB  # what the page sends per PATCH: less than an S3 part (5 MiB)


def canary(tag: str) -> bytes:
    return f"LNTCANARY-scale-out-upload-{tag}-{os.urandom(4).hex()}".encode()


def document_with(mark: bytes, size: int) -> bytes:
    """Random bytes with the canary at the start, astride a segment and at the end."""
    body = bytearray(os.urandom(size))
    for at in (0, SEGMENT - len(mark) // 2, size - len(mark)):
        body[at : at + len(mark)] = mark
    return bytes(body)


def seal(m: TwoMachines, plaintext: bytes) -> bytes:
    public = envelope.PublicKey.from_json((m.keys / "alice.pub").read_text())
    return envelope.encrypt_bytes(plaintext, [public.recipient])


def multipart_keys(s3: S3Server, bucket: str) -> list[str]:
    uploads = s3.client().list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    return [str(u["Key"]) for u in uploads]


def received(m: TwoMachines, upload_id: str) -> int:
    with psycopg.connect(m.url) as conn:
        row = conn.execute("SELECT received FROM uploads WHERE id = %s", (upload_id,)).fetchone()
    return -1 if row is None else int(row[0])


def same_browser(url: str, like: Browser) -> Browser:
    """The same cookies (the session's and the upload cookie) on another instance."""
    other = Browser(url)
    other.client.cookies.update(dict(like.client.cookies))
    return other


def journalist_reads(m: TwoMachines, tmp_path: Path) -> tuple[dict[str, bytes], str]:
    """Pull and decrypt with the real CLI through the API's balancer: the one
    submission's files (name to bytes) and message."""
    alice = tmp_path / "alice"
    lanterne(alice, "config", "--server", m.api_proxy.url, "--identity", m.keys / "alice.identity")
    assert b"1 source;" in lanterne(alice, "pull").stdout
    [row] = json.loads(lanterne(alice, "list", "--json").stdout)
    assert row["submissions"] == 1 and row["missing_objects"] == 0
    out = tmp_path / "out"
    lanterne(alice, "decrypt", row["id"], "--out", out, "--no-clean")
    [sub] = (out / designations.slug(row["id"])).iterdir()
    files = {p.name: p.read_bytes() for p in (sub / "original").iterdir()}
    return files, (sub / "message.txt").read_text()


def no_canary_anywhere(
    m: TwoMachines, s3: S3Server, pg_cluster: Cluster, canaries: list[bytes]
) -> None:
    client = s3.client()
    for key in bucket_keys(s3, m.bucket):
        body = client.get_object(Bucket=m.bucket, Key=key)["Body"].read()
        assert not any(c in body for c in canaries), key
    probe = "LNTPROBE-" + os.urandom(8).hex()
    with psycopg.connect(m.url) as conn:
        conn.execute("INSERT INTO meta(key, value) VALUES ('probe', %s)", (probe,))
    with psycopg.connect(pg_cluster.url(), autocommit=True) as conn:
        conn.execute("CHECKPOINT")
    assert find_canaries([probe.encode()], [pg_cluster.data_dir])  # the scan reads the pages
    roots = [
        pg_cluster.data_dir.parent,
        s3.log_path.parent,
        *(i.data_dir.parent for i in (m.first, m.second)),  # data, TMPDIR, log
    ]
    assert find_canaries(canaries, roots) == []


def nothing_left_of_uploads(m: TwoMachines, s3: S3Server, objects: set[str]) -> None:
    assert pg_count(m.url, "uploads") == 0 and pg_count(m.url, "upload_parts") == 0
    assert multipart_keys(s3, m.bucket) == []
    assert bucket_keys(s3, m.bucket) == objects  # no staging object left
    for instance in (m.first, m.second):
        assert not [p for p in (instance.data_dir / "uploads").iterdir()]
        assert not [p for p in (instance.data_dir / "spool").iterdir()]


def test_tus_chunks_placed_on_each_instance_survive_a_killed_one(
    request: pytest.FixtureRequest, s3_server: S3Server, pg_cluster: Cluster, tmp_path: Path
) -> None:
    m: TwoMachines = request.getfixturevalue("machines")
    message, mark = canary("message"), canary("file")
    document = document_with(mark, 21 * MiB + 12345)
    data = seal(m, document)
    with contextlib.ExitStack() as stack:
        pair = Pair(m, s3_server, stack)
        a, b = pair.servers
        on_a = stack.enter_context(Browser(a.base_url))
        token = on_a.csrf()  # the session starts on a
        upload_id = on_a.create(len(data))  # and the upload cookie
        on_b = stack.enter_context(same_browser(b.base_url, on_a))

        # 1. 4 MiB on a: less than a part, so a staging object (a random id).
        assert on_a.patch(upload_id, 0, data[:SEGMENT]).status_code == 204
        [staging] = bucket_keys(s3_server, m.bucket)
        assert staging != upload_id and len(staging) == 32
        assert multipart_keys(s3_server, m.bucket) == []
        # 2. The next 4 MiB on b: with the staged 4 MiB, the first part.
        r = on_b.patch(upload_id, SEGMENT, data[SEGMENT : 2 * SEGMENT])
        assert r.status_code == 204 and int(r.headers["upload-offset"]) == 2 * SEGMENT
        assert bucket_keys(s3_server, m.bucket) == set()  # the staging object is gone
        assert multipart_keys(s3_server, m.bucket) == [upload_id]
        assert pg_count(m.url, "upload_parts") == 1

        # 3. Half of the third segment reaches a, which is then SIGKILLed.
        raw = socket.create_connection(("127.0.0.1", port_of(a.base_url)))
        head = (
            f"PATCH /tus/{upload_id} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Tus-Resumable: 1.0.0\r\nContent-Type: {PATCH_TYPE}\r\n"
            f"Upload-Offset: {2 * SEGMENT}\r\nContent-Length: {SEGMENT}\r\n"
            f"Cookie: {OWNER_COOKIE}={on_a.client.cookies[OWNER_COOKIE]}\r\n\r\n"
        )
        raw.sendall(head.encode() + data[2 * SEGMENT : 2 * SEGMENT + SEGMENT // 2])
        time.sleep(1)  # a is reading it
        pair.kill(0)
        raw.close()
        # b answers alone, from what PostgreSQL holds: the chunk in flight is lost.
        assert on_b.offset(upload_id) == 2 * SEGMENT
        pair.start_again(0)
        a2 = pair.servers[0]
        on_a2 = stack.enter_context(same_browser(a2.base_url, on_a))
        assert on_a2.offset(upload_id) == on_b.offset(upload_id) == 2 * SEGMENT

        # 4. The rest, alternating: small chunks on a2 (staging), then b (parts).
        offset, turn = 2 * SEGMENT, 0
        while offset < len(data):
            client, size = (on_a2, MiB) if turn % 2 == 0 else (on_b, SEGMENT)
            r = client.patch(upload_id, offset, data[offset : offset + size])
            assert r.status_code == 204, r.status_code
            offset = int(r.headers["upload-offset"])
            turn += 1
        assert turn >= 4  # both instances took chunks after the restart
        assert received(m, upload_id) == len(data)

        # 5. The message and manifest through the balancer; the commit, anywhere.
        with Browser(m.source_proxy.url) as through:
            through.client = one_connection_per_request(through.client, m.source_proxy.url)
            through.client.cookies.update(dict(on_a.client.cookies))
            msg_id = through.upload(seal(m, message))
            plain = manifest(
                (msg_id, len(message)),
                [(upload_id, "leak.bin", "application/octet-stream", len(document))],
            )
            manifest_id = through.upload(seal(m, plain))
            r = through.commit(manifest_id, msg_id, [upload_id], token=token)
            assert r.status_code == 303, r.text
            assert r.headers["location"] == "/en/codename"
        nothing_left_of_uploads(m, s3_server, {upload_id, msg_id, manifest_id})
        files, text = journalist_reads(m, tmp_path)
    assert files == {"leak.bin": document}
    assert text == message.decode()
    no_canary_anywhere(m, s3_server, pg_cluster, [message, mark])


# Chromium


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    with browsers.playwright_chromium() as browser:
        yield browser


def test_a_browser_upload_over_both_instances_survives_a_killed_one(
    request: pytest.FixtureRequest,
    s3_server: S3Server,
    pg_cluster: Cluster,
    chromium: Any,
    tmp_path: Path,
) -> None:
    """The page's own tus client (server/static/upload.js) through the proxy.
    Which instance a browser's keep-alive connection reaches is the proxy's
    choice, so the test steers it: instance 1 alone until chunks arrived, then
    instance 1 is SIGKILLed (its connections cut) and instance 2 alone receives
    more, then instance 1, restarted, joins again."""
    m: TwoMachines = request.getfixturevalue("machines")
    message, mark = canary("message"), canary("file")
    big = tmp_path / "dossier.bin"
    big.write_bytes(document_with(mark, 40 * MiB + 777))

    def largest_upload() -> int:
        with psycopg.connect(m.url) as conn:
            row = conn.execute("SELECT max(received) FROM uploads").fetchone()
        return int(row[0]) if row and row[0] is not None else -1

    with contextlib.ExitStack() as stack:
        pair = Pair(m, s3_server, stack)
        one, two = pair.servers
        m.source_proxy.backends = [port_of(one.base_url)]
        page = chromium.new_context().new_page()
        page.goto(f"{m.source_proxy.url}/en/submit")
        page.wait_for_selector("#path-browser", state="visible")
        page.fill("#message", message.decode())
        page.set_input_files("#files", [str(big)])
        page.click("button[type=submit]")
        wait_until(lambda: largest_upload() >= SEGMENT, 120, "no chunk reached instance 1")
        at_kill = largest_upload()
        pair.kill(0)  # the proxy now sends everything to instance 2
        assert at_kill < big.stat().st_size
        wait_until(
            lambda: largest_upload() >= at_kill + SEGMENT, 120, "no chunk reached instance 2"
        )
        served_two = m.source_proxy.served.get(port_of(two.base_url), 0)
        assert served_two >= 1
        pair.start_again(0)
        page.wait_for_url("**/en/codename", timeout=300_000)
        assert len(page.inner_text("#codename").split()) == 9
        page.context.close()
        with psycopg.connect(m.url) as conn:
            objects = {str(r[0]) for r in conn.execute("SELECT id FROM objects").fetchall()}
        assert len(objects) == 3  # the manifest, the message, the file
        # The chunk in flight at the kill may have left one staging object that
        # no row names (garbage collection removes it a day later); nothing else.
        orphans = bucket_keys(s3_server, m.bucket) - objects
        assert len(orphans) <= 1, orphans
        nothing_left_of_uploads(m, s3_server, objects | orphans)
        files, text = journalist_reads(m, tmp_path)
    assert files == {"dossier.bin": big.read_bytes()}
    assert text == message.decode()
    no_canary_anywhere(m, s3_server, pg_cluster, [message, mark])
