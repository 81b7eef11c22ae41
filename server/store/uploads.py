"""Resumable uploads of ciphertext for the JavaScript path (tus 1.0, docs/UPLOADS.md).

The browser encrypts; this module only ever stores envelope bytes it cannot
read. An upload is ``DATA_DIR/uploads/ID.part`` plus one row of the
``uploads`` table (declared length, bytes received, owner, the day of its last
activity: the server stores no finer time). Every PATCH is fsynced before its
new offset is acknowledged, so what a client was told survives a crash or a
restart.

Ownership is a random upload cookie (server/domain/uploads.py), not the session: the
session lives in memory and ends at a restart (or is evicted under load),
while an upload must survive both. The database keeps only SHA-256 of the
cookie's secret part; the commit (server/web/routes/commit.py) additionally needs
the session's CSRF token, like any form.

Nothing is reserved for bytes that have not arrived, so empty creations
declaring huge lengths cannot hoard the disk (docs/THREAT_MODEL.md, "Floods"):
the instance cap counts what each upload received (an empty one counts
``EMPTY_UPLOAD_BYTES``), and the disk is checked by ``DiskReserve`` (shared with
the no-JS form) for each PATCH while it is received. A browser's own uploads
still count at their declared lengths against its own caps.

Activity times finer than the day live in memory only (``_active``; rows that
survive a restart start a fresh time). With several instances, each PATCH also
replaces a random marker in the store they share (``activity``, no time in
it): an instance that finds a marker it has not seen counts the upload as
active now, so it never sweeps an upload another instance is receiving.
An upload expires ``expire_seconds`` after its browser's last activity, or
``empty_expire_seconds`` after creation if nothing ever arrived for it nor
for any other upload of its browser; the stored day removes rows a restart
would otherwise keep alive for ever.
Expired uploads are deleted by ``sweep`` (at start-up and, at most every
``sweep_interval_seconds``, on upload requests) or when next accessed.

File times are days (server/store/file_times.py): each write, creation and removal
is followed by a stamp of the file and of ``uploads/`` by this store's clock.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import envelope
from server.settings import Settings
from server.store import file_times, protocols
from server.store.db import UPLOADS_SCHEMA, Database
from server.store.disk_reserve import DiskReserve
from server.store.objects import ObjectStore
from server.store.protocols import CommitProblem, NoRoom, Upload, UploadError, new_id

__all__ = [
    "CommitProblem",
    "Upload",
    "UploadError",
    "UploadPolicy",
    "UploadStore",
    "is_envelope_length",
    "looks_like_envelope",
    "max_upload_length",
]

PART_SUFFIX = ".part"
EMPTY_UPLOAD_BYTES = 1 << 20  # what an upload with nothing received counts (at most its length)
DAY = 86400
HEAD_READ = 65536  # read at a time while looking for an envelope's header
_ACTIVITY = "upload_activity"  # EphemeralStore kind of the activity markers
_UPLOAD_MARK = b"lanterne upload activity v1\x00"
_OWNER_MARK = b"lanterne browser activity v1\x00"


def max_upload_length(max_plaintext: int) -> int:
    """The largest envelope of at most ``max_plaintext`` bytes, whatever its recipients."""
    return envelope.ciphertext_size(max_plaintext)


def is_envelope_length(total: int, header: int) -> bool:
    """Whether ``total`` bytes can be an envelope whose header is ``header`` bytes.

    The payload is a Padmé bucket sealed in 64 KiB chunks, each with a tag
    (SPEC §5-6), so only some lengths exist; anything else is truncated or padded.
    """
    if total <= header:
        return False
    # The smallest plaintext whose envelope is at least ``total`` bytes
    # (``ciphertext_size`` grows with the plaintext): ``total`` is an envelope's
    # length only if that envelope is exactly ``total`` bytes long.
    low, high = 0, total
    while low < high:
        middle = (low + high) // 2
        if envelope.ciphertext_size(middle, header) < total:
            low = middle + 1
        else:
            high = middle
    return envelope.ciphertext_size(low, header) == total


def looks_like_envelope(f: protocols.Readable, length: int) -> bool:
    """The magic, a header that parses, and a length only an envelope can have.

    ``f`` is the upload from its first byte; only the header is read: nothing
    is, or could be, decrypted here.
    """
    head = b""
    try:
        while (header := envelope.header_size(head)) is None:
            more = f.read(HEAD_READ)
            if not more:
                return False
            head += more
    except envelope.FormatError:
        return False
    return is_envelope_length(length, header)


class FileWriter:
    """One PATCH's bytes, written into the upload's file from its offset on
    (``UploadWriter``, server/store/protocols.py)."""

    def __init__(self, store: UploadStore, upload: Upload, f: BinaryIO) -> None:
        self._store = store
        self._upload = upload
        self._f = f
        self._kept = 0
        with store.db.read() as conn:
            row = conn.execute("SELECT received FROM uploads WHERE id = ?", (upload.id,)).fetchone()
        if row is None:
            raise UploadError(404)
        if row[0] != upload.received:  # another PATCH went first (the caller holds it now)
            raise UploadError(409, "Upload-Offset is not the current offset")
        f.seek(upload.received)

    def write(self, data: bytes | bytearray) -> None:
        view = memoryview(data)
        while view:
            n = self._f.write(view)
            assert n is not None  # a blocking file
            view = view[n:]

    def keep(self, size: int) -> None:
        """Flush, cut the file after the first ``size`` bytes of this PATCH and
        fsync: the offset ``save`` records is on disk. Bytes past it are what a
        crash mid-PATCH left behind."""
        self._f.flush()
        os.ftruncate(self._f.fileno(), self._upload.received + size)
        os.fsync(self._f.fileno())
        self._f.seek(self._upload.received + size)
        self._kept = size

    def save(self) -> Upload:
        """The new offset recorded; if the database cannot record it, the file is
        cut back to the old offset and the error raised."""
        try:
            return self._store.progress(self._upload.id, self._upload.received + self._kept)
        except protocols.DATABASE_UNAVAILABLE:
            self.keep(0)
            raise


@dataclass(frozen=True)
class UploadPolicy:
    max_length: int  # Tus-Max-Size: the envelope of the largest file allowed
    max_patch: int
    max_open_per_owner: int
    max_bytes_per_owner: int
    max_bytes_total: int
    expire_seconds: int
    empty_expire_seconds: int
    disk_reserve: int | None  # None: DiskReserve's default for the disk's size
    sweep_interval: int

    @classmethod
    def from_settings(cls, settings: Settings) -> UploadPolicy:
        limits, up = settings.limits, settings.uploads
        max_length = max_upload_length(max(limits.max_file_bytes, limits.max_message_bytes))
        # One submission: its files, the message and the manifest.
        objects = limits.max_files + 2
        per_owner = up.max_bytes_per_browser or (
            limits.max_files * max_length
            + 2 * max_upload_length(limits.max_message_bytes + limits.max_parts * 4096)
        )
        return cls(
            max_length=max_length,
            max_patch=up.max_patch_bytes,
            max_open_per_owner=up.max_open_per_browser or 2 * objects,
            max_bytes_per_owner=per_owner,
            max_bytes_total=up.max_bytes_total,
            expire_seconds=up.expire_seconds,
            empty_expire_seconds=up.empty_expire_seconds,
            disk_reserve=up.disk_reserve_bytes,
            sweep_interval=up.sweep_interval_seconds,
        )


class ExpiringUploads:
    """What every upload store shares, whatever keeps the bytes: the policy, the
    activity times (in memory; markers in the shared ephemeral store for the
    other instances), expiry, the in-process hold and the sweep's pace.

    Subclasses give ``sweep`` and ``_remove``.
    """

    def __init__(
        self,
        policy: UploadPolicy,
        now: Callable[[], float] = time.time,
        activity: protocols.EphemeralStore | None = None,
    ) -> None:
        self.policy = policy
        self._now = now
        self._lock = threading.Lock()  # creation, sweeps, the busy set and activity times
        self._busy: set[str] = set()  # uploads a request is writing, deleting or committing
        self._last_sweep = float("-inf")
        # Last activity, in memory only: per upload, and per browser (owner hash).
        self._active: dict[str, float] = {}
        self._owner_active: dict[bytes, float] = {}
        # Several instances: each PATCH replaces a random marker in the store they
        # share; an instance that finds a marker it has not seen counts the upload
        # (or browser) as active now. No time is stored, only that something changed.
        self._activity = activity
        self._seen: dict[bytes, bytes] = {}

    def sweep(self, *, at_start: bool = False) -> int:
        raise NotImplementedError

    def _remove(self, upload_id: str) -> None:
        raise NotImplementedError

    def get(self, upload_id: str, owner_hash: bytes | None) -> Upload:
        raise NotImplementedError

    def _ready(self, upload: Upload) -> None:
        """Make a complete upload's bytes one readable whole (S3: assemble its parts)."""

    def _stored_size(self, upload: Upload) -> int:
        """The length of what was received; FileNotFoundError if it is gone."""
        raise NotImplementedError

    def _open_stored(self, upload: Upload) -> contextlib.AbstractContextManager[protocols.Readable]:
        raise NotImplementedError

    def check_for_commit(self, upload_ids: Sequence[str], owner_hash: bytes | None) -> list[Upload]:
        """Every upload complete, owned, of its declared length, and an envelope.

        Raises CommitProblem. Nothing changes but ``_ready``'s work: an upload
        assembled in a bucket is still an upload (deleted, it takes its object).
        The caller holds the uploads.
        """
        if len(set(upload_ids)) != len(upload_ids):
            raise CommitProblem("duplicate")
        uploads = []
        for upload_id in upload_ids:
            try:
                upload = self.get(upload_id, owner_hash)
            except UploadError:
                raise CommitProblem("missing") from None
            if not upload.complete:
                raise CommitProblem("incomplete")
            self._ready(upload)
            try:
                size = self._stored_size(upload)
            except FileNotFoundError:
                raise CommitProblem("missing") from None
            if size != upload.length:
                raise CommitProblem("incomplete")
            with self._open_stored(upload) as f:
                if not looks_like_envelope(f, upload.length):
                    raise CommitProblem("not_envelope")
            uploads.append(upload)
        return uploads

    def day(self) -> str:
        return time.strftime("%Y-%m-%d", time.gmtime(self._now()))

    def _marker_keys(self, upload: Upload) -> tuple[bytes, bytes]:
        return (
            hashlib.sha256(_UPLOAD_MARK + upload.id.encode()).digest(),
            hashlib.sha256(_OWNER_MARK + upload.owner_hash).digest(),
        )

    def _mark(self, upload: Upload) -> None:
        """Tell the other instances that this upload and its browser were active."""
        if self._activity is None:
            return
        until = time.strftime(
            "%Y-%m-%d", time.gmtime(self._now() + self.policy.expire_seconds + DAY)
        )
        for key in self._marker_keys(upload):
            marker = secrets.token_bytes(16)
            self._activity.update(_ACTIVITY, key, _replace_with(marker), until_day=until)
            with self._lock:
                self._seen[key] = marker

    def _notice_activity_elsewhere(self, upload: Upload) -> None:
        if self._activity is None:
            return
        upload_key, owner_key = self._marker_keys(upload)
        for key, is_upload in ((upload_key, True), (owner_key, False)):
            marker = self._activity.get(_ACTIVITY, key)
            with self._lock:
                if marker is None or self._seen.get(key) == marker:
                    continue
                self._seen[key] = marker
                if is_upload:
                    self._active[upload.id] = self._now()
                else:
                    self._owner_active[upload.owner_hash] = self._now()

    def expires_at(self, upload: Upload) -> float:
        self._notice_activity_elsewhere(upload)
        with self._lock:
            # A row from before a restart starts a fresh time, in memory only.
            mine = self._active.setdefault(upload.id, self._now())
            browser = self._owner_active.get(upload.owner_hash, mine)
        if upload.received == 0 and browser <= mine:
            return mine + self.policy.empty_expire_seconds
        return max(mine, browser) + self.policy.expire_seconds

    def expired(self, upload: Upload) -> bool:
        return self._now() >= self.expires_at(upload) or self._stale_day(upload.active_on)

    def _stale_day(self, day: str) -> bool:
        """Older by date than any expiry allows: restarts cannot keep a row alive."""
        allowed = -(-self.policy.expire_seconds // DAY) + 1
        return day < time.strftime("%Y-%m-%d", time.gmtime(self._now() - allowed * DAY))

    def _touch(self, upload_id: str, owner_hash: bytes) -> None:
        with self._lock:
            now = self._now()
            self._active[upload_id] = now
            self._owner_active[owner_hash] = now

    @contextlib.contextmanager
    def hold(self, upload_ids: Sequence[str], *, patch: bool = False) -> Iterator[None]:
        """Exclusive use of these uploads for one request in this process; 423 if one
        is in use. ``patch``: for a PATCH (a store shared by several instances
        takes no lock across them then: its writer's ``save`` compares offsets)."""
        with self._lock:
            if self._busy.intersection(upload_ids):
                raise UploadError(423, "another request is using this upload")
            self._busy.update(upload_ids)
        try:
            yield
        finally:
            with self._lock:
                self._busy.difference_update(upload_ids)

    def _remove_unless_busy(self, upload_ids: Sequence[str]) -> int:
        removed = 0
        for upload_id in upload_ids:
            with contextlib.suppress(UploadError), self.hold([upload_id]):
                self._remove(upload_id)
                removed += 1
        return removed

    def sweep_if_due(self) -> int:
        with self._lock:
            now = self._now()
            if now - self._last_sweep < self.policy.sweep_interval:
                return 0
            self._last_sweep = now
        return self.sweep()


class UploadStore(ExpiringUploads):
    """The uploads in progress: files under ``root`` and rows in ``db``.

    ``now`` is the wall clock (expiry dates must survive restarts); tests pass
    their own. Methods do blocking I/O: call them from a worker thread.
    """

    def __init__(
        self,
        db: Database,
        root: Path,
        policy: UploadPolicy,
        now: Callable[[], float] = time.time,
        disk: DiskReserve | None = None,
        activity: protocols.EphemeralStore | None = None,
    ) -> None:
        super().__init__(policy, now, activity)
        self.db = db
        self.root = root
        self.disk = disk or DiskReserve(root.parent, policy.disk_reserve)

    # Set-up and paths

    def prepare(self) -> None:
        """Create the directory (0700) and the table; safe to run at every start."""
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.root.chmod(0o700)
        conn = sqlite3.connect(self.db.path, timeout=30, isolation_level=None)
        try:
            conn.execute("PRAGMA secure_delete = ON")
            columns = {r[1] for r in conn.execute("PRAGMA table_info(uploads)")}
            if "active_minute" in columns:
                _days_not_minutes(conn)
            conn.executescript(UPLOADS_SCHEMA)
        finally:
            conn.close()
            file_times.stamp_sqlite(self.db.path, now=self._now())
            self.stamp(self.root)

    def stamp(self, *targets: Path | int) -> None:
        """File times to midnight UTC of today, by this store's clock (store/file_times.py)."""
        file_times.stamp(*targets, now=self._now())

    def path(self, upload_id: str) -> Path:
        return self.root / (upload_id + PART_SUFFIX)

    @contextlib.contextmanager
    def append_to(self, upload: Upload) -> Iterator[FileWriter]:
        """A writer of one PATCH's bytes at the upload's offset (``FileWriter``).
        The file's time is stamped to the day when the block ends, however it
        ends: the writes set the mtime to now."""
        try:
            # Unbuffered: a write the disk refuses leaves nothing waiting in a buffer.
            with self.path(upload.id).open("r+b", buffering=0) as f:
                yield FileWriter(self, upload, f)
        finally:
            self.stamp(self.path(upload.id))

    # Creation, lookup, progress, deletion

    def create(self, owner_hash: bytes, length: int) -> Upload:
        if length > self.policy.max_length:
            raise UploadError(413, "longer than Tus-Max-Size")
        upload = Upload(new_id(), owner_hash, length, 0, self.day())
        counted = min(length, EMPTY_UPLOAD_BYTES)
        with self._lock, self.db.connect() as conn:
            count, mine = conn.execute(
                "SELECT count(*), coalesce(sum(length), 0) FROM uploads WHERE owner_hash = ?",
                (owner_hash,),
            ).fetchone()
            if count >= self.policy.max_open_per_owner:
                raise UploadError(429, "too many uploads open for this browser")
            if (
                mine + length > self.policy.max_bytes_per_owner
                or self._instance_total(conn) + counted > self.policy.max_bytes_total
                or not self.disk.room(counted)
            ):
                raise UploadError(507, "no room for this upload")
            conn.execute(
                "INSERT INTO uploads(id, owner_hash, length, received, active_on)"
                " VALUES (?, ?, ?, 0, ?)",
                (upload.id, owner_hash, length, upload.active_on),
            )
            # The file exists before the row is committed: a crash in
            # between leaves only an empty file that the start-up sweep removes.
            fd = os.open(self.path(upload.id), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            os.close(fd)
            _fsync_dir(self.root)
            self.stamp(self.path(upload.id), self.root)
            now = self._now()
            self._active[upload.id] = now
            self._owner_active.setdefault(owner_hash, now)
        return upload

    def _instance_total(self, conn: sqlite3.Connection) -> int:
        """What every upload counts against ``max_bytes_total``: what it received,
        or ``EMPTY_UPLOAD_BYTES`` (at most its length) while it received nothing."""
        total: int = conn.execute(
            "SELECT coalesce(sum(CASE WHEN received = 0 THEN min(length, ?) ELSE received END), 0)"
            " FROM uploads",
            (EMPTY_UPLOAD_BYTES,),
        ).fetchone()[0]
        return total

    @contextlib.contextmanager
    def receiving(self, upload: Upload, nbytes: int) -> Iterator[None]:
        """Room for ``nbytes`` more of ``upload`` while a PATCH is received: under the
        instance cap and above the disk reserve (claimed until the block ends); 507 if not."""
        with self.db.read() as conn:
            total = self._instance_total(conn)
        counted = upload.received or min(upload.length, EMPTY_UPLOAD_BYTES)
        if total - counted + upload.received + nbytes > self.policy.max_bytes_total:
            raise UploadError(507, "no room for this upload")
        try:
            with self.disk.claim(("upload", upload.id), nbytes):
                yield
        except NoRoom:
            raise UploadError(507, "no room for this upload") from None

    def get(self, upload_id: str, owner_hash: bytes | None) -> Upload:
        """The caller's upload; 404 if unknown or someone else's, 410 if it just expired."""
        if owner_hash is None or not _is_id(upload_id):
            raise UploadError(404)
        with self.db.read() as conn:
            row = conn.execute(
                "SELECT id, owner_hash, length, received, active_on FROM uploads WHERE id = ?",
                (upload_id,),
            ).fetchone()
        if row is None:
            raise UploadError(404)
        upload = Upload(*row)
        # Someone else's upload is indistinguishable from no upload at all.
        if not hmac.compare_digest(upload.owner_hash, owner_hash):
            raise UploadError(404)
        if self.expired(upload):
            with contextlib.suppress(UploadError), self.hold([upload_id]):
                self._remove(upload_id)
            raise UploadError(410)
        return upload

    def progress(self, upload_id: str, received: int) -> Upload:
        """Record fsynced bytes: the new offset, the day, and (in memory) the time."""
        with self.db.connect() as conn:
            conn.execute(
                "UPDATE uploads SET received = ?, active_on = ? WHERE id = ?",
                (received, self.day(), upload_id),
            )
            row = conn.execute(
                "SELECT id, owner_hash, length, received, active_on FROM uploads WHERE id = ?",
                (upload_id,),
            ).fetchone()
        if row is None:
            raise UploadError(404)
        upload = Upload(*row)
        self._touch(upload.id, upload.owner_hash)
        self._mark(upload)
        return upload

    def delete(self, upload_id: str) -> None:
        """Remove an upload the caller holds: its bytes first, then its row."""
        self._remove(upload_id)

    def _remove(self, upload_id: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path(upload_id).unlink()
        self.stamp(self.root)
        with self.db.connect() as conn:
            conn.execute("DELETE FROM uploads WHERE id = ?", (upload_id,))
        with self._lock:
            self._active.pop(upload_id, None)

    def forget_owner(self, owner_hash: bytes) -> int:
        """Delete every upload of one browser (logout, account deletion); returns how many.

        An upload a request is using at this moment is left to expire.
        """
        with self.db.connect() as conn:
            ids = [
                r[0]
                for r in conn.execute("SELECT id FROM uploads WHERE owner_hash = ?", (owner_hash,))
            ]
        return self._remove_unless_busy(ids)

    # Expiry

    def sweep(self, *, at_start: bool = False) -> int:
        """Delete expired uploads; at start-up also files without rows and rows without files.

        Returns how many uploads were removed. Uploads in use are left alone.
        """
        with self.db.connect() as conn:
            rows = conn.execute(
                "SELECT id, owner_hash, length, received, active_on FROM uploads"
            ).fetchall()
        uploads = [Upload(*r) for r in rows]
        known = {u.id for u in uploads}
        doomed = [u.id for u in uploads if self.expired(u)]
        with self._lock:  # browsers with no upload left need no activity time
            owners = {u.owner_hash for u in uploads if u.id not in doomed}
            for owner in [o for o in self._owner_active if o not in owners]:
                del self._owner_active[owner]
        if at_start:
            doomed += [r for r in known if not self.path(r).exists()]
        removed = self._remove_unless_busy(doomed)
        if at_start:
            for entry in self.root.iterdir():
                upload_id = entry.name.removesuffix(PART_SUFFIX)
                if upload_id not in known or upload_id in doomed:
                    with contextlib.suppress(FileNotFoundError):
                        entry.unlink()
            file_times.floor(self.root)  # listed, and perhaps changed
        return removed

    # Commit

    def _stored_size(self, upload: Upload) -> int:
        return self.path(upload.id).stat().st_size

    def _open_stored(self, upload: Upload) -> contextlib.AbstractContextManager[protocols.Readable]:
        return file_times.open_noatime(self.path(upload.id))

    def move_to_store(self, uploads: Sequence[Upload], store: protocols.ObjectStore) -> list[str]:
        """Rename each upload into the object store under its own id; fsync both dirs.

        On failure the ones already moved are removed again and OSError is raised.
        A rename needs both on files: another object store needs its own upload store.
        """
        if not isinstance(store, ObjectStore):
            return self._copy_to_store(uploads, store)
        moved: list[str] = []
        try:
            for upload in uploads:
                target = store.path(upload.id)
                if target.exists():  # 128 random bits: only a bug could get here
                    raise FileExistsError(upload.id)
                self.path(upload.id).rename(target)
                moved.append(upload.id)
            _fsync_dir(store.root)
            _fsync_dir(self.root)
        except OSError:
            for object_id in moved:
                store.delete(object_id)
            raise
        finally:
            self.stamp(store.root, self.root)
        return moved

    def take_back(self, upload_ids: Sequence[str], store: protocols.ObjectStore) -> int:
        """Uploads ``move_to_store`` moved but whose submission was not recorded
        (the record failed, or the server died in between): renamed back, their
        rows untouched, so the same commit can be sent again. Only an object the
        store holds and whose upload file is gone is moved; returns how many."""
        if not isinstance(store, ObjectStore):
            return self._drop_copies(upload_ids, store)
        back = 0
        try:
            for upload_id in upload_ids:
                if not _is_id(upload_id):  # not a row this server wrote: never a path
                    continue
                source, target = store.path(upload_id), self.path(upload_id)
                if source.exists() and not target.exists():
                    source.rename(target)
                    back += 1
            if back:
                _fsync_dir(self.root)
                _fsync_dir(store.root)
        finally:
            if back:  # else nothing changed: the directories keep their own day
                self.stamp(store.root, self.root)
        return back

    def _copy_to_store(self, uploads: Sequence[Upload], store: protocols.ObjectStore) -> list[str]:
        """Into another object store (a bucket: ``import_file``) no rename reaches:
        each upload is sent under its id, all or none; the upload files and rows
        stay until ``finish`` (so ``take_back`` only has to drop the copies)."""
        import_file = getattr(store, "import_file", None)
        if import_file is None:
            raise TypeError(f"{type(store).__name__} cannot receive finished uploads")
        sent: list[str] = []
        try:
            for upload in uploads:
                with file_times.open_noatime(self.path(upload.id)) as f:
                    import_file(upload.id, f)
                sent.append(upload.id)
        except BaseException:
            for object_id in sent:
                with contextlib.suppress(OSError):
                    store.delete(object_id)
            raise
        return sent

    def _drop_copies(self, upload_ids: Sequence[str], store: protocols.ObjectStore) -> int:
        """``take_back`` for a store the uploads were copied into: the copies of
        uploads whose files are still here are deleted from it."""
        back = 0
        for upload_id in upload_ids:
            if _is_id(upload_id) and self.path(upload_id).exists():
                store.delete(upload_id)
                back += 1
        return back

    def finish(self, upload_ids: Sequence[str]) -> None:
        """After the submission naming these uploads is recorded: what is left of
        them here (their files when they were copied into a bucket, their rows
        when the submission went to another database) is removed."""
        for upload_id in upload_ids:
            if _is_id(upload_id):
                self._remove(upload_id)

    def reclaim(self, store: protocols.ObjectStore, recorded: set[str]) -> int:
        """At start-up, before the object store's collection: take back what a
        commit moved before the server died and before its record was committed
        (an upload row whose file is in the store, not named by any record)."""
        with self.db.read() as conn:
            ids = [r[0] for r in conn.execute("SELECT id FROM uploads")]
        return self.take_back([i for i in ids if i not in recorded], store)


def _replace_with(marker: bytes) -> Callable[[bytes | None], bytes]:
    return lambda _old: marker


def _days_not_minutes(conn: sqlite3.Connection) -> None:
    """An ``uploads`` table from before days: the same rows, the minute cut to its
    day, and the old table dropped (``secure_delete`` zeroes its pages)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        # Empty here (the shared store's parts): made again with the new table.
        conn.execute("DROP TABLE IF EXISTS upload_parts")
        conn.execute("DROP INDEX IF EXISTS uploads_by_owner")
        conn.execute("ALTER TABLE uploads RENAME TO uploads_by_minute")
        for statement in UPLOADS_SCHEMA.split(";"):
            if statement.strip():
                conn.execute(statement)
        conn.execute(
            "INSERT INTO uploads(id, owner_hash, length, received, active_on)"
            " SELECT id, owner_hash, length, received,"
            " date(active_minute * 60, 'unixepoch') FROM uploads_by_minute"
        )
        conn.execute("DROP TABLE uploads_by_minute")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _is_id(value: str) -> bool:
    return len(value) == 32 and all(c in "0123456789abcdef" for c in value)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
