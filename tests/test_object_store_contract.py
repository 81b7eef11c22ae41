"""One contract for every object store (issue 14 §4): the files store in a data
directory, and the S3 store against a real S3 server (moto's, over HTTP).

Each test runs once per store and looks at what the store really left behind,
through the backend's own view (the directory's entries; the bucket's keys,
unfinished multipart uploads and object headers through the S3 API), not only
through the store's methods.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

import envelope
from server.store.objects import ObjectStore
from server.store.s3_objects import (
    CONTENT_TYPE,
    MIN_PART_SIZE,
    S3Location,
    S3ObjectStore,
    connect,
)
from tests.s3_server import ACCESS_KEY, REGION, SECRET_KEY, S3Server

ID = re.compile(r"[0-9a-f]{32}")
# An object's name, an unfinished S3 upload's key, or the files store's temporary
# name (``envelope.atomic_output``: the id and 48 random bits): random hex only.
RAW_NAME = re.compile(r"(upload:)?[0-9a-f]{32}|\.[0-9a-f]{32}\.[0-9a-f]{12}\.part")
PART = MIN_PART_SIZE  # the S3 store's part size here: the smallest S3 allows
CHUNK = 64 * 1024
CANARY = b"LNTCANARY-object-store-contract-7f3a"


@dataclass
class Backend:
    """A store and what its backend holds, seen from outside the store."""

    kind: str
    store: Any  # ObjectStore | S3ObjectStore: the same methods
    spool: Path | None = None
    s3: S3Server | None = None
    bucket: str = ""

    def raw_names(self) -> set[str]:
        """Every name the backend holds: files, or keys and unfinished uploads' keys."""
        if self.s3 is None:
            return set(os.listdir(self.store.root))
        client = self.s3.client()
        keys = {o["Key"] for o in client.list_objects_v2(Bucket=self.bucket).get("Contents", [])}
        uploads = client.list_multipart_uploads(Bucket=self.bucket).get("Uploads", [])
        return keys | {"upload:" + u["Key"] for u in uploads}

    def raw_bytes(self) -> bytes:
        """Everything stored, with every name and header the backend keeps about it."""
        if self.s3 is None:
            out = b""
            for name in os.listdir(self.store.root):
                out += name.encode() + (self.store.root / name).read_bytes()
            return out
        client = self.s3.client()
        out = b""
        for item in client.list_objects_v2(Bucket=self.bucket).get("Contents", []):
            got = client.get_object(Bucket=self.bucket, Key=item["Key"])
            out += repr(got["ResponseMetadata"]["HTTPHeaders"]).encode() + got["Body"].read()
            tags = client.get_object_tagging(Bucket=self.bucket, Key=item["Key"])
            out += repr(tags["TagSet"]).encode()
        return out

    def crash(self, obj: Any) -> None:
        """What the kernel does to a pending object when its process dies: its
        file is closed, and nobody commits nor aborts it."""
        (obj._file if self.s3 is None else obj._spool).close()

    def spool_names(self) -> list[str]:
        return os.listdir(self.spool) if self.spool else []


@pytest.fixture(params=["files", "s3"])
def backend(
    request: pytest.FixtureRequest, tmp_path: Path, s3_server: S3Server
) -> Iterator[Backend]:
    if request.param == "files":
        store = ObjectStore(tmp_path / "objects")
        store.create_dirs()
        yield Backend("files", store)
        return
    bucket = s3_server.new_bucket()
    client = connect(S3Location(s3_server.endpoint, bucket, ACCESS_KEY, SECRET_KEY, REGION))
    s3_store = S3ObjectStore(client, bucket, tmp_path / "spool", part_size=PART, grace=timedelta(0))
    s3_store.create_dirs()
    yield Backend("s3", s3_store, tmp_path / "spool", s3_server, bucket)


def write_in_chunks(store: Any, data: bytes) -> Any:
    obj = store.new_object()
    for i in range(0, len(data), CHUNK):
        obj.write(data[i : i + CHUNK])
    return obj


@pytest.mark.parametrize("size", [0, 1, PART - 1, PART, PART + 1, 2 * PART + 3])
def test_what_is_written_is_read_back(backend: Backend, size: int) -> None:
    data = os.urandom(size)
    obj = write_in_chunks(backend.store, data)
    obj.commit()
    assert obj.size == size
    assert backend.store.read_bytes(obj.id) == data
    assert backend.store.size(obj.id) == size
    assert backend.store.ids() == {obj.id}
    assert backend.raw_names() == {obj.id}
    assert backend.spool_names() == []


def test_an_object_appears_only_when_committed(backend: Backend) -> None:
    data = os.urandom(PART + 100)  # the S3 store has sent a part already
    obj = write_in_chunks(backend.store, data)
    assert obj.id not in backend.store.ids()
    with pytest.raises(FileNotFoundError):
        backend.store.size(obj.id)
    with pytest.raises(FileNotFoundError), backend.store.open(obj.id) as f:
        f.read()
    obj.commit()
    assert backend.store.ids() == {obj.id}
    assert backend.store.read_bytes(obj.id) == data


@pytest.mark.parametrize("size", [10, PART + 100])
def test_abort_leaves_nothing(backend: Backend, size: int) -> None:
    kept = backend.store.write_bytes(b"kept")
    obj = write_in_chunks(backend.store, os.urandom(size))
    obj.abort()
    obj.abort()  # twice is harmless
    assert backend.store.ids() == {kept}
    assert backend.raw_names() == {kept}  # no temporary file, no unfinished upload
    assert backend.spool_names() == []


def test_ranged_reads(backend: Backend) -> None:
    data = os.urandom(PART + 1000)
    object_id = write_in_chunks(backend.store, data)
    object_id.commit()
    for start in (0, 1, 4096, PART, len(data) - 1, len(data)):
        with backend.store.open(object_id.id, start) as f:
            got = b""
            while block := f.read(CHUNK):
                got += block
        assert got == data[start:], start


def test_delete(backend: Backend) -> None:
    gone = backend.store.write_bytes(b"gone")
    kept = backend.store.write_bytes(b"kept")
    backend.store.delete(gone)
    backend.store.delete(gone)  # already gone: no error
    assert backend.store.ids() == {kept}
    assert backend.raw_names() == {kept}
    with pytest.raises(FileNotFoundError), backend.store.open(gone) as f:
        f.read()
    assert backend.store.read_bytes(kept) == b"kept"


def test_garbage_collection_leaves_only_what_is_known(backend: Backend) -> None:
    known = backend.store.write_bytes(b"listed by a row")
    unknown = backend.store.write_bytes(b"no row lists it")
    # A process that died in the middle of writing: neither committed nor aborted.
    crashed = write_in_chunks(backend.store, os.urandom(PART + 100))
    backend.crash(crashed)
    assert backend.raw_names() - {known, unknown}, "the crash left nothing to collect"
    removed = backend.store.collect_garbage({known})
    assert removed >= 2
    assert backend.store.ids() == {known}
    assert backend.raw_names() == {known}
    assert backend.store.read_bytes(known) == b"listed by a row"


@pytest.mark.parametrize("bad", ["", "../objects", "A" * 32, "0" * 31, "0" * 33, "0" * 31 + "g"])
def test_only_ids_are_accepted(backend: Backend, bad: str) -> None:
    with pytest.raises(ValueError, match="not an object id"):
        backend.store.size(bad)
    with pytest.raises(ValueError, match="not an object id"), backend.store.open(bad) as f:
        f.read()
    with pytest.raises(ValueError, match="not an object id"):
        backend.store.delete(bad)


def test_names_and_headers_carry_the_id_only(backend: Backend) -> None:
    small = backend.store.write_bytes(b"small")
    large = write_in_chunks(backend.store, os.urandom(2 * PART + 1))
    large.commit()
    pending = write_in_chunks(backend.store, os.urandom(PART + 1))  # an upload in flight
    names = backend.raw_names()
    assert all(RAW_NAME.fullmatch(n) for n in names), names
    assert {small, large.id} <= names
    if backend.s3 is not None:
        client = backend.s3.client()
        for key in (small, large.id):
            head = client.head_object(Bucket=backend.bucket, Key=key)
            assert head["Metadata"] == {}
            assert head["ContentType"] == CONTENT_TYPE
            assert "ContentDisposition" not in head and "ContentEncoding" not in head
            assert client.get_object_tagging(Bucket=backend.bucket, Key=key)["TagSet"] == []
    pending.abort()


def test_plaintext_canary_is_never_stored(backend: Backend) -> None:
    identity = envelope.X25519Identity.generate()
    plaintext = CANARY * (3 * PART // len(CANARY))  # more than two parts
    enc = envelope.Encryptor([identity.recipient])
    obj = backend.store.new_object()
    obj.write(enc.header)
    for i in range(0, len(plaintext), CHUNK):
        for sealed in enc.update_chunks(plaintext[i : i + CHUNK]):
            obj.write(sealed)
            assert backend.spool_names() == []  # the part being filled has no name
    for sealed in enc.finish():
        obj.write(sealed)
    obj.commit()
    stored = backend.raw_bytes()
    assert CANARY not in stored
    assert CANARY.hex().encode() not in stored
    # What was stored is the envelope of the canary: the scan looked at real data.
    assert envelope.decrypt_bytes(backend.store.read_bytes(obj.id), [identity]) == plaintext
