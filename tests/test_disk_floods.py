"""The disk under an anonymous flood (issue 11, items 8 and 9): empty resumable
uploads declaring huge lengths reserve almost nothing, and one disk reserve
holds for the no-JavaScript form and resumable uploads alike. Real server
processes; the small disk is a real tmpfs the test mounts (tests run as root)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from server.settings import MiB
from tests.server_process import SourceClient, db_rows, init_instance, run_server
from tests.test_uploads_tus import PATCH_TYPE, TUS, Browser, manifest, seal

HOARDERS = 32  # at the largest length, more than the instance cap (64 GiB) held before


def test_empty_creations_declaring_huge_lengths_do_not_stop_a_new_upload(tmp_path) -> None:
    instance = init_instance(tmp_path)
    with run_server(instance) as server:
        largest = httpx.options(f"{server.base_url}/tus/").headers["tus-max-size"]
        for _ in range(HOARDERS):  # each from a fresh browser: no cookie, no cap per browser
            r = httpx.post(f"{server.base_url}/tus/", headers={**TUS, "Upload-Length": largest})
            assert r.status_code == 201
        document = os.urandom(300_000)
        with Browser(server.base_url) as browser:
            file_id = browser.upload(seal(instance, document))
            manifest_id = browser.upload(
                seal(instance, manifest(None, [(file_id, "doc.bin", "", len(document))]))
            )
            assert browser.commit(manifest_id, None, [file_id]).status_code == 303
        assert len(db_rows(instance, "submissions")) == 1


BOUNDARY = "lanterne-test-boundary"


def chunked_form(token: str, data: bytes) -> Iterator[bytes]:
    """The submission form as a browser would send it, in 1 MiB pieces with no length."""
    head = "".join(
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
        for name, value in (("csrf_token", token), ("website", ""), ("message", "chunked"))
    )
    head += (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="files"; filename="c.bin"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    )
    body = head.encode() + data + f"\r\n--{BOUNDARY}--\r\n".encode()
    for start in range(0, len(body), MiB):
        yield body[start : start + MiB]


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 40 MiB file system of its own for the data directory."""
    data = tmp_path / "data"
    data.mkdir()
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=40m,mode=0700", "tmpfs", str(data)], check=True
    )
    try:
        yield data
    finally:
        subprocess.run(["umount", "-l", str(data)], check=True)


def test_the_default_reserve_scales_with_the_disk(small_disk: Path) -> None:
    from server.store.disk_reserve import DiskReserve

    assert DiskReserve(small_disk, None).reserve == 2 * MiB  # 5 % of 40 MiB
    assert DiskReserve(Path("/"), None).reserve <= 1 << 30


def test_a_submission_that_would_go_below_the_reserve_is_refused_whole(
    small_disk: Path,
) -> None:
    instance = init_instance(
        small_disk.parent,
        config="[uploads]\ndisk_reserve_bytes = 31457280\n",  # 30 MiB of 40
    )
    with run_server(instance) as server:
        with SourceClient(server.base_url) as src:
            big = os.urandom(12 * MiB)
            r = src.submit("Un gros envoi.", [("gros.bin", big, "application/octet-stream")])
            # The body was read to its end, so the browser shows the page.
            assert r.status_code == 507
            assert "The server is full" in r.text and "Nothing you sent was kept" in r.text
            assert os.listdir(instance.objects_dir) == []  # no object, not even a .part
            assert db_rows(instance, "submissions") == []
            # Without a declared length (chunked), the check as bytes arrive stops it.
            r = src.client.post(
                "/en/submit",
                content=chunked_form(src.csrf("/en/submit"), big),
                headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
            )
            assert r.request.headers.get("transfer-encoding") == "chunked"
            assert r.status_code == 507 and "The server is full" in r.text
            assert os.listdir(instance.objects_dir) == []
            # The same reserve holds for resumable uploads: a segment that would
            # go below it is refused, and the offset stays where it was.
            with Browser(server.base_url) as browser:
                upload_id = browser.create(20 * MiB)
                r = browser.client.patch(
                    f"/tus/{upload_id}",
                    content=os.urandom(16 * MiB),
                    headers={**TUS, "Content-Type": PATCH_TYPE, "Upload-Offset": "0"},
                )
                assert r.status_code == 507
                assert browser.offset(upload_id) == 0
            # What fits still goes.
            small = os.urandom(1 * MiB)
            r = src.submit("Un petit envoi.", [("petit.bin", small, "application/octet-stream")])
            assert r.status_code == 303
        assert len(db_rows(instance, "submissions")) == 1
    assert "Traceback" not in server.log()
