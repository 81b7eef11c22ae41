"""``lanterne-server backup`` and ``restore``: the whole instance as ONE envelope.

A backup is a tar stream, encrypted as it is written to the admin's Lanterne
public key (``envelope.Encryptor``): no plaintext tar ever touches a disk.
Its members, in this order::

    secrets.json, config.toml      instance secrets and settings
    objects/<32 hex>               each envelope file the database refers to
    lanterne.sqlite3               a consistent snapshot of the database
    lanterne-backup.json           the manifest: format, schema version, object sizes

The layout is the same whatever the backend. On PostgreSQL and S3
(``[database]``/``[objects]`` in config.toml) ``lanterne.sqlite3`` is a
logical dump of the PostgreSQL rows into an SQLite database of Lanterne's
schema, read in one ``REPEATABLE READ`` transaction
(server/store/postgres_dump.py), and the objects are streamed from the bucket
(ciphertext, a part at a time); the manifest's ``backend`` says where they
were read, for information. So a backup of either backend restores into either.

Consistent while the server runs: the database is copied first with SQLite's
online backup API (one read transaction, so one instant), into a temporary
file in a 0700 directory inside the data directory (it holds only what the
server holds anyway). Objects are immutable once renamed into place, so the
files the snapshot lists are read as they are; uploads finishing meanwhile are
not in the snapshot and are left out. An object deleted between the snapshot
and its read (a journalist deleting a source) is dropped from the snapshot
too, with the rows that referred to it, which is why the database goes last.

The backup is signed (issue 11, item 15): the envelope is followed by a
signature block and a fixed footer, in this versioned layout::

    envelope bytes (N)  |  signature block (JSON, B bytes)  |  footer (32 bytes)
    footer = SIGNATURE_MAGIC (28 bytes) || B (4 bytes, big-endian)
    block  = {"type": "lanterne-backup-signature/v1", "envelope_bytes": N,
              "signer": <the admin's public key>, "signature": <base64url>}

The signature is Ed25519 (PyNaCl), by the admin's signing key, over
``SIGNED_LABEL || N (8 bytes, big-endian) || SHA-512(envelope bytes)``. The
envelope is encrypted to the admin's *public* key, which anyone may hold:
without the signature, whoever can write where backups are kept could hand
the admin a backup of their own making (their journalist key, their config).

Restore verifies first, before anything is decrypted or staged: the footer,
the block, the signer against the expected admin key (the restoring
identity's own, or ``--admin-key``/``--admin-fingerprint``), then the digest
of the whole envelope and the signature. An unsigned backup, one signed by
another key, or one whose signature does not verify is refused with
``BackupSignatureError``. The envelope is hashed again as it is decrypted, and
the restore is put in place only if both digests agree (the file cannot be
swapped between the check and the use).

Restore into PostgreSQL and S3 happens when the restored config.toml (the
backup's, or the one given with ``--config``) names them: once secrets.json
and config.toml are read, the database must hold no Lanterne row and the bucket
no object, else the restore stops with nothing written. Objects then go
straight into the bucket as they are decrypted (the signature over the whole
file was verified before); if anything fails afterwards they are deleted
again. The rows go into PostgreSQL in one transaction, with the schema, once
everything authenticated and agreed; the data directory keeps an empty
SQLite database, as ``init`` makes it.

Restore decrypts as it reads and checks every member before writing it:
regular files only, names from the list above, each at most once, sizes
capped. Everything lands in a staging directory next to the target, which is
renamed into place only once the envelope authenticated to its last byte and
the manifest, the objects and the database agree; on any failure the staging
directory is removed, so a tampered or truncated backup restores nothing.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import json
import os
import re
import shutil
import tarfile
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import nacl.exceptions
import nacl.signing

import envelope
from server.ops.admin_identity import AdminSigner
from server.settings import (
    CONFIG_NAME,
    DATABASE_NAME,
    OBJECTS_DIR,
    SECRETS_NAME,
    ConfigError,
    Settings,
)
from server.store import file_times, snapshots, wiring
from server.store.db import SCHEMA_VERSION
from server.store.protocols import ObjectStore

BACKUP_TYPE = "lanterne-backup/v1"
MANIFEST_NAME = "lanterne-backup.json"
OBJECT_NAME = re.compile(r"objects/([0-9a-f]{32})")
READ_SIZE = 1 << 20
# Caps per member; an object is an envelope (at most 64 GiB of payload).
MAX_OBJECT_BYTES = (64 << 30) + (1 << 20)
MAX_DATABASE_BYTES = 16 << 30
MAX_SMALL_BYTES = 1 << 20  # secrets.json, config.toml
MAX_MANIFEST_BYTES = 256 << 20
MAX_MEMBERS = 10_000_000

SIGNATURE_TYPE = "lanterne-backup-signature/v1"
SIGNATURE_MAGIC = b"LANTERNE BACKUP SIGNATURE V1"  # 28 bytes; a new version, a new magic
SIGNED_LABEL = b"lanterne backup signature v1\x00"
FOOTER_SIZE = len(SIGNATURE_MAGIC) + 4
MAX_SIGNATURE_BLOCK = 64 * 1024


class BackupError(Exception):
    """A backup cannot be made or restored; the message says why."""


class BackupSignatureError(BackupError):
    """The backup is not signed by the expected admin key: unsigned, signed by
    another key, or its signature does not verify. Nothing was restored."""


@dataclass(frozen=True)
class ExpectedSigner:
    """Whose signature a restore accepts: an Ed25519 public key, or a key fingerprint."""

    signing_key: bytes | None = None
    fingerprint: str | None = None

    @classmethod
    def of(cls, key: envelope.PublicKey) -> ExpectedSigner:
        return cls(signing_key=key.signing_key, fingerprint=key.fingerprint)

    def matches(self, key: envelope.PublicKey) -> bool:
        if self.signing_key is not None:
            return key.signing_key == self.signing_key
        if self.fingerprint is not None:
            return _digits(key.fingerprint) == _digits(self.fingerprint)
        return False


def _digits(fingerprint: str) -> str:
    return "".join(c for c in fingerprint if not c.isspace())


def _signed_message(length: int, digest: bytes) -> bytes:
    return SIGNED_LABEL + length.to_bytes(8, "big") + digest


def _signature_trailer(length: int, digest: bytes, signer: AdminSigner) -> bytes:
    """The signature block and footer that follow ``length`` envelope bytes."""
    signature = signer.signing.sign(_signed_message(length, digest)).signature
    block = json.dumps(
        {
            "type": SIGNATURE_TYPE,
            "envelope_bytes": length,
            "signer": json.loads(signer.public.to_json()),
            "signature": base64.urlsafe_b64encode(signature).decode("ascii"),
        },
        sort_keys=True,
    ).encode()
    return block + SIGNATURE_MAGIC + len(block).to_bytes(4, "big")


def _append_signature(path: Path, signer: AdminSigner) -> None:
    """Sign an envelope file already written (tests build hostile backups with it)."""
    with path.open("r+b") as f:
        digest, length = hashlib.sha512(), 0
        while block := f.read(READ_SIZE):
            digest.update(block)
            length += len(block)
        f.write(_signature_trailer(length, digest.digest(), signer))


@dataclass(frozen=True)
class BackupReport:
    objects: int
    bytes: int
    dropped: int  # objects deleted while the backup ran, left out with their rows


@dataclass(frozen=True)
class RestoreReport:
    objects: int
    schema_version: int


# --- backup ----------------------------------------------------------------------


class _EncryptingSink:
    """A write-only file object for tarfile: plaintext in, envelope chunks out
    (hashed as they go, for the signature)."""

    def __init__(self, out: BinaryIO, recipients: list[envelope.Recipient]) -> None:
        self._out = out
        self._enc = envelope.Encryptor(recipients)
        self.digest = hashlib.sha512()
        self.written = 0
        self._emit(self._enc.header)

    def _emit(self, chunk: bytes | memoryview) -> None:
        self._out.write(chunk)
        self.digest.update(chunk)
        self.written += len(chunk)

    def write(self, data: bytes) -> int:
        for chunk in self._enc.update_views(data):
            self._emit(chunk)
        return len(data)

    def finish(self) -> None:
        for chunk in self._enc.finish():
            self._emit(chunk)


def _tarinfo(name: str, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mode = 0o600
    # No owner names and no times (0 is a midnight, 1970-01-01): precise file
    # times would say when each submission arrived, where the database keeps days.
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def _add_file(tar: tarfile.TarFile, name: str, path: Path) -> int:
    with file_times.open_noatime(path) as f:
        size = os.fstat(f.fileno()).st_size
        tar.addfile(_tarinfo(name, size), f)
    return size


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    import io

    tar.addfile(_tarinfo(name, len(data)), io.BytesIO(data))


def _add_object(tar: tarfile.TarFile, name: str, store: ObjectStore, object_id: str) -> int:
    """One object of the bucket, streamed into the archive; FileNotFoundError if gone."""
    size = store.size(object_id)
    with store.open(object_id) as f:
        tar.addfile(_tarinfo(name, size), f)
    return size


def backup(
    data_dir: Path, to: Path, recipient: envelope.PublicKey, signer: AdminSigner
) -> BackupReport:
    """Write the backup of the instance in ``data_dir`` to ``to``: encrypted to
    ``recipient``, signed by ``signer``. Its rows and objects are read where its
    config.toml puts them: SQLite and files, or PostgreSQL and the bucket."""
    try:
        settings = Settings.load(data_dir)
    except ConfigError as exc:
        raise BackupError(str(exc)) from exc
    db_path = data_dir / DATABASE_NAME
    pg = wiring.postgres_database(settings)
    if not (data_dir / SECRETS_NAME).exists() or (pg is None and not db_path.exists()):
        raise BackupError(f"{data_dir} is not a Lanterne instance")
    bucket = wiring.object_store(settings) if settings.objects is not None else None
    objects_dir = data_dir / OBJECTS_DIR
    tmp = Path(tempfile.mkdtemp(dir=data_dir, prefix=".backup-"))  # 0700
    try:
        snap = tmp / DATABASE_NAME
        if pg is None:
            snapshots.snapshot(db_path, snap)
        else:
            from server.store.postgres_dump import DumpError, dump_to_sqlite

            try:
                dump_to_sqlite(pg, snap)  # one instant, as the SQLite snapshot
            except DumpError as exc:
                raise BackupError(str(exc)) from exc
        version, wanted = snapshots.schema_and_objects(snap)
        sizes: dict[str, int] = {}
        missing: list[str] = []
        with envelope.atomic_output(to) as out:
            sink = _EncryptingSink(out, [recipient.recipient])
            with tarfile.open(fileobj=sink, mode="w|", format=tarfile.PAX_FORMAT) as tar:  # type: ignore[call-overload]
                for name in (SECRETS_NAME, CONFIG_NAME):
                    if (data_dir / name).exists():
                        _add_file(tar, name, data_dir / name)
                for object_id in wanted:
                    member = f"{OBJECTS_DIR}/{object_id}"
                    try:
                        if bucket is None:
                            sizes[object_id] = _add_file(tar, member, objects_dir / object_id)
                        else:
                            sizes[object_id] = _add_object(tar, member, bucket, object_id)
                    except FileNotFoundError:
                        missing.append(object_id)
                if missing:
                    kept = set(snapshots.drop_missing(snap, missing))
                    sizes = {k: v for k, v in sizes.items() if k in kept}
                _add_file(tar, DATABASE_NAME, snap)
                manifest = {
                    "type": BACKUP_TYPE,
                    "schema_version": version,
                    "objects": sizes,
                    # Where they were read: information only, the layout is the same.
                    "backend": {
                        "rows": "sqlite" if pg is None else "postgresql",
                        "objects": "files" if bucket is None else "bucket",
                    },
                }
                _add_bytes(tar, MANIFEST_NAME, json.dumps(manifest, sort_keys=True).encode())
            sink.finish()
            out.write(_signature_trailer(sink.written, sink.digest.digest(), signer))
    except snapshots.DatabaseError as exc:
        raise BackupError(f"cannot copy the database: {exc}") from exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        # The snapshot read the database (its -shm too) and came and went in the
        # data directory; the backup file itself says the day only, like its members.
        if db_path.exists():
            file_times.stamp_sqlite(db_path)
        file_times.stamp(data_dir)
        if to.exists():
            file_times.stamp(to)
    return BackupReport(objects=len(sizes), bytes=sink.written, dropped=len(missing))


# --- restore -----------------------------------------------------------------------


class _DecryptingSource:
    """A read-only file object for tarfile: envelope in, verified plaintext out.

    The last chunk is only authenticated at the end of the input, so the
    caller must call ``drain`` after tarfile is done and before trusting anything.
    """

    def __init__(self, src: _HashingReader, identities: Sequence[envelope.Identity]) -> None:
        self._src = src
        self._dec = envelope.Decryptor(identities)
        self._pieces: Iterator[bytes] = iter(())
        self._buf = b""
        self._done = False

    def _more(self) -> bool:
        while True:
            piece = next(self._pieces, None)
            if piece is not None:
                self._buf += piece
                return True
            if self._done:
                return False
            data = self._src.read(READ_SIZE)
            if data:
                self._pieces = self._dec.update(data)
            else:
                self._done = True
                self._pieces = self._dec.finish()

    def read(self, n: int = -1) -> bytes:
        while (n < 0 or len(self._buf) < n) and self._more():
            pass
        if n < 0:
            out, self._buf = self._buf, b""
        else:
            out, self._buf = self._buf[:n], self._buf[n:]
        return out

    def drain(self) -> None:
        """Read to the end (authenticating it); only zero padding may follow the tar."""
        while True:
            rest = self.read(READ_SIZE)
            if not rest:
                return
            if rest.strip(b"\0"):
                raise BackupError("the backup has data after the end of its archive")


def _member_cap(name: str) -> int:
    if OBJECT_NAME.fullmatch(name):
        return MAX_OBJECT_BYTES
    caps = {
        SECRETS_NAME: MAX_SMALL_BYTES,
        CONFIG_NAME: MAX_SMALL_BYTES,
        DATABASE_NAME: MAX_DATABASE_BYTES,
        MANIFEST_NAME: MAX_MANIFEST_BYTES,
    }
    if name not in caps:
        raise BackupError(f"unexpected member {name[:100]!r} in the backup")
    return caps[name]


def _extract(tar: tarfile.TarFile, member: tarfile.TarInfo, dest: Path) -> None:
    src = tar.extractfile(member)
    assert src is not None  # a regular file, checked by the caller
    # O_EXCL and O_NOFOLLOW: never through a link, never over a file written before.
    fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "wb") as out:
        left = member.size
        while left:
            block = src.read(min(READ_SIZE, left))
            if not block:
                raise BackupError(f"{member.name} is cut short")
            out.write(block)
            left -= len(block)
        out.flush()
        os.fsync(out.fileno())


class _Target:
    """Where a restore puts what it unpacks: the staging directory, or, when the
    restored config.toml names them, the PostgreSQL database and the bucket.

    Resolved once the archive's secrets.json and config.toml are in (they come
    first), before the first object: both must then be empty, or the restore
    stops with nothing written. Objects sent to the bucket are listed, so that
    a restore that fails after them deletes them again (``undo``).
    """

    def __init__(self, staging: Path, config: bytes | None) -> None:
        self.staging = staging
        self.config = config  # given by the admin: written first, the archive's skipped
        self.bucket: Any = None  # S3ObjectStore when [objects] names one
        self.pg: Any = None  # PostgresDatabase when [database] names one
        self.sent: list[str] = []
        self._resolved = False
        if config is not None:
            _write_new(staging / CONFIG_NAME, config)

    def resolve(self) -> None:
        if self._resolved:
            return
        self._resolved = True
        try:
            settings = Settings.load(self.staging)
        except ConfigError as exc:
            raise BackupError(f"the restored config.toml: {exc}") from exc
        if settings.database is not None:
            from server.store.postgres_dump import is_empty

            self.pg = wiring.postgres_database(settings)
            if not is_empty(self.pg):
                raise BackupError(
                    "the database config.toml names already holds Lanterne rows:"
                    " restore into an empty one"
                )
        if settings.objects is not None:
            self.bucket = wiring.object_store(settings)
            if self.bucket.ids():
                raise BackupError(
                    f"the bucket {settings.objects.bucket} is not empty: restore into an empty one"
                )

    def put(self, tar: tarfile.TarFile, member: tarfile.TarInfo, object_id: str) -> None:
        self.resolve()
        if self.bucket is None:
            _extract(tar, member, self.staging / member.name)
            return
        src = tar.extractfile(member)
        assert src is not None  # a regular file, checked by the caller
        pending = self.bucket.new_object(object_id)
        try:
            left = member.size
            while left:
                block = src.read(min(READ_SIZE, left))
                if not block:
                    raise BackupError(f"{member.name} is cut short")
                pending.write(block)
                left -= len(block)
            pending.commit()
        except BaseException:
            pending.abort()
            raise
        self.sent.append(object_id)

    def undo(self) -> None:
        for object_id in self.sent:
            with contextlib.suppress(Exception):
                self.bucket.delete(object_id)


def _write_new(dest: Path, data: bytes) -> None:
    fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)


def _unpack(source: _DecryptingSource, staging: Path, target: _Target) -> dict[str, int]:
    """Members into ``staging`` (objects where ``target`` says); name -> size."""
    written: dict[str, int] = {}
    with tarfile.open(fileobj=source, mode="r|") as tar:  # type: ignore[call-overload]
        for count, member in enumerate(tar):
            if count >= MAX_MEMBERS:
                raise BackupError("the backup has too many members")
            name = member.name
            if not member.isreg():
                raise BackupError(f"{name[:100]!r} is not a regular file (links are refused)")
            if member.size > _member_cap(name):
                raise BackupError(f"{name} is larger than a backup member may be")
            if name in written:
                raise BackupError(f"{name} appears twice in the backup")
            found = OBJECT_NAME.fullmatch(name)
            if found:
                target.put(tar, member, found.group(1))
            elif name == CONFIG_NAME and target.config is not None:
                pass  # the admin's config.toml replaces the archive's
            else:
                if name != SECRETS_NAME and name != CONFIG_NAME:
                    target.resolve()  # before the database is staged
                _extract(tar, member, staging / name)
            written[name] = member.size
    source.drain()
    target.resolve()
    return written


def _validate(staging: Path, written: dict[str, int]) -> int:
    for required in (MANIFEST_NAME, DATABASE_NAME, SECRETS_NAME):
        if required not in written:
            raise BackupError(f"the backup has no {required}")
    try:
        manifest = json.loads((staging / MANIFEST_NAME).read_bytes())
        if manifest.get("type") != BACKUP_TYPE:
            raise ValueError("unknown type")
        objects = {str(k): int(v) for k, v in manifest["objects"].items()}
        version = int(manifest["schema_version"])
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise BackupError(f"the backup's manifest is not a {BACKUP_TYPE} manifest") from exc
    if version > SCHEMA_VERSION:
        raise BackupError(
            f"the backup is of schema version {version}, newer than this release"
            f" ({SCHEMA_VERSION}): restore it with the newer Lanterne"
        )
    present = {
        m.group(1): size for name, size in written.items() if (m := OBJECT_NAME.fullmatch(name))
    }
    if present != objects:
        raise BackupError("the backup's objects do not match its manifest")
    try:
        referenced = snapshots.checked_objects(staging / DATABASE_NAME)
    except snapshots.DatabaseError as exc:
        raise BackupError(f"the backup's database cannot be read: {exc}") from exc
    if referenced is None:
        raise BackupError("the backup's database is damaged")
    if referenced != set(objects):
        raise BackupError("the backup's database and objects do not match")
    return len(objects)


class _HashingReader:
    """The first ``length`` bytes of ``src``, hashed as they are read."""

    def __init__(self, src: BinaryIO, length: int) -> None:
        self._src = src
        self._left = length
        self.digest = hashlib.sha512()

    def read(self, n: int = -1) -> bytes:
        want = self._left if n < 0 else min(n, self._left)
        data = self._src.read(want) if want else b""
        self._left -= len(data)
        self.digest.update(data)
        return data


_UNSIGNED = (
    "the backup is not signed, so nothing says the admin made it: refused, nothing was"
    " restored. Backups made before Lanterne signed them are refused too: take a new"
    " one with `lanterne-server backup --signing-key`"
)


def verify_signature(src: BinaryIO, expected: ExpectedSigner) -> tuple[int, bytes]:
    """Check that ``src`` is a backup signed by ``expected``, reading it whole.

    Returns the length and SHA-512 of its envelope; raises BackupSignatureError.
    """
    size = os.fstat(src.fileno()).st_size
    src.seek(max(0, size - FOOTER_SIZE))
    footer = src.read(FOOTER_SIZE)
    if len(footer) < FOOTER_SIZE or not footer.startswith(SIGNATURE_MAGIC):
        raise BackupSignatureError(_UNSIGNED)
    block_size = int.from_bytes(footer[-4:], "big")
    damaged = "the backup's signature block is damaged: refused, nothing was restored"
    if block_size > min(MAX_SIGNATURE_BLOCK, size - FOOTER_SIZE):
        raise BackupSignatureError(damaged)
    length = size - FOOTER_SIZE - block_size
    src.seek(length)
    try:
        doc = json.loads(src.read(block_size))
        if doc["type"] != SIGNATURE_TYPE or doc["envelope_bytes"] != length:
            raise ValueError("not this backup's signature")
        signer = envelope.PublicKey.from_json(json.dumps(doc["signer"]))
        signature = base64.urlsafe_b64decode(str(doc["signature"]))
    except (ValueError, KeyError, TypeError, binascii.Error, envelope.KeyFormatError) as exc:
        raise BackupSignatureError(damaged) from exc
    if not expected.matches(signer):
        raise BackupSignatureError(
            f"the backup is signed by the key {signer.fingerprint}, not by the expected admin"
            f" key{f' ({expected.fingerprint})' if expected.fingerprint else ''}:"
            " refused, nothing was restored"
        )
    src.seek(0)
    reader = _HashingReader(src, length)
    while reader.read(READ_SIZE):
        pass
    digest = reader.digest.digest()
    try:
        nacl.signing.VerifyKey(signer.signing_key).verify(
            _signed_message(length, digest), signature
        )
    except (nacl.exceptions.BadSignatureError, ValueError) as exc:
        raise BackupSignatureError(
            "the backup's signature does not verify: it was altered after it was signed."
            " Refused, nothing was restored"
        ) from exc
    return length, digest


def restore(
    backup_path: Path,
    data_dir: Path,
    identities: Sequence[envelope.Identity],
    expected: ExpectedSigner,
    owner: tuple[int, int] | None = None,
    config: bytes | None = None,
) -> RestoreReport:
    """Restore into ``data_dir``, which must be absent or empty; all or nothing.

    The signature is checked against ``expected`` before anything is decrypted
    or written. ``owner``: (uid, gid) for every restored file (root restoring
    for the service user). ``config``: a config.toml to restore instead of the
    backup's (another database or bucket). When the restored config.toml names
    ``[database]`` or ``[objects]``, the rows go into that database and the
    objects into that bucket, which must both be empty.
    """
    if data_dir.exists() and (not data_dir.is_dir() or any(data_dir.iterdir())):
        raise BackupError(f"{data_dir} is not empty: restore into a new directory")
    try:
        src = backup_path.open("rb")
    except OSError as exc:
        raise BackupError(f"cannot read {backup_path}: {exc.strerror}") from exc
    with src:
        try:
            length, digest = verify_signature(src, expected)
        except OSError as exc:
            raise BackupError(f"cannot read {backup_path}: {exc.strerror}") from exc
        return _restore_verified(
            src, length, digest, backup_path, data_dir, identities, owner, config
        )


def _restore_verified(
    src: BinaryIO,
    length: int,
    digest: bytes,
    backup_path: Path,
    data_dir: Path,
    identities: Sequence[envelope.Identity],
    owner: tuple[int, int] | None,
    config: bytes | None,
) -> RestoreReport:
    parent = data_dir.resolve().parent
    parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=parent, prefix=f".{data_dir.name}.restoring-"))
    target: _Target | None = None
    try:
        (staging / OBJECTS_DIR).mkdir(mode=0o700)
        target = _Target(staging, config)
        try:
            src.seek(0)
            reader = _HashingReader(src, length)
            written = _unpack(_DecryptingSource(reader, identities), staging, target)
        except OSError as exc:
            raise BackupError(f"cannot read {backup_path}: {exc.strerror}") from exc
        except envelope.NoMatchingKeyError as exc:
            raise BackupError("this backup is not encrypted to that identity") from exc
        except envelope.EnvelopeError as exc:
            raise BackupError(f"the backup is damaged or was altered ({exc})") from exc
        except tarfile.TarError as exc:
            raise BackupError(f"the backup's archive is malformed ({exc})") from exc
        if reader.digest.digest() != digest:
            raise BackupSignatureError(
                "the backup file changed while it was restored: refused, nothing was restored"
            )
        count = _validate(staging, written)
        from server.store.migrations import prepare  # upgrade a backup from an older release

        prepare(staging / DATABASE_NAME)
        if target.pg is not None:
            from server.store.postgres_dump import DumpError, load_from_sqlite

            try:
                load_from_sqlite(target.pg, staging / DATABASE_NAME)  # one transaction
            except DumpError as exc:
                raise BackupError(str(exc)) from exc
            # The rows live in PostgreSQL: the data directory keeps an empty
            # database, as `init` makes it (uploads in progress).
            for leftover in staging.glob(f"{DATABASE_NAME}*"):
                leftover.unlink()
            prepare(staging / DATABASE_NAME)
        for path in (staging, *staging.rglob("*")):
            path.chmod(0o700 if path.is_dir() else 0o600)
            if owner is not None:
                os.chown(path, *owner)
        file_times.stamp(*staging.rglob("*"), staging)  # restored files say the day only
        with contextlib.suppress(FileNotFoundError):
            data_dir.rmdir()  # empty, checked above
        staging.rename(data_dir)
    except BaseException:
        if target is not None:
            target.undo()
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return RestoreReport(objects=count, schema_version=SCHEMA_VERSION)
