"""A 1 GiB file through the real server: memory stays flat, the bytes come back exact."""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import envelope
from tests.server_process import SourceClient, db_rows, init_instance, run_server

GiB = 1 << 30
MiB = 1 << 20
RSS_LIMIT = 200 * MiB


class _HashSink:
    def __init__(self) -> None:
        self.sha = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.sha.update(data)
        self.size += len(data)
        return len(data)


@pytest.mark.slow
def test_one_gib_upload_keeps_server_memory_low(tmp_path: Path) -> None:
    instance = init_instance(tmp_path / "srv")
    boundary = "----lanterne-large-" + os.urandom(6).hex()
    block = os.urandom(MiB)
    sent_sha = hashlib.sha256()
    try:
        with run_server(instance) as server, SourceClient(server.base_url) as src:
            token = src.csrf("/en/submit")
            head = (
                f'--{boundary}\r\nContent-Disposition: form-data; name="csrf_token"\r\n\r\n'
                f'{token}\r\n--{boundary}\r\nContent-Disposition: form-data; name="message"\r\n\r\n'
                f'one large file\r\n--{boundary}\r\nContent-Disposition: form-data; name="files"; '
                f'filename="large.bin"\r\nContent-Type: application/octet-stream\r\n\r\n'
            ).encode()
            tail = f"\r\n--{boundary}--\r\n".encode()

            def body() -> Iterator[bytes]:
                yield head
                for i in range(GiB // MiB):
                    # Vary each block so that no two chunks encrypt from the same plaintext.
                    piece = i.to_bytes(8, "big") + block[8:]
                    sent_sha.update(piece)
                    yield piece
                yield tail

            started = time.monotonic()
            response = src.client.post(
                "/en/submit",
                content=body(),
                headers={
                    "content-type": f"multipart/form-data; boundary={boundary}",
                    "content-length": str(len(head) + GiB + len(tail)),
                },
            )
            elapsed = time.monotonic() - started
            assert response.status_code == 303, response.text[:300]
            peak = server.peak_rss()
        print(f"1 GiB upload: {elapsed:.1f} s, server peak RSS {peak / MiB:.0f} MiB")
        assert peak < RSS_LIMIT

        [file_row] = [r for r in db_rows(instance, "objects") if r[2] == "file"]
        sink = _HashSink()
        with (instance.objects_dir / str(file_row[0])).open("rb") as f:
            envelope.decrypt(f, sink, instance.identities()[1:])  # type: ignore[arg-type]
        assert sink.size == GiB
        assert sink.sha.digest() == sent_sha.digest()
    finally:
        shutil.rmtree(instance.objects_dir, ignore_errors=True)
