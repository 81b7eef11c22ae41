"""Resumable uploads shared by several instances: rows in PostgreSQL, bytes in
the S3 bucket (issue 14 §3, docs/SCALE_OUT.md "Resumable uploads").

The second implementation of ``server.store.protocols.UploadStore`` (the first,
``server.store.uploads.UploadStore``, keeps a file per upload in the data
directory). Any PATCH of an upload may land on any instance, and an instance
may die at any moment: what a client was told (the offset of a 204, of a HEAD)
is always in PostgreSQL and the bucket, never only in one process.

- **The row** (``uploads``, migration 5): the owner's hash, the declared
  length, the bytes received, the day of the last activity, the S3 UploadId of
  the upload's multipart upload (begun at its first part), the staging object
  (below) and how many bytes it holds, the next part number to give, and
  whether the parts were assembled into the object. ``upload_parts`` lists the
  parts sent: number, first byte, length, ETag. No time finer than the day, no
  address.
- **The bytes.** S3 wants every part but the last to be at least 5 MiB, and
  the browser sends 4 MiB per PATCH. A PATCH's bytes go, with what the
  *staging object* held before them, into a local spool file (unnamed, the
  object store's ``new_spool``); then either they are at least ``part_size``
  (or the upload's last bytes) and are sent as one part of the multipart
  upload, or they become a new staging object (a random id, like every key;
  no metadata). The old staging object is deleted once the row names the new.
- **Compare and set.** A part number is taken from the row before the part is
  sent (so two PATCHes never write the same part), and the new offset, the
  part's ETag or the new staging object are recorded in ONE transaction that
  locks the row (``SELECT ... FOR UPDATE``) and checks that the offset and the
  staging object are still those the PATCH started from; otherwise the PATCH
  is refused with 409 (tus: the client asks HEAD and resumes) and what it sent
  is removed again (a part nobody lists is dropped by S3 when the upload is
  completed or aborted). An instance killed mid-PATCH loses that PATCH only.
- **Holding across instances.** A commit, a DELETE and the sweep hold their
  uploads with PostgreSQL advisory locks (``pg_try_advisory_lock``: 423 if
  another instance holds one), taken on one connection of the instance's own
  outside the pool (``_Holds``) and released by PostgreSQL itself when an
  instance dies. Not in a pooled transaction: a commit's work takes pool
  connections while it holds, so N commits at once on a pool of N would each
  wait for a connection the others keep, until the pool's timeout (503). A
  PATCH may last minutes over Tor, so it takes no such lock: its ``save``
  compares.
- **Commit.** ``check_for_commit`` completes the multipart upload (the object
  appears under the upload's id, whole) and reads its header from the bucket;
  the row is marked assembled, so a commit sent again (a record that failed)
  finds the object there. The record (``PostgresSourceStore.record_submission``)
  deletes the rows in its own transaction.
- **Leftovers.** A deleted or expired upload's row goes first, then its
  multipart upload is aborted and its staging object deleted; what an instance
  that died in between left is unlisted, and the object store's
  ``collect_garbage`` (at ``lanterne-server run``) removes it after a day
  (``known_objects`` keeps the live ones).

Caps and expiry are the files store's (``ExpiringUploads``): the caps are
counted from the shared rows (the instance cap becomes the cluster's), and
activity markers in the shared ephemeral store keep one instance from sweeping
an upload another is receiving. Every method blocks: worker threads.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, BinaryIO

from botocore.exceptions import ClientError

from server.store import protocols
from server.store.protocols import (
    CommitProblem,
    NoRoom,
    StoreFull,
    StoreUnavailable,
    Upload,
    UploadError,
    new_id,
)
from server.store.s3_objects import MIN_PART_SIZE, S3ObjectStore
from server.store.uploads import (
    EMPTY_UPLOAD_BYTES,
    ExpiringUploads,
    UploadPolicy,
)

if TYPE_CHECKING:
    import psycopg

    from server.store.postgres import PostgresDatabase

MAX_PARTS = 10000  # S3's limit on part numbers
_CREATE_LOCK = 0x4C4E5550  # pg_advisory_xact_lock key of creations ("LNUP")
_SELECT = (
    "SELECT id, owner_hash, length, received, active_on,"
    " s3_upload, staging, staged, next_part, assembled FROM uploads WHERE id = %s"
)
_SELECT_LOCKED = _SELECT + " FOR UPDATE"


@dataclass(frozen=True)
class _Row:
    id: str
    owner_hash: bytes
    length: int
    received: int
    active_on: str
    s3_upload: str | None
    staging: str | None
    staged: int
    next_part: int
    assembled: bool

    @classmethod
    def of(cls, row: tuple[Any, ...]) -> _Row:
        return cls(
            row[0], bytes(row[1]), int(row[2]), int(row[3]), row[4], row[5], row[6],
            int(row[7]), int(row[8]), bool(row[9]),
        )  # fmt: skip

    @property
    def upload(self) -> Upload:
        return Upload(self.id, self.owner_hash, self.length, self.received, self.active_on)


def _hold_key(upload_id: str) -> int:
    """The advisory lock key of one upload: 64 bits of a hash of its id."""
    digest = hashlib.sha256(b"lanterne upload hold\x00" + upload_id.encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class _Holds:
    """Session-level advisory locks on one connection of the instance's own
    (module docstring, "Holding across instances").

    Each lock or unlock is one short query under a mutex; nothing is kept busy
    while an upload is held. If the connection breaks, its locks went with it
    (PostgreSQL released them): the next ``take`` opens a new one, and a
    ``release`` of locks taken on the broken one does nothing.
    """

    def __init__(self, pg: PostgresDatabase) -> None:
        self.pg = pg
        self._mutex = threading.Lock()
        self._session: contextlib.ExitStack | None = None
        self._conn: psycopg.Connection[tuple[Any, ...]] | None = None

    def _connection(self) -> psycopg.Connection[tuple[Any, ...]]:
        if self._conn is None or self._conn.closed or self._conn.broken:
            self.close()
            stack = contextlib.ExitStack()
            self._conn = stack.enter_context(self.pg.session())
            self._session = stack
        return self._conn

    def take(self, keys: Sequence[int]) -> psycopg.Connection[tuple[Any, ...]] | None:
        """All of ``keys`` on the returned connection, or none of them and None."""
        with self._mutex, self.pg.errors():
            conn = self._connection()
            taken: list[int] = []
            for key in keys:
                got = conn.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()
                if not got or not got[0]:
                    for k in taken:
                        conn.execute("SELECT pg_advisory_unlock(%s)", (k,))
                    return None
                taken.append(key)
            return conn

    def release(self, conn: psycopg.Connection[tuple[Any, ...]], keys: Sequence[int]) -> None:
        with self._mutex:
            if conn is not self._conn or conn.closed or conn.broken:
                return  # gone with its connection
            with contextlib.suppress(StoreUnavailable, StoreFull), self.pg.errors():
                for key in keys:
                    conn.execute("SELECT pg_advisory_unlock(%s)", (key,))

    def close(self) -> None:
        if self._session is not None:
            with contextlib.suppress(Exception):
                self._session.close()
        self._session = self._conn = None


class SharedUploadStore(ExpiringUploads):
    """Uploads in progress as PostgreSQL rows and S3 parts (module docstring)."""

    def __init__(
        self,
        pg: PostgresDatabase,
        objects: S3ObjectStore,
        policy: UploadPolicy,
        now: Callable[[], float] = time.time,
        *,
        disk: protocols.DiskSpace,
        activity: protocols.EphemeralStore | None = None,
        part_size: int = MIN_PART_SIZE,
    ) -> None:
        super().__init__(policy, now, activity)
        if part_size < MIN_PART_SIZE:
            raise ValueError(f"S3 parts are at least {MIN_PART_SIZE} bytes")
        self.pg = pg
        self.objects = objects
        self.disk = disk  # the local disk holds each PATCH's spool file
        self.part_size = part_size
        self._holds = _Holds(pg)
        # Its connection closes with the store (or at exit): PostgreSQL then
        # releases whatever it still held.
        weakref.finalize(self, self._holds.close)

    def prepare(self) -> None:
        """The spool directory (the tables are migration 5's)."""
        self.objects.create_dirs()

    # Rows

    def _row(
        self, conn: psycopg.Connection[tuple[Any, ...]], upload_id: str, lock: bool = False
    ) -> _Row | None:
        found = conn.execute(_SELECT_LOCKED if lock else _SELECT, (upload_id,)).fetchone()
        return None if found is None else _Row.of(found)

    def row(self, upload_id: str) -> _Row | None:
        with self.pg.connect() as conn:
            return self._row(conn, upload_id)

    def _instance_total(self, conn: psycopg.Connection[tuple[Any, ...]]) -> int:
        """What every upload counts against ``max_bytes_total`` (the files store's rule)."""
        found = conn.execute(
            "SELECT coalesce(sum(CASE WHEN received = 0 THEN LEAST(length, %s)"
            " ELSE received END), 0) FROM uploads",
            (EMPTY_UPLOAD_BYTES,),
        ).fetchone()
        return int(found[0]) if found else 0

    # Creation, lookup, deletion

    def create(self, owner_hash: bytes, length: int) -> Upload:
        if length > self.policy.max_length:
            raise UploadError(413, "longer than Tus-Max-Size")
        upload = Upload(new_id(), owner_hash, length, 0, self.day())
        counted = min(length, EMPTY_UPLOAD_BYTES)
        with self.pg.connect() as conn:
            # One creation at a time across instances: the caps count every row.
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_CREATE_LOCK,))
            found = conn.execute(
                "SELECT count(*), coalesce(sum(length), 0) FROM uploads WHERE owner_hash = %s",
                (owner_hash,),
            ).fetchone()
            count, mine = (int(found[0]), int(found[1])) if found else (0, 0)
            if count >= self.policy.max_open_per_owner:
                raise UploadError(429, "too many uploads open for this browser")
            if (
                mine + length > self.policy.max_bytes_per_owner
                or self._instance_total(conn) + counted > self.policy.max_bytes_total
            ):
                raise UploadError(507, "no room for this upload")
            conn.execute(
                "INSERT INTO uploads(id, owner_hash, length, received, active_on)"
                " VALUES (%s, %s, %s, 0, %s)",
                (upload.id, owner_hash, length, upload.active_on),
            )
        with self._lock:
            now = self._now()
            self._active[upload.id] = now
            self._owner_active.setdefault(owner_hash, now)
        return upload

    def get(self, upload_id: str, owner_hash: bytes | None) -> Upload:
        """The caller's upload; 404 if unknown or someone else's, 410 if it just expired."""
        if owner_hash is None or not _is_id(upload_id):
            raise UploadError(404)
        row = self.row(upload_id)
        if row is None or not hmac.compare_digest(row.owner_hash, owner_hash):
            raise UploadError(404)
        upload = row.upload
        if self.expired(upload):
            with contextlib.suppress(UploadError), self.hold([upload_id]):
                self._remove(upload_id)
            raise UploadError(410)
        return upload

    @contextlib.contextmanager
    def hold(self, upload_ids: Sequence[str], *, patch: bool = False) -> Iterator[None]:
        with super().hold(upload_ids):
            if patch:
                yield
                return
            keys = [_hold_key(upload_id) for upload_id in upload_ids]
            conn = self._holds.take(keys)
            if conn is None:
                raise UploadError(423, "another instance is using this upload")
            try:
                yield
            finally:
                self._holds.release(conn, keys)

    @contextlib.contextmanager
    def receiving(self, upload: Upload, nbytes: int) -> Iterator[None]:
        """Room for ``nbytes`` more: under the cap (counted from every instance's
        rows) and, for the spool file, above the local disk's reserve; 507 if not."""
        with self.pg.connect() as conn:
            total = self._instance_total(conn)
        counted = upload.received or min(upload.length, EMPTY_UPLOAD_BYTES)
        if total - counted + upload.received + nbytes > self.policy.max_bytes_total:
            raise UploadError(507, "no room for this upload")
        try:
            # The spool holds the staging object's bytes too: less than a part.
            with self.disk.claim(("upload", upload.id), nbytes + self.part_size):
                yield
        except NoRoom:
            raise UploadError(507, "no room for this upload") from None

    @contextlib.contextmanager
    def append_to(self, upload: Upload) -> Iterator[PartWriter]:
        writer = PartWriter(self, upload)
        try:
            yield writer
        finally:
            writer.close()

    def delete(self, upload_id: str) -> None:
        self._remove(upload_id)

    def _remove(self, upload_id: str) -> None:
        """The row first (its parts' rows with it), then what it named in the
        bucket; if that fails, the object store's garbage collection finds it unlisted."""
        with self.pg.connect() as conn:
            gone = conn.execute(
                "DELETE FROM uploads WHERE id = %s RETURNING s3_upload, staging, assembled",
                (upload_id,),
            ).fetchone()
        with self._lock:
            self._active.pop(upload_id, None)
        if gone is None:
            return
        _s3_upload, staging, assembled = gone
        with contextlib.suppress(OSError, ClientError):
            # Its multipart upload, and any an instance that died had begun.
            self.objects.abort_multiparts(upload_id)
            if staging is not None:
                self.objects.delete(staging)
            if assembled:
                self.objects.delete(upload_id)

    def forget_owner(self, owner_hash: bytes) -> int:
        """Delete every upload of one browser; those in use are left to expire."""
        with self.pg.connect() as conn:
            ids = [
                r[0]
                for r in conn.execute(
                    "SELECT id FROM uploads WHERE owner_hash = %s", (owner_hash,)
                ).fetchall()
            ]
        return self._remove_unless_busy(ids)

    def sweep(self, *, at_start: bool = False) -> int:
        """Delete expired uploads (those another instance holds are left alone)."""
        with self.pg.connect() as conn:
            rows = conn.execute(
                "SELECT id, owner_hash, length, received, active_on FROM uploads"
            ).fetchall()
        uploads = [Upload(r[0], bytes(r[1]), int(r[2]), int(r[3]), r[4]) for r in rows]
        doomed = [u.id for u in uploads if self.expired(u)]
        with self._lock:  # browsers with no upload left need no activity time
            owners = {u.owner_hash for u in uploads if u.id not in doomed}
            for owner in [o for o in self._owner_active if o not in owners]:
                del self._owner_active[owner]
        return self._remove_unless_busy(doomed)

    def known_objects(self) -> set[str]:
        """Keys of the bucket that uploads in progress use (their multipart uploads,
        assembled objects and staging objects): not garbage."""
        with self.pg.connect() as conn:
            rows = conn.execute("SELECT id, staging FROM uploads").fetchall()
        return {r[0] for r in rows} | {r[1] for r in rows if r[1] is not None}

    def multipart_uploads(self) -> set[str]:
        """The S3 UploadIds uploads in progress use: garbage collection keeps them."""
        with self.pg.connect() as conn:
            rows = conn.execute(
                "SELECT s3_upload FROM uploads WHERE s3_upload IS NOT NULL"
            ).fetchall()
        return {str(r[0]) for r in rows}

    # Commit

    def _ready(self, upload: Upload) -> None:
        self._assemble(upload)

    def _stored_size(self, upload: Upload) -> int:
        return self.objects.size(upload.id)

    def _open_stored(self, upload: Upload) -> contextlib.AbstractContextManager[protocols.Readable]:
        return self.objects.open(upload.id)

    def _assemble(self, upload: Upload) -> None:
        """Complete the multipart upload from the parts the row lists, in order."""
        with self.pg.connect() as conn:
            row = self._row(conn, upload.id)
            parts = conn.execute(
                "SELECT number, etag, start, size FROM upload_parts"
                " WHERE upload_id = %s ORDER BY start",
                (upload.id,),
            ).fetchall()
        if row is None:
            raise CommitProblem("missing")
        if row.assembled:
            return
        if not parts or row.s3_upload is None:
            raise CommitProblem("not_envelope")  # nothing was sent: no envelope is empty
        expected = 0
        for number, _etag, start, size in parts:
            if int(start) != expected or number > MAX_PARTS:
                raise CommitProblem("incomplete")
            expected += int(size)
        if expected != upload.length or row.staging is not None:
            raise CommitProblem("incomplete")
        try:
            self.objects.complete_multipart(
                upload.id, row.s3_upload, [(int(n), str(e)) for n, e, _s, _z in parts]
            )
        except ClientError:
            # Completed before, by a commit whose row update failed: the object is there.
            try:
                if self.objects.size(upload.id) != upload.length:
                    raise CommitProblem("incomplete") from None
            except FileNotFoundError:
                raise CommitProblem("incomplete") from None
        with self.pg.connect() as conn:
            conn.execute(
                "UPDATE uploads SET assembled = 1, s3_upload = NULL WHERE id = %s", (upload.id,)
            )
            conn.execute("DELETE FROM upload_parts WHERE upload_id = %s", (upload.id,))
        # Multipart uploads to this key that an instance began and died with.
        with contextlib.suppress(OSError, ClientError):
            self.objects.abort_multiparts(upload.id)

    def move_to_store(self, uploads: Sequence[Upload], store: protocols.ObjectStore) -> list[str]:
        """Nothing moves: ``check_for_commit`` assembled each upload into its object
        in the bucket the object store uses."""
        if getattr(store, "bucket", None) != self.objects.bucket:
            raise TypeError("the shared upload store commits into its own bucket only")
        return [upload.id for upload in uploads]

    def take_back(self, upload_ids: Sequence[str], store: protocols.ObjectStore) -> int:
        """The record failed: the rows are intact and name their assembled objects,
        so the same commit can be sent again; nothing to do."""
        return 0

    def finish(self, upload_ids: Sequence[str]) -> None:
        """The submission is recorded (its transaction removed the rows): any row
        left goes, never the object, which is now the submission's."""
        ids = [i for i in upload_ids if _is_id(i)]
        with self.pg.connect() as conn:
            conn.execute("DELETE FROM uploads WHERE id = ANY(%s)", (ids,))
        with self._lock:
            for upload_id in ids:
                self._active.pop(upload_id, None)

    def reclaim(self, store: protocols.ObjectStore, recorded: set[str]) -> int:
        """Nothing to take back at start: an unrecorded commit left its rows."""
        return 0


class PartWriter:
    """One PATCH of a shared upload (``UploadWriter``): the staging object's bytes
    and the PATCH's, in a spool file, saved as a part or a new staging object."""

    def __init__(self, store: SharedUploadStore, upload: Upload) -> None:
        self._store = store
        self._objects = store.objects
        row = store.row(upload.id)
        if row is None:
            raise UploadError(404)
        if row.received != upload.received:
            raise UploadError(409, "Upload-Offset is not the current offset")
        self._row = row
        self._kept = 0
        self._spool: BinaryIO | None = self._objects.new_spool()
        if row.staging is not None:
            try:
                copied = self._objects.copy_into(row.staging, self._spool)
            except FileNotFoundError:  # replaced meanwhile by another PATCH
                self.close()
                raise UploadError(409, "Upload-Offset is not the current offset") from None
            except BaseException:
                self.close()
                raise
            if copied != row.staged:
                self.close()
                raise UploadError(409, "the staging object changed")

    def close(self) -> None:
        if self._spool is not None:
            self._spool.close()  # unnamed: closing frees it
            self._spool = None

    def write(self, data: bytes | bytearray) -> None:
        assert self._spool is not None
        view = memoryview(data)
        while view:
            n = self._spool.write(view)
            assert n is not None
            view = view[n:]

    def keep(self, size: int) -> None:
        assert self._spool is not None
        os.ftruncate(self._spool.fileno(), self._row.staged + size)
        self._spool.seek(self._row.staged + size)
        self._kept = size

    def save(self) -> Upload:
        try:
            return self._save()
        except ClientError as exc:
            # The multipart upload aborted meanwhile: by a DELETE or a sweep on
            # another instance (the row is gone: 404), or by the bucket itself (a
            # lifecycle rule shorter than the upload): its acknowledged parts are
            # lost, so the upload goes, as an expired one (410). Any other refusal
            # of the bucket is a store out of order: 503.
            if exc.response.get("Error", {}).get("Code") not in ("NoSuchUpload", "NoSuchKey"):
                raise StoreUnavailable("the object store") from exc
            if self._store.row(self._row.id) is None:
                raise UploadError(404) from None
            with contextlib.suppress(UploadError), self._store.hold([self._row.id]):
                self._store._remove(self._row.id)
            raise UploadError(410, "the bucket lost this upload's parts") from None

    def _save(self) -> Upload:
        store, row = self._store, self._row
        assert self._spool is not None
        received = row.received + self._kept
        total = row.staged + self._kept
        if self._kept == 0:  # only the day of activity
            return self._record(received, row.staging, row.staged, row.s3_upload)
        if total >= store.part_size or received == row.length:
            return self._save_part(received, total)
        staging = new_id()
        self._objects.put_file(staging, self._spool, total)
        try:
            saved = self._record(received, staging, total, row.s3_upload)
        except BaseException:
            with contextlib.suppress(OSError, ClientError):
                self._objects.delete(staging)
            raise
        self._drop_old_staging()
        return saved

    def _save_part(self, received: int, total: int) -> Upload:
        store, row = self._store, self._row
        assert self._spool is not None
        started = None
        s3_upload = row.s3_upload
        if s3_upload is None:
            s3_upload = started = self._objects.start_multipart(row.id)
        try:
            with store.pg.connect() as conn:
                taken = conn.execute(
                    "UPDATE uploads SET next_part = next_part + 1 WHERE id = %s"
                    " RETURNING next_part - 1",
                    (row.id,),
                ).fetchone()
            if taken is None:
                raise UploadError(404)
            number = int(taken[0])
            if number > MAX_PARTS:
                raise UploadError(413, "too many parts")
            etag = self._objects.send_part(row.id, s3_upload, number, self._spool, total)
            part = (number, row.received - row.staged, total, etag)
            saved = self._record(received, None, 0, s3_upload, part)
        except BaseException:
            if started is not None:
                with contextlib.suppress(OSError, ClientError):
                    self._objects.abort_multipart(row.id, started)
            raise
        self._drop_old_staging()
        return saved

    def _record(
        self,
        received: int,
        staging: str | None,
        staged: int,
        s3_upload: str | None,
        part: tuple[int, int, int, str] | None = None,
    ) -> Upload:
        """The new offset (and part, staging object, UploadId) in one transaction,
        if the row is still where this PATCH started; 409 if not, 404 if gone."""
        store, row = self._store, self._row
        with store.pg.connect() as conn:
            now = store._row(conn, row.id, lock=True)
            if now is None:
                raise UploadError(404)
            if (
                now.received != row.received
                or now.staging != row.staging
                or now.s3_upload not in (None, s3_upload)
            ):
                raise UploadError(409, "another request moved this upload on")
            conn.execute(
                "UPDATE uploads SET received = %s, active_on = %s, staging = %s, staged = %s,"
                " s3_upload = %s WHERE id = %s",
                (received, store.day(), staging, staged, s3_upload, row.id),
            )
            if part is not None:
                conn.execute(
                    "INSERT INTO upload_parts(upload_id, number, start, size, etag)"
                    " VALUES (%s, %s, %s, %s, %s)",
                    (row.id, *part),
                )
        upload = Upload(row.id, row.owner_hash, row.length, received, store.day())
        store._touch(upload.id, upload.owner_hash)
        store._mark(upload)
        return upload

    def _drop_old_staging(self) -> None:
        """The staging object the row no longer names (if this fails: garbage, a day on)."""
        if self._row.staging is not None:
            with contextlib.suppress(OSError, ClientError):
                self._objects.delete(self._row.staging)


def _is_id(value: str) -> bool:
    return len(value) == 32 and all(c in "0123456789abcdef" for c in value)


if TYPE_CHECKING:

    def _is_an_upload_store(store: SharedUploadStore) -> protocols.UploadStore:
        return store  # mypy checks the Protocol's every method
