"""One contract for every upload store (issue 14 §2-§4): the files store in a
data directory (SQLite rows, one file per upload), and the shared store
(PostgreSQL rows, S3 parts and staging objects) against a real PostgreSQL
cluster and moto's S3 server over HTTP.

A second *instance* is a second store object on the same backend: for the
shared store, what another ``lanterne-server run`` on another machine would
build; for the files store, another process on the same data directory. Each
test looks at what the backend really holds (rows, files, the bucket's keys and
unfinished multipart uploads), not only at the store's answers.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

import envelope
from server.settings import DatabaseConfig, MiB, ObjectsConfig, Settings
from server.store import wiring
from server.store.db import Database
from server.store.disk_reserve import DiskReserve
from server.store.ephemeral import SqliteEphemeralStore
from server.store.objects import ObjectStore
from server.store.postgres import PostgresDatabase
from server.store.postgres_ephemeral import PostgresEphemeralStore
from server.store.protocols import CommitProblem, Upload, UploadError
from server.store.s3_objects import MIN_PART_SIZE, S3Location, S3ObjectStore, connect
from server.store.shared_uploads import SharedUploadStore
from server.store.uploads import UploadPolicy, UploadStore
from tests.clocks import FakeClock
from tests.s3_server import ACCESS_KEY, REGION, SECRET_KEY, S3Server

ID = re.compile(r"[0-9a-f]{32}")
OWNER = b"o" * 32
OTHER = b"p" * 32
SEGMENT = 4 * MiB  # what the browser sends per PATCH: less than an S3 part
RECIPIENT = envelope.X25519Identity.generate()


@dataclass
class Backend:
    kind: str
    clock: FakeClock
    make: Any  # (**policy changes) -> a new store on the same backend: another instance
    objects: Any  # the object store a commit moves into
    s3: S3Server | None = None
    bucket: str = ""
    pg: PostgresDatabase | None = None
    root: Path | None = None

    def store(self, **changes: int) -> Any:
        return self.make(**changes)

    def leftovers(self) -> set[str]:
        """Every name the backend holds for uploads in progress: upload files, or
        the bucket's keys and unfinished multipart uploads' keys."""
        if self.s3 is None:
            assert self.root is not None
            return {p.name for p in self.root.iterdir()}
        client = self.s3.client()
        keys = {o["Key"] for o in client.list_objects_v2(Bucket=self.bucket).get("Contents", [])}
        uploads = client.list_multipart_uploads(Bucket=self.bucket).get("Uploads", [])
        return keys | {"upload:" + u["Key"] for u in uploads}

    def rows(self) -> list[tuple[Any, ...]]:
        if self.pg is not None:
            with self.pg.connect() as conn:
                return conn.execute("SELECT id, received FROM uploads ORDER BY id").fetchall()
        assert self.root is not None
        db = Database(self.root.parent / "lanterne.sqlite3")
        with db.read() as conn:
            return list(conn.execute("SELECT id, received FROM uploads ORDER BY id"))


def policy(settings: Settings, **changes: int) -> UploadPolicy:
    return replace(UploadPolicy.from_settings(settings), **changes)


@pytest.fixture(params=["files", "shared"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    yield from _backend(request.param, request, tmp_path)


@pytest.fixture
def shared_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    yield from _backend("shared", request, tmp_path)


def _backend(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    settings = Settings(data_dir=tmp_path)
    clock = FakeClock()
    if kind == "files":
        db = Database(settings.database_path)
        db.create()
        activity = SqliteEphemeralStore(tmp_path / "ephemeral.sqlite", clock)
        activity.prepare()

        def make_files(**changes: int) -> UploadStore:
            rules = policy(settings, **changes)
            store = UploadStore(
                db, settings.uploads_dir, rules, clock, disk=DiskReserve(tmp_path, 0),
                activity=activity,
            )  # fmt: skip
            store.prepare()
            return store

        files = ObjectStore(settings.objects_dir)
        files.create_dirs()
        yield Backend("files", clock, make_files, files, root=settings.uploads_dir)
        return
    pg_url = request.getfixturevalue("pg_url")
    s3: S3Server = request.getfixturevalue("s3_server")
    bucket = s3.new_bucket()
    with PostgresDatabase(pg_url) as pg:
        pg.prepare()
        ephemeral = PostgresEphemeralStore(pg)
        ephemeral.prepare()
        location = S3Location(s3.endpoint, bucket, ACCESS_KEY, SECRET_KEY, REGION)
        objects = S3ObjectStore(connect(location), bucket, tmp_path / "spool")
        objects.create_dirs()

        def make_shared(**changes: int) -> SharedUploadStore:
            # Each instance its own client, spool and memory: only PostgreSQL and
            # the bucket are shared.
            spool = tmp_path / f"spool-{os.urandom(4).hex()}"
            mine = S3ObjectStore(connect(location), bucket, spool)
            store = SharedUploadStore(
                pg,
                mine,
                policy(settings, **changes),
                clock,
                disk=DiskReserve(tmp_path, 0),
                activity=ephemeral,
            )
            store.prepare()
            return store

        yield Backend("shared", clock, make_shared, objects, s3=s3, bucket=bucket, pg=pg)


def sealed(size: int) -> bytes:
    return envelope.encrypt_bytes(os.urandom(size), [RECIPIENT.recipient])


def patch(store: Any, upload: Upload, data: bytes, *, keep: int | None = None) -> Upload:
    """One PATCH as the route makes it: held, written, kept, saved."""
    with store.hold([upload.id], patch=True), store.append_to(upload) as writer:
        writer.write(data)
        writer.keep(len(data) if keep is None else keep)
        return writer.save()


def send(store: Any, upload: Upload, data: bytes, segment: int = SEGMENT) -> Upload:
    for start in range(upload.received, len(data), segment):
        upload = patch(store, upload, data[start : start + segment])
    return upload


def commit(backend: Backend, store: Any, ids: list[str]) -> None:
    with store.hold(ids):
        uploads = store.check_for_commit(ids, OWNER)
        store.move_to_store(uploads, backend.objects)
        store.finish(ids)


# Resuming, and what is acknowledged


def test_resume_after_an_interrupted_patch(backend: Backend) -> None:
    """A PATCH cut short keeps what arrived; one whose instance died keeps nothing;
    either way the client resumes from HEAD's offset and the bytes are exact."""
    data = sealed(11 * MiB)
    a = backend.store()
    upload = a.create(OWNER, len(data))
    upload = patch(a, upload, data[:SEGMENT])
    # Cut short: the connection dropped after 1 MiB of the next segment.
    upload = patch(a, upload, data[SEGMENT : 2 * SEGMENT], keep=1 * MiB)
    assert upload.received == SEGMENT + MiB
    # An instance killed mid-PATCH: its writer is never saved (nor closed cleanly).
    b = backend.store()
    dying = b.append_to(b.get(upload.id, OWNER))
    writer = dying.__enter__()
    writer.write(data[upload.received : upload.received + SEGMENT])
    writer.keep(SEGMENT)
    c = backend.store()  # the client asks another instance where to resume
    assert c.get(upload.id, OWNER).received == SEGMENT + MiB
    upload = send(c, c.get(upload.id, OWNER), data)
    assert upload.received == len(data)
    commit(backend, c, [upload.id])
    assert backend.objects.read_bytes(upload.id) == data
    dying.__exit__(None, None, None)


def test_an_acknowledged_offset_survives_every_instance(backend: Backend) -> None:
    data = sealed(9 * MiB)
    upload = backend.store().create(OWNER, len(data))
    acknowledged = []
    for start in range(0, len(data), 3 * MiB):
        # Each PATCH on a new instance, as a round-robin proxy would send it.
        store = backend.store()
        upload = patch(store, store.get(upload.id, OWNER), data[start : start + 3 * MiB])
        acknowledged.append(upload.received)
        for _ in range(2):  # and every other instance says the same
            assert backend.store().get(upload.id, OWNER).received == upload.received
    assert acknowledged == [min(n, len(data)) for n in range(3 * MiB, len(data) + 3 * MiB, 3 * MiB)]
    last = backend.store()
    commit(backend, last, [upload.id])
    assert backend.objects.read_bytes(upload.id) == data


def test_a_patch_from_a_stale_offset_is_refused(backend: Backend) -> None:
    data = sealed(2 * MiB)
    a = backend.store()
    upload = a.create(OWNER, len(data))
    stale = upload
    patch(a, upload, data[:MiB])
    with pytest.raises(UploadError) as refused:
        patch(backend.store(), stale, data[:MiB])
    assert refused.value.status == 409
    assert backend.store().get(upload.id, OWNER).received == MiB


# Concurrency


def test_two_patches_of_one_upload_at_once_on_one_instance(backend: Backend) -> None:
    store = backend.store()
    upload = store.create(OWNER, 2 * MiB)
    with store.hold([upload.id], patch=True):
        with pytest.raises(UploadError) as busy:
            patch(store, upload, b"x" * MiB)
        assert busy.value.status == 423
    assert store.get(upload.id, OWNER).received == 0


def test_two_patches_of_one_upload_at_once_on_two_instances(backend: Backend) -> None:
    """Both start from the same offset with different bytes: exactly one is
    acknowledged, the other refused (409 at save, or 423 where one process
    holds the upload), and the upload holds the winner's bytes exactly."""
    data = sealed(6 * MiB)
    a, b = backend.store(), backend.store()
    upload = a.create(OWNER, len(data))
    upload = patch(a, upload, data[:MiB])
    wrong = os.urandom(SEGMENT)
    with a.hold([upload.id], patch=True), a.append_to(upload) as first:
        first.write(data[MiB : MiB + SEGMENT])
        first.keep(SEGMENT)
        if backend.kind == "files":
            # One process serves a data directory's uploads: its hold decides.
            with pytest.raises(UploadError) as busy, a.hold([upload.id], patch=True):
                pass
            assert busy.value.status == 423
            saved = first.save()
        else:
            with b.hold([upload.id], patch=True), b.append_to(b.get(upload.id, OWNER)) as second:
                second.write(wrong)
                second.keep(SEGMENT)
                saved = first.save()
                with pytest.raises(UploadError) as lost:
                    second.save()
                assert lost.value.status == 409
    assert saved.received == MiB + SEGMENT
    # Whichever saves first wins; the other's bytes are nowhere in the upload.
    c, d = backend.store(), backend.store()
    if backend.kind == "shared":
        current = c.get(upload.id, OWNER)
        with c.append_to(current) as late, d.append_to(d.get(upload.id, OWNER)) as early:
            late.write(wrong[: len(data) - current.received])
            late.keep(len(data) - current.received)
            early.write(data[current.received :])
            early.keep(len(data) - current.received)
            assert early.save().received == len(data)
            with pytest.raises(UploadError) as lost:
                late.save()
            assert lost.value.status == 409
    else:
        send(c, c.get(upload.id, OWNER), data)
    commit(backend, backend.store(), [upload.id])
    assert backend.objects.read_bytes(upload.id) == data


def test_a_patch_whose_upload_is_deleted_meanwhile_gets_404(backend: Backend) -> None:
    """A DELETE (or a sweep) on another instance while a PATCH is received: the
    PATCH's save says 404, never an error of the bucket, and nothing stays."""
    data = sealed(14 * MiB)
    a, b = backend.store(), backend.store()
    upload = send(a, a.create(OWNER, len(data)), data[: 2 * SEGMENT])  # a part begun
    with a.hold([upload.id], patch=True), a.append_to(upload) as writer:
        writer.write(data[2 * SEGMENT : 3 * SEGMENT + MiB])  # a part's worth
        writer.keep(SEGMENT + MiB)
        with b.hold([upload.id]):
            b.delete(upload.id)
        with pytest.raises(UploadError) as gone:
            writer.save()
    assert gone.value.status == 404
    assert backend.rows() == []
    assert backend.leftovers() == set()


def test_a_commit_holds_its_uploads_from_every_instance(backend: Backend) -> None:
    data = sealed(MiB)
    a, b = backend.store(), backend.store()
    upload = send(a, a.create(OWNER, len(data)), data)
    with a.hold([upload.id]):
        other = b if backend.kind == "shared" else a
        with pytest.raises(UploadError) as busy, other.hold([upload.id]):
            other.delete(upload.id)
        assert busy.value.status == 423
    assert b.get(upload.id, OWNER).received == len(data)


def test_commits_at_once_never_wait_for_each_others_pool_connections(
    shared_backend: Backend, pg_url: str, tmp_path: Path
) -> None:
    """As many commits as the pool has connections, all holding at once, still
    get connections for their work: a hold keeps none of the pool's (with the
    lock in a pooled transaction, each waited for the others' until the pool's
    timeout: 503 for every commit under load)."""
    assert shared_backend.s3 is not None
    location = S3Location(
        shared_backend.s3.endpoint, shared_backend.bucket, ACCESS_KEY, SECRET_KEY, REGION
    )
    with PostgresDatabase(pg_url, max_size=2, wait=2) as small:
        store = SharedUploadStore(
            small,
            S3ObjectStore(connect(location), shared_backend.bucket, tmp_path / "small-spool"),
            policy(Settings(data_dir=tmp_path)),
            shared_backend.clock,
            disk=DiskReserve(tmp_path, 0),
        )
        store.prepare()
        data = sealed(MiB)
        ids = [send(store, store.create(OWNER, len(data)), data).id for _ in range(2)]
        all_holding = threading.Barrier(2, timeout=20)
        received: list[int] = []

        def commit_one(upload_id: str) -> None:
            with store.hold([upload_id]):
                all_holding.wait()
                [upload] = store.check_for_commit([upload_id], OWNER)
                received.append(upload.received)

        workers = [threading.Thread(target=commit_one, args=(i,)) for i in ids]
        for w in workers:
            w.start()
        for w in workers:
            w.join(60)
    assert received == [len(data), len(data)]


def test_the_pages_segments_are_whole_s3_parts() -> None:
    """The page's PATCHes are at least an S3 part, so that an instance on a
    bucket sends each as a part instead of staging it and reading it back
    (twice the bucket traffic: docs/BENCHMARKS.md, "Scale-out")."""
    page = (Path(__file__).parents[1] / "server" / "static" / "upload.js").read_text()
    found = re.search(r"const SEGMENT = (\d+) \* 1024 \* 1024;", page)
    assert found
    assert int(found.group(1)) * MiB >= MIN_PART_SIZE


# Expiry


def test_an_idle_upload_expires_and_leaves_nothing(backend: Backend) -> None:
    data = sealed(7 * MiB)
    a = backend.store()
    upload = a.create(OWNER, len(data))
    upload = patch(a, upload, data[:SEGMENT])  # a staging object, for the shared store
    upload = patch(a, upload, data[SEGMENT : 2 * SEGMENT - 1])  # then a part
    assert backend.leftovers()
    backend.clock.advance(a.policy.expire_seconds + 1)
    with pytest.raises(UploadError) as gone:
        a.get(upload.id, OWNER)
    assert gone.value.status == 410
    assert backend.rows() == []
    assert backend.leftovers() == set()


def test_the_sweep_spares_an_upload_another_instance_is_receiving(backend: Backend) -> None:
    a, b = backend.store(), backend.store()
    upload = a.create(OWNER, 8 * MiB)
    assert b.get(upload.id, OWNER).received == 0  # b has seen it: b's clock starts
    expire = a.policy.expire_seconds
    for _ in range(3):  # only a receives, for longer than the expiry
        backend.clock.advance(expire * 2 // 3)
        upload = patch(a, upload, os.urandom(64 * 1024))
    assert b.sweep() == 0
    assert b.get(upload.id, OWNER).received == 3 * 64 * 1024
    backend.clock.advance(expire + 1)  # then nobody: every instance may remove it
    assert b.sweep() == 1
    assert backend.rows() == []
    assert backend.leftovers() == set()


def test_delete_and_forget_leave_nothing(backend: Backend) -> None:
    data = sealed(6 * MiB)
    a = backend.store()
    one = send(a, a.create(OWNER, len(data)), data[: 2 * SEGMENT - MiB], SEGMENT)
    two = patch(a, a.create(OWNER, 100), b"")
    with a.hold([one.id]):
        a.delete(one.id)
    assert backend.store().forget_owner(OWNER) == 1
    for gone in (one, two):
        with pytest.raises(UploadError):
            a.get(gone.id, OWNER)
    assert backend.rows() == []
    assert backend.leftovers() == set()


# Caps, counted from every instance's rows


def test_open_uploads_per_browser_are_capped_across_instances(backend: Backend) -> None:
    backend.store(max_open_per_owner=2).create(OWNER, 10)
    backend.store(max_open_per_owner=2).create(OWNER, 10)
    with pytest.raises(UploadError) as refused:
        backend.store(max_open_per_owner=2).create(OWNER, 10)
    assert refused.value.status == 429
    backend.store(max_open_per_owner=2).create(OTHER, 10)  # another browser is not counted


def test_bytes_per_browser_are_capped_across_instances(backend: Backend) -> None:
    backend.store(max_bytes_per_owner=10 * MiB).create(OWNER, 6 * MiB)
    with pytest.raises(UploadError) as refused:
        backend.store(max_bytes_per_owner=10 * MiB).create(OWNER, 5 * MiB)
    assert refused.value.status == 507
    backend.store(max_bytes_per_owner=10 * MiB).create(OWNER, 4 * MiB)


def test_the_total_is_capped_from_every_instances_uploads(backend: Backend) -> None:
    a, b = backend.store(max_bytes_total=3 * MiB), backend.store(max_bytes_total=3 * MiB)
    upload = a.create(OWNER, 10 * MiB)
    patch(a, upload, os.urandom(2 * MiB))
    with pytest.raises(UploadError) as refused, b.receiving(b.get(upload.id, OWNER), 2 * MiB):
        pass
    assert refused.value.status == 507
    with b.receiving(b.get(upload.id, OWNER), MiB - 1):
        pass


# Commit


def test_commit_makes_an_object_of_exactly_the_uploads_bytes(backend: Backend) -> None:
    sizes = [100, MIN_PART_SIZE - 1, MIN_PART_SIZE, 13 * MiB + 17]
    datas = [sealed(n) for n in sizes]
    uploads = []
    for data in datas:
        store = backend.store()
        uploads.append(send(store, store.create(OWNER, len(data)), data))
    ids = [u.id for u in uploads]
    commit(backend, backend.store(), ids)
    for upload_id, data in zip(ids, datas, strict=True):
        assert backend.objects.read_bytes(upload_id) == data
    assert backend.rows() == []
    if backend.kind == "shared":  # the objects, and no staging object nor upload
        assert backend.leftovers() == set(ids)
        assert all(ID.fullmatch(key) for key in backend.leftovers())


def test_a_failed_record_can_commit_again(backend: Backend) -> None:
    data = sealed(6 * MiB)
    store = backend.store()
    upload = send(store, store.create(OWNER, len(data)), data)
    with store.hold([upload.id]):
        moved = store.move_to_store(store.check_for_commit([upload.id], OWNER), backend.objects)
        store.take_back(moved, backend.objects)  # the record failed
    again = backend.store()
    assert again.get(upload.id, OWNER).received == len(data)
    commit(backend, again, [upload.id])
    assert backend.objects.read_bytes(upload.id) == data


def test_commit_refuses_what_is_not_a_whole_envelope(backend: Backend) -> None:
    data = sealed(6 * MiB)
    store = backend.store()
    partial = patch(store, store.create(OWNER, len(data)), data[:SEGMENT])
    garbage = os.urandom(6 * MiB)
    noise = send(store, store.create(OWNER, len(garbage)), garbage)
    for upload, kind in ((partial, "incomplete"), (noise, "not_envelope")):
        with pytest.raises(CommitProblem) as problem, store.hold([upload.id]):
            store.check_for_commit([upload.id], OWNER)
        assert problem.value.kind == kind
    with pytest.raises(CommitProblem) as problem:
        store.check_for_commit([partial.id], OTHER)  # someone else's
    assert problem.value.kind == "missing"
    assert store.get(noise.id, OWNER).received == len(garbage)  # still an upload


# Leftovers of instances that died (the shared store's bucket)


def test_leftovers_of_a_dead_instance_go_and_uploads_in_progress_stay(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """A multipart upload begun by an instance killed before its row named it is
    aborted at the commit; garbage collection (at ``run``) removes an orphaned
    staging object and multipart upload, never those of an upload in progress,
    however old."""
    backend: Backend = request.getfixturevalue("shared_backend")
    store = backend.store()
    data = sealed(11 * MiB)
    upload = send(store, store.create(OWNER, len(data)), data[: 2 * SEGMENT])
    dead_part = store.objects.start_multipart(upload.id)  # then the instance died
    orphan = store.objects.write_bytes(b"a staging object nobody lists")
    other = store.create(OWNER, len(data))
    other = patch(store, other, data[:SEGMENT])  # a staging object in use
    old = S3ObjectStore(store.objects.client, backend.bucket, tmp_path / "gc", grace=timedelta(0))
    old.collect_garbage(store.known_objects(), keep_uploads=store.multipart_uploads())
    keys = backend.leftovers()
    assert orphan not in keys
    assert backend.store().row(other.id).staging in keys
    assert f"upload:{upload.id}" in keys  # the live one
    upload = send(store, store.get(upload.id, OWNER), data)
    commit(backend, store, [upload.id])
    assert backend.objects.read_bytes(upload.id) == data
    client = backend.s3.client() if backend.s3 else None
    assert client is not None
    listed = client.list_multipart_uploads(Bucket=backend.bucket).get("Uploads", [])
    assert dead_part not in {u["UploadId"] for u in listed}
    assert [u["Key"] for u in listed] == []


def test_the_wiring_shares_uploads_only_with_both_a_database_and_a_bucket(
    tmp_path: Path, pg_url: str, s3_server: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """docs/SCALE_OUT.md: with only one of ``[database]`` and ``[objects]``, uploads
    in progress stay in the data directory (the files store)."""
    monkeypatch.setenv("LANTERNE_S3_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("LANTERNE_S3_SECRET_ACCESS_KEY", SECRET_KEY)
    bucket = ObjectsConfig(s3_server.endpoint, s3_server.new_bucket(), REGION)
    database = DatabaseConfig(pg_url, pool_size=2)
    assert wiring.shared_upload_store(Settings(data_dir=tmp_path, objects=bucket)) is None
    assert wiring.shared_upload_store(Settings(data_dir=tmp_path, database=database)) is None
    both = Settings(data_dir=tmp_path, database=database, objects=bucket)
    store = wiring.shared_upload_store(both)
    assert isinstance(store, SharedUploadStore)
