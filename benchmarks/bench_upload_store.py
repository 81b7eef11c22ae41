"""One resumable upload through each upload store, without HTTP (issue 14 §2).

    .venv/bin/python benchmarks/bench_upload_store.py [--size-mib 64]

The envelope of ``--size-mib`` MiB of random bytes is sent in 4 MiB PATCHes
(the page's segment) through the store's writer (``append_to``: write, keep,
save), then committed into the object store, through:

- the files store (SQLite rows, ``DATA_DIR/uploads``, the objects directory);
- the shared store (server/store/shared_uploads.py) on a throw-away PostgreSQL
  cluster and moto's S3 server on 127.0.0.1 (tests/pg_cluster.py,
  tests/s3_server.py): staging objects and multipart parts.

Printed per store: the time of the PATCHes and of the commit, the median and
worst PATCH, and the peak of Python's own allocations (``tracemalloc``) while
the upload runs: the segments themselves are views of the envelope, so this is
what the store holds, which must not grow with the upload (parts are spooled
to unnamed files, never buffered). moto is a Python server: its times are an
upper bound of what MinIO or AWS would take.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import envelope
from server.settings import MiB, Settings
from server.store.db import Database
from server.store.disk_reserve import DiskReserve
from server.store.objects import ObjectStore
from server.store.postgres import PostgresDatabase
from server.store.s3_objects import S3Location, S3ObjectStore, connect
from server.store.shared_uploads import SharedUploadStore
from server.store.uploads import UploadPolicy, UploadStore
from tests.pg_cluster import fresh_schema, running_cluster
from tests.s3_server import ACCESS_KEY, REGION, SECRET_KEY, running_s3_server

SEGMENT = 4 * MiB
OWNER = b"o" * 32


def one_upload(store: Any, objects: Any, data: bytes, name: str) -> None:
    view = memoryview(data)
    tracemalloc.start()
    started = time.perf_counter()
    upload = store.create(OWNER, len(data))
    patches = []
    for start in range(0, len(data), SEGMENT):
        t = time.perf_counter()
        with store.hold([upload.id], patch=True), store.append_to(upload) as writer:
            writer.write(view[start : start + SEGMENT])
            writer.keep(min(SEGMENT, len(data) - start))
            upload = writer.save()
        patches.append(time.perf_counter() - t)
    sent = time.perf_counter()
    with store.hold([upload.id]):
        store.move_to_store(store.check_for_commit([upload.id], OWNER), objects)
        store.finish([upload.id])
    committed = time.perf_counter()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    if objects.read_bytes(upload.id) != data:
        raise SystemExit(f"{name}: the object is not the upload's bytes")
    patches.sort()
    print(
        f"{name}: {len(data) / MiB:.0f} MiB in {len(patches)} PATCHes, {sent - started:.2f} s"
        f" ({len(data) / MiB / (sent - started):.0f} MiB/s); PATCH median"
        f" {patches[len(patches) // 2] * 1000:.0f} ms, worst {patches[-1] * 1000:.0f} ms;"
        f" commit {committed - sent:.2f} s; peak Python allocations {peak / MiB:.2f} MiB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=64)
    args = parser.parse_args()
    identity = envelope.X25519Identity.generate()
    data = envelope.encrypt_bytes(os.urandom(args.size_mib * MiB), [identity.recipient])
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        settings = Settings(data_dir=tmp)
        db = Database(settings.database_path)
        db.create()
        policy = UploadPolicy.from_settings(settings)
        files = UploadStore(db, settings.uploads_dir, policy, disk=DiskReserve(tmp, 0))
        files.prepare()
        objects = ObjectStore(settings.objects_dir)
        objects.create_dirs()
        one_upload(files, objects, data, "files store (SQLite, data directory)")
        with (
            running_cluster() as cluster,
            fresh_schema(cluster) as url,
            running_s3_server(tmp) as s3,
            PostgresDatabase(url) as pg,
        ):
            pg.prepare()
            bucket = s3.new_bucket()
            location = S3Location(s3.endpoint, bucket, ACCESS_KEY, SECRET_KEY, REGION)
            in_bucket = S3ObjectStore(connect(location), bucket, tmp / "spool")
            in_bucket.create_dirs()
            shared = SharedUploadStore(pg, in_bucket, policy, disk=DiskReserve(tmp, 0))
            shared.prepare()
            one_upload(shared, in_bucket, data, "shared store (PostgreSQL, moto S3)")


if __name__ == "__main__":
    main()
