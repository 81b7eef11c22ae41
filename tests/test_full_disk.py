"""A full disk is a clear answer, never a broken site (issue 13, item 3).

The data directory is a small tmpfs the test mounts (tests run as root), filled
to the last byte by a file of its own. Real server processes (source interface
and journalist API). While the disk is full: pages that only read answer, the
journalist API lists what was complete, a tus HEAD gives the offset and a PATCH
507; a no-JavaScript submission gets the "server is full" page, in its
language, with its body read to the end, and nothing of it is kept. Once room
is back, the same upload resumes from its offset and is committed.
"""

from __future__ import annotations

import base64
import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import envelope
from journalist_cli.identity_store import JournalistIdentity, write_new_identity
from server.settings import MiB
from server.web.journalist_api.auth import signed_message
from tests.server_process import (
    ROOT,
    SERVER_CMD,
    Instance,
    Server,
    SourceClient,
    db_rows,
    run_server,
)
from tests.test_uploads_tus import PATCH_TYPE, TUS, Browser, manifest
from tests.waiting import wait_until

pytestmark = pytest.mark.slow

DISK = "40m"


@contextlib.contextmanager
def small_disk(where: Path, size: str = DISK) -> Iterator[Path]:
    """A tmpfs of ``size`` mounted at ``where``; unmounted afterwards."""
    where.mkdir()
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(where)], check=True
    )
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=True)


def make_instance(base: Path, data: Path, config: str = "") -> tuple[Instance, JournalistIdentity]:
    """``lanterne-server init`` into ``data`` with one journalist, alice, who can use the API."""
    alice = JournalistIdentity.generate("alice")
    write_new_identity(alice, base / "keys", None)
    init = [*SERVER_CMD, "init", "--data-dir", str(data), "--journalist"]
    subprocess.run([*init, str(base / "keys" / "alice.pub")], check=True, cwd=ROOT)
    if config:
        (data / "config.toml").write_text(config, encoding="utf-8")
    instance = Instance(data, [], base / "server-tmp", base / "server.log")
    instance.tmp_dir.mkdir()
    return instance, alice


def free_bytes(path: Path) -> int:
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def fill(path: Path) -> Path:
    """Write a file under ``path`` until its file system has not one byte left."""
    filler = path / "filler"
    with filler.open("ab", buffering=0) as f:
        for block in (1 << 20, 1 << 16, 4096, 512, 1):
            with contextlib.suppress(OSError):
                while True:
                    f.write(b"\0" * block)
    assert free_bytes(path) == 0
    return filler


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Journalist:
    """The journalist API as the CLI uses it: challenge, signed token, then reads."""

    def __init__(self, server: Server, identity: JournalistIdentity) -> None:
        assert server.api_url is not None
        self.client = httpx.Client(base_url=server.api_url, timeout=30)
        challenge = self.client.post("/auth/challenge").json()["challenge"]
        host = server.api_url.split("/")[2]
        sig = identity.signing.sign(signed_message(unb64(challenge), host)).signature
        body = {"journalist": identity.name, "challenge": challenge, "signature": b64(sig)}
        r = self.client.post("/auth/token", json=body)
        assert r.status_code == 200, r.text
        self.client.headers["Authorization"] = f"Bearer {r.json()['token']}"

    def submissions(self) -> list[dict[str, object]]:
        """Every submission the API lists, over every source."""
        r = self.client.get("/sources")
        assert r.status_code == 200, r.text
        out: list[dict[str, object]] = []
        for source in r.json():
            detail = self.client.get(f"/sources/{source['id']}")
            assert detail.status_code == 200, detail.text
            out += detail.json()["items"]["submissions"]
        return out

    def close(self) -> None:
        self.client.close()


def seal_to(identity: JournalistIdentity, plaintext: bytes) -> bytes:
    return envelope.encrypt_bytes(plaintext, [identity.public.recipient])


def test_a_full_disk_leaves_reads_working_and_refuses_writes_cleanly(tmp_path: Path) -> None:
    with small_disk(tmp_path / "data") as data:
        # A reserve of one byte: the disk itself refuses, as when it filled from elsewhere.
        instance, alice = make_instance(tmp_path, data, "[uploads]\ndisk_reserve_bytes = 1\n")
        with run_server(instance, journalist_api=True) as server:
            first = SourceClient(server.base_url)
            codename = first.first_submission("Avant que le disque soit plein.")
            document = seal_to(alice, os.urandom(3 * MiB))
            browser = Browser(server.base_url)
            upload_id = browser.create(len(document))
            half = len(document) // 2
            assert browser.patch(upload_id, 0, document[:half]).status_code == 204
            objects_before = sorted(os.listdir(instance.objects_dir))

            filler = fill(data)

            # Pages that only read.
            for path in ("/en/", "/fr/", "/en/submit", "/fr/submit", "/en/login"):
                r = first.get(path)
                assert r.status_code == 200, (path, r.status_code)
            journalist = Journalist(server, alice)
            assert len(journalist.submissions()) == 1
            # A tus HEAD says where the upload stands; a PATCH gets 507 and changes nothing.
            assert browser.offset(upload_id) == half
            r = browser.patch(upload_id, half, document[half:])
            assert r.status_code == 507
            assert browser.offset(upload_id) == half
            # A no-JS submission: the "full" page, in the page's language, body drained.
            big = os.urandom(2 * MiB)
            for lang, words in (("en", "The server is full"), ("fr", "Le serveur est plein")):
                with SourceClient(server.base_url, lang=lang) as src:
                    r = src.submit("Quand le disque est plein.", [("b.bin", big, "x/y")])
                    assert r.status_code == 507, (lang, r.status_code)
                    assert words in r.text
            assert sorted(os.listdir(instance.objects_dir)) == objects_before
            # A returning source can still log in and read their inbox.
            with SourceClient(server.base_url) as back:
                r = back.login(codename)
                assert r.status_code in (303, 503, 507), r.status_code
            assert len(journalist.submissions()) == 1

            filler.unlink()

            # Room is back: the same upload resumes from its offset, and commits.
            r = browser.patch(upload_id, half, document[half:])
            assert r.status_code == 204
            assert int(r.headers["upload-offset"]) == len(document)
            manifest_id = browser.upload(
                seal_to(alice, manifest(None, [(upload_id, "d.bin", "", 3 * MiB)]))
            )
            assert browser.commit(manifest_id, None, [upload_id]).status_code == 303
            assert len(journalist.submissions()) == 2
            journalist.close()
            browser.close()
            first.close()
        assert len(db_rows(instance, "submissions")) == 2
        log = server.log()
        assert "Traceback" not in log
        assert "unexpected" not in log  # no 500 on the way


BOUNDARY = "lanterne-full-disk"


def filling_form(token: str, objects: Path, disk: Path) -> Iterator[bytes]:
    """A chunked no-JS body (no length: nothing to claim in advance) whose file's
    first bytes arrive, then the disk fills (once the server writes the file), then the rest."""
    head = "".join(
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
        for name, value in (("csrf_token", token), ("website", ""), ("message", "plein"))
    )
    head += (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="files"; filename="f.bin"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    )
    yield head.encode() + os.urandom(256 * 1024)
    wait_until(
        lambda: any(n.endswith(".part") for n in os.listdir(objects)), 30, "no object written"
    )
    fill(disk)
    for _ in range(4):  # within the MiB the server checks room for: the disk refuses them
        yield os.urandom(128 * 1024)
    yield f"\r\n--{BOUNDARY}--\r\n".encode()


def test_a_submission_that_meets_a_full_disk_midway_is_refused_whole(tmp_path: Path) -> None:
    """The disk fills while the body arrives: the page, and no object left, not even a .part."""
    with small_disk(tmp_path / "data", "24m") as data:
        instance, _alice = make_instance(tmp_path, data, "[uploads]\ndisk_reserve_bytes = 1\n")
        with run_server(instance) as server, SourceClient(server.base_url) as src:
            r = src.client.post(
                "/en/submit",
                content=filling_form(src.csrf("/en/submit"), instance.objects_dir, data),
                headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
            )
            assert r.status_code == 507, r.status_code
            assert "The server is full" in r.text and "Nothing you sent was kept" in r.text
            assert os.listdir(instance.objects_dir) == []
            assert db_rows(instance, "submissions") == []
            (data / "filler").unlink()
            # Room is back: the next one goes through.
            r = src.submit("Petit.", [("p.bin", os.urandom(MiB), "x/y")])
            assert r.status_code == 303
        assert len(db_rows(instance, "submissions")) == 1
        log = server.log()
        assert "Traceback" not in log and "unexpected" not in log


def test_a_tus_patch_that_meets_a_full_disk_answers_507_and_resumes(
    tmp_path: Path,
) -> None:
    """The disk fills from elsewhere while a PATCH arrives: 507, nothing unrecorded
    left in the upload's file, and the upload resumes from its last acknowledged offset."""
    with small_disk(tmp_path / "data", "24m") as data:
        instance, alice = make_instance(tmp_path, data, "[uploads]\ndisk_reserve_bytes = 1\n")
        with run_server(instance) as server, Browser(server.base_url) as browser:
            document = seal_to(alice, os.urandom(4 * MiB))
            upload_id = browser.create(len(document))
            part = data / "uploads" / f"{upload_id}.part"
            segment = document[: 3 * MiB]

            def arrives() -> Iterator[bytes]:
                yield segment[: 3 * MiB // 2]
                wait_until(lambda: part.stat().st_size >= MiB, 30, "nothing written")
                fill(data)
                yield segment[3 * MiB // 2 :]

            r = browser.client.patch(
                f"/tus/{upload_id}",
                content=arrives(),
                headers={
                    **TUS,
                    "Content-Type": PATCH_TYPE,
                    "Upload-Offset": "0",
                    "Content-Length": str(len(segment)),
                },
            )
            assert r.status_code == 507, r.status_code
            # A full disk has no room to record the new offset either: the upload
            # stays at the offset last acknowledged, its file cut back to it.
            offset = browser.offset(upload_id)
            assert offset == 0
            assert part.stat().st_size == 0
            (data / "filler").unlink()
            for start in range(offset, len(document), MiB):
                r = browser.patch(upload_id, start, document[start : start + MiB])
                assert r.status_code == 204, r.status_code
            manifest_id = browser.upload(
                seal_to(alice, manifest(None, [(upload_id, "d.bin", "", 4 * MiB)]))
            )
            assert browser.commit(manifest_id, None, [upload_id]).status_code == 303
        assert (instance.objects_dir / upload_id).read_bytes() == document
        log = server.log()
        assert "Traceback" not in log and "unexpected" not in log


def test_a_commit_on_a_full_disk_keeps_the_uploads_for_the_next_try(tmp_path: Path) -> None:
    """The record of a commit meets a full disk: 507, nothing submitted, the
    uploads left where they were; once room is back the same commit goes through."""
    with small_disk(tmp_path / "data") as data:
        instance, alice = make_instance(tmp_path, data, "[uploads]\ndisk_reserve_bytes = 1\n")
        with run_server(instance, journalist_api=True) as server:
            with Browser(server.base_url) as browser:
                document = seal_to(alice, os.urandom(2 * MiB))
                file_id = browser.upload(document, MiB)
                manifest_id = browser.upload(
                    seal_to(alice, manifest(None, [(file_id, "d.bin", "", 2 * MiB)]))
                )
                token = browser.csrf()
                filler = fill(data)
                r = browser.commit(manifest_id, None, [file_id], token=token)
                assert r.status_code == 507, r.status_code
                assert "Nothing was submitted" in r.text
                assert os.listdir(instance.objects_dir) == []
                assert browser.offset(file_id) == len(document)
                filler.unlink()
                assert browser.commit(manifest_id, None, [file_id]).status_code == 303
            journalist = Journalist(server, alice)
            assert len(journalist.submissions()) == 1
            journalist.close()
        assert (instance.objects_dir / file_id).read_bytes() == document
        log = server.log()
        assert "Traceback" not in log and "unexpected" not in log
