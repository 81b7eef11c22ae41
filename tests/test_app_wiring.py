"""``create_app`` takes its stores (docs/SERVER_LAYERS.md): a test plugs in its own
without monkeypatching, and the app then keeps nothing where the default stores
would have put it."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
from collections.abc import Iterator
from typing import BinaryIO

import envelope
from server.settings import Settings
from server.store.protocols import new_id
from server.store.wiring import sqlite_stores
from server.web.app import create_app
from tests.server_process import SourceClient, db_rows, init_instance, serve_in_thread


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
