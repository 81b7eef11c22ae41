"""``create_app`` takes its stores (docs/SERVER_LAYERS.md): a test plugs in its own
without monkeypatching, and the app then keeps nothing where the default stores
would have put it."""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import io
import json
import os
import subprocess
from collections.abc import Iterator
from typing import BinaryIO

import httpx

import envelope
from journalist_cli.identity_store import JournalistIdentity, write_new_identity
from server.domain.source_lifecycle import SourceLifecycle
from server.settings import MiB, Settings
from server.store.disk_reserve import DiskReserve
from server.store.objects import ObjectStore
from server.store.protocols import SourceRow, new_id
from server.store.wiring import sqlite_api_stores, sqlite_stores
from server.web.app import create_app
from server.web.journalist_api import create_journalist_app
from server.web.journalist_api.auth import signed_message
from tests.server_process import (
    ROOT,
    SERVER_CMD,
    SourceClient,
    db_rows,
    init_instance,
    serve_in_thread,
)


class MemoryObject:
    def __init__(self, store: MemoryObjects) -> None:
        self.id = new_id()
        self.size = 0
        self._store = store
        self._data = bytearray()

    def write(self, data: bytes | memoryview) -> None:
        self._data += data
        self.size += len(data)

    def commit(self) -> None:
        self._store.objects[self.id] = bytes(self._data)

    def abort(self) -> None:
        self._data.clear()


class MemoryObjects:
    """``server.store.protocols.ObjectStore`` in a dict: a second backend in miniature."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    def new_object(self) -> MemoryObject:
        return MemoryObject(self)

    def local_bytes(self, nbytes: int) -> int:
        return 0  # memory only

    def write_bytes(self, data: bytes) -> str:
        obj = self.new_object()
        obj.write(data)
        obj.commit()
        return obj.id

    def read_bytes(self, object_id: str) -> bytes:
        return self.objects[object_id]

    @contextlib.contextmanager
    def open(self, object_id: str, start: int = 0) -> Iterator[BinaryIO]:
        if object_id not in self.objects:
            raise FileNotFoundError(object_id)
        yield io.BytesIO(self.objects[object_id][start:])

    def size(self, object_id: str) -> int:
        if object_id not in self.objects:
            raise FileNotFoundError(object_id)
        return len(self.objects[object_id])

    def delete(self, object_id: str) -> None:
        self.objects.pop(object_id, None)


def test_the_source_app_keeps_objects_in_the_store_it_is_given(tmp_path) -> None:
    instance = init_instance(tmp_path)
    settings = Settings.load(instance.data_dir)
    memory = MemoryObjects()
    stores = dataclasses.replace(sqlite_stores(settings), objects=memory)
    app = create_app(settings, stores=stores)
    with serve_in_thread(app) as base_url, SourceClient(base_url) as source:
        source.first_submission("in memory", [("note.txt", b"a file", "text/plain")])
    # Nothing under the data directory's objects/: every object went to the given store.
    assert list(instance.objects_dir.iterdir()) == []
    rows = db_rows(instance, "objects")
    assert {str(r[0]) for r in rows} == set(memory.objects)
    assert sorted(str(r[2]) for r in rows) == ["file", "manifest", "message"]
    [manifest_id] = [str(r[0]) for r in rows if r[2] == "manifest"]
    identity = instance.journalists[0].identity
    manifest = json.loads(envelope.decrypt_bytes(memory.objects[manifest_id], [identity]))
    message = memory.objects[manifest["message"]["object"]]
    assert envelope.decrypt_bytes(message, [identity]) == b"in memory"
    [listed] = manifest["files"]
    assert envelope.decrypt_bytes(memory.objects[listed["object"]], [identity]) == b"a file"


def test_a_submission_claims_of_the_disk_reserve_what_its_store_keeps_on_this_disk(
    tmp_path,
) -> None:
    # With a bucket (here: memory), a no-JS body holds at most a part's spool on
    # the local disk; claiming its whole length refused 8 MiB with 3 MiB free.
    instance = init_instance(tmp_path)
    settings = Settings.load(instance.data_dir)
    reserve = 64 * MiB
    disk = DiskReserve(instance.data_dir, reserve, free=lambda path: reserve + 3 * MiB)
    body = os.urandom(8 * MiB)
    for objects, status in ((MemoryObjects(), 303), (ObjectStore(instance.objects_dir), 507)):
        stores = dataclasses.replace(sqlite_stores(settings), objects=objects, disk=disk)
        app = create_app(settings, stores=stores)
        with serve_in_thread(app) as base_url, SourceClient(base_url) as source:
            response = source.submit("a large file", [("big.bin", body, "application/pdf")])
        assert response.status_code == status, response.text[:300]
    assert list(instance.objects_dir.iterdir()) == []  # the refused body left nothing


def test_the_journalist_api_reads_and_writes_the_store_it_is_given(tmp_path) -> None:
    """Notes go into the given object store, and objects are read back from it, ranges too."""
    alice = JournalistIdentity.generate("alice")
    write_new_identity(alice, tmp_path / "keys", None)
    data_dir = tmp_path / "data"
    pub = tmp_path / "keys" / "alice.pub"
    init = [*SERVER_CMD, "init", "--data-dir", str(data_dir), "--journalist", str(pub)]
    subprocess.run(init, check=True, cwd=ROOT, capture_output=True)
    host = "api.lanterne.test"
    settings = dataclasses.replace(Settings.load(data_dir), journalist_hosts=(host,))
    memory = MemoryObjects()
    stores = dataclasses.replace(sqlite_api_stores(settings), objects=memory)
    reply_key = envelope.X25519Identity.generate().recipient.public_bytes
    source = SourceRow(new_id(), new_id().encode(), reply_key)
    SourceLifecycle(stores.sources, memory).record_submission(source.id, source, "2026-12-04", [])
    app = create_journalist_app(settings, stores=stores)
    with serve_in_thread(app) as base_url, httpx.Client(base_url=f"{base_url}/api/v1") as api:
        challenge = api.post("/auth/challenge").json()["challenge"]
        raw = base64.urlsafe_b64decode(challenge + "=" * (-len(challenge) % 4))
        signature = alice.signing.sign(signed_message(raw, host)).signature
        token = api.post(
            "/auth/token",
            json={
                "journalist": "alice",
                "challenge": challenge,
                "signature": base64.urlsafe_b64encode(signature).decode().rstrip("="),
            },
        ).json()["token"]
        api.headers["Authorization"] = f"Bearer {token}"
        note = envelope.encrypt_bytes(b"checked", [alice.public.recipient])
        created = api.post(f"/sources/{source.id}/notes", content=note)
        assert created.status_code == 201
        object_id = created.json()["object_id"]
        assert memory.objects[object_id] == note
        [listed] = api.get(f"/sources/{source.id}").json()["items"]["notes"]
        assert listed["object_id"] == object_id and listed["size"] == len(note)
        assert api.get(f"/objects/{object_id}").content == note
        part = api.get(f"/objects/{object_id}", headers={"Range": "bytes=10-"})
        assert part.status_code == 206 and part.content == note[10:]
        assert api.get(f"/objects/{new_id()}").status_code == 404
    assert list((data_dir / "objects").iterdir()) == []
