"""The object store on an S3-compatible server: envelope objects named by random ids.

The second implementation of the object store (the first keeps files in the
data directory), for several instances sharing one bucket (issue 14 §2). It
speaks the S3 protocol through boto3 and nothing else, so it is meant for any
server of that protocol: MinIO, Garage, Ceph RGW, AWS S3 (the tests run it
against moto's standalone server, over HTTP, as an ordinary peer).

Invariants, the same as the files store's:

- **Whole or nothing.** An object is a single ``PutObject`` or a multipart
  upload, and S3 makes either visible only when it completes
  (``CompleteMultipartUpload``): a reader never sees half an object. ``abort``
  (or any error in ``commit``) aborts the multipart upload, so its parts go
  with it. Uploads an instance left behind by dying are aborted by
  ``collect_garbage`` (``ListMultipartUploads``).
- **Ids only.** An object's key is its 128-bit random id, with no prefix, and
  nothing else is sent about it: no user metadata, no tags, the content type
  always ``application/octet-stream``. The bucket is the store's alone.
- **Ciphertext only.** What is written here is what the files store writes:
  envelope ciphertext (headers and sealed chunks). No plaintext passes through
  this module.

Memory. S3 wants every part of a multipart upload but the last to be at least
5 MiB, and its length before its first byte, while the project's target is
under 1 MiB of memory per no-JavaScript upload in flight (docs/BENCHMARKS.md).
So a part is staged on local disk, not in memory: each pending object has one
*spool* file of at most ``part_size`` bytes of ciphertext, written without a
Python buffer and sent as one ``UploadPart`` when full (then emptied), or as the
whole object in one ``PutObject`` if the object ends before filling a part. The
spool file is an unnamed temporary file (``O_TMPFILE`` where the file system
has it, else created and unlinked at once): it has no name in any directory,
and the kernel frees it if the process dies, so there is nothing to collect.
It holds exactly what the files store would hold in its ``.part`` file.

Time. S3 servers record their own modification times (to the second) for
objects and uploads; Lanterne cannot lower them (docs/THREAT_MODEL.md). This
module only reads them, to leave alone what another instance is still writing:
``collect_garbage`` removes unlisted objects and unfinished uploads only once
they are older than ``grace`` (a day by default), because with several
instances an object may be complete before the database row that lists it.

Every call blocks: callers run it off the event loop, like file writes.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import tempfile
from collections.abc import Callable, Iterator, Set
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Literal, cast

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from server.store import file_times
from server.store.protocols import Readable, StoreFull, StoreUnavailable, new_id

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from server.store.protocols import ObjectStore

_ID = re.compile(r"[0-9a-f]{32}")
MIN_PART_SIZE = 5 * 1024 * 1024  # S3: every part but the last
PART_SIZE = 8 * 1024 * 1024
READ_SIZE = 64 * 1024  # the most of a part read at once to sign and send it
CONTENT_TYPE = "application/octet-stream"
_MISSING = {"NoSuchKey", "404", "NotFound"}
_FULL = {"XMinioStorageFull", "QuotaExceeded", "InsufficientStorage"}
_BUSY = {"SlowDown", "ServiceUnavailable", "RequestTimeout", "InternalError"}


@dataclass(frozen=True)
class S3Location:
    """Where the objects are: ``[objects]`` in config.toml, credentials from the environment."""

    endpoint: str
    bucket: str
    access_key_id: str
    secret_access_key: str = field(repr=False)  # never in a log line or traceback
    region: str = "us-east-1"
    addressing: Literal["path", "virtual"] = "path"  # path suits MinIO, Garage, Ceph; AWS both


def connect(location: S3Location, *, max_connections: int = 64) -> S3Client:
    """A boto3 client for ``location`` and nothing found elsewhere on the machine.

    Credentials, region and endpoint are given, and the session reads no AWS
    profile, config or credentials file (``AWS_PROFILE``, ``~/.aws``) and no
    endpoint from the environment: what another program set up on the machine
    can neither redirect the ciphertext nor break the store (a missing
    ``AWS_PROFILE`` would). With credentials given, no instance-metadata
    service is asked. ``AWS_CA_BUNDLE`` and proxies still apply, as for any
    client. Checksums are sent only where S3 requires them: several
    S3-compatible servers refuse the newer streaming checksums, and every
    object is an envelope whose AEAD already detects any change when a
    journalist decrypts it.
    """
    import boto3
    import botocore.session

    isolated = botocore.session.Session(
        session_vars={
            "profile": (None, None, None, None),
            "config_file": (None, None, os.devnull, None),
            "credentials_file": (None, None, os.devnull, None),
        }
    )
    config = Config(
        region_name=location.region,
        signature_version="s3v4",
        s3={"addressing_style": location.addressing},
        retries={"mode": "standard", "max_attempts": 3},
        connect_timeout=10,
        read_timeout=60,
        max_pool_connections=max_connections,
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        ignore_configured_endpoint_urls=True,  # type: ignore[call-arg]  # not in the stubs yet
    )
    client: S3Client = boto3.session.Session(botocore_session=isolated).client(
        "s3",
        endpoint_url=location.endpoint,
        region_name=location.region,
        aws_access_key_id=location.access_key_id,
        aws_secret_access_key=location.secret_access_key,
        config=config,
    )
    return client


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


@contextlib.contextmanager
def _reachable() -> Iterator[None]:
    """The S3 server out of reach or failing is ``StoreUnavailable`` (503), out
    of room ``StoreFull`` (507); its other answers pass unchanged."""
    try:
        yield
    except BotoCoreError as exc:  # refused, timed out, cut off (after boto3's retries)
        raise StoreUnavailable("the object store") from exc
    except ClientError as exc:
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
        if status == 507 or _code(exc) in _FULL:
            raise StoreFull("the object store") from exc
        if status >= 500 or _code(exc) in _BUSY:
            raise StoreUnavailable("the object store") from exc
        raise


def _check_id(object_id: str) -> str:
    if not _ID.fullmatch(object_id):
        raise ValueError("not an object id")
    return object_id


class _Upload:
    """One object going up: a single ``PutObject``, or a multipart upload begun
    at its first full part. Nothing is visible until ``finish`` succeeds."""

    def __init__(self, client: S3Client, bucket: str, key: str) -> None:
        self._client = client
        self._bucket = bucket
        self.key = key
        self._upload_id: str | None = None
        self._parts: list[dict[str, Any]] = []

    def part(self, f: BinaryIO, start: int, length: int) -> None:
        """Send ``length`` bytes of ``f`` from ``start`` as the next part (at least 5 MiB)."""
        with _reachable():
            self._send(f, start, length)

    def _send(self, f: BinaryIO, start: int, length: int) -> None:
        if self._upload_id is None:
            started = self._client.create_multipart_upload(
                Bucket=self._bucket, Key=self.key, ContentType=CONTENT_TYPE
            )
            self._upload_id = started["UploadId"]
        number = len(self._parts) + 1
        sent = self._client.upload_part(
            Bucket=self._bucket,
            Key=self.key,
            UploadId=self._upload_id,
            PartNumber=number,
            Body=_body(f, start, length),
            ContentLength=length,
        )
        self._parts.append({"PartNumber": number, "ETag": sent["ETag"]})

    def finish(self, f: BinaryIO, start: int, length: int) -> None:
        """The last ``length`` bytes (perhaps none), and the object appears; on any
        error the multipart upload is aborted and the error raised."""
        with _reachable():
            self._finish(f, start, length)

    def _finish(self, f: BinaryIO, start: int, length: int) -> None:
        try:
            if self._upload_id is None:
                self._client.put_object(
                    Bucket=self._bucket,
                    Key=self.key,
                    Body=_body(f, start, length),
                    ContentLength=length,
                    ContentType=CONTENT_TYPE,
                )
                return
            if length:
                self._send(f, start, length)
            self._client.complete_multipart_upload(
                Bucket=self._bucket,
                Key=self.key,
                UploadId=self._upload_id,
                MultipartUpload={"Parts": self._parts},  # type: ignore[typeddict-item]
            )
            self._upload_id = None
        except BaseException:
            self.abort()
            raise

    def abort(self) -> None:
        if self._upload_id is not None:
            upload_id, self._upload_id = self._upload_id, None
            # If this fails too, collect_garbage aborts the upload later.
            with contextlib.suppress(ClientError, BotoCoreError):
                self._client.abort_multipart_upload(
                    Bucket=self._bucket, Key=self.key, UploadId=upload_id
                )


class S3PendingObject:
    """An object being written; ``commit`` makes it appear, ``abort`` removes it.

    Ciphertext collects in the spool file; each full part goes to S3 at once,
    and the file is emptied, so it only ever holds the part being filled.
    """

    def __init__(self, store: S3ObjectStore, object_id: str | None = None) -> None:
        self.id = new_id() if object_id is None else _check_id(object_id)
        self.size = 0
        self._part_size = store.part_size
        self._upload = _Upload(store.client, store.bucket, self.id)
        self._spool: BinaryIO | None = store.new_spool()
        self._in_spool = 0

    def write(self, data: bytes | memoryview) -> None:
        assert self._spool is not None
        view = memoryview(data)
        while view:
            taken = view[: self._part_size - self._in_spool]
            _write_all(self._spool, taken)
            self._in_spool += len(taken)
            self.size += len(taken)
            view = view[len(taken) :]
            if self._in_spool == self._part_size:
                self._upload.part(self._spool, 0, self._in_spool)
                self._spool.seek(0)
                self._spool.truncate()
                self._in_spool = 0

    def commit(self) -> None:
        if self._spool is None:
            return
        try:
            self._upload.finish(self._spool, 0, self._in_spool)
        finally:
            self._close_spool()

    def abort(self) -> None:
        self._close_spool()
        self._upload.abort()

    def _close_spool(self) -> None:
        if self._spool is not None:
            self._spool.close()  # unnamed: closing frees it
            self._spool = None


def _write_all(f: BinaryIO, data: memoryview) -> None:
    while data:  # an unbuffered file may take less than it is given
        data = data[f.write(data) :]


def _body(f: BinaryIO, start: int, length: int) -> BinaryIO:
    return cast(BinaryIO, _Slice(f, start, length))  # what boto3 uses of a file, it has


class _Slice(io.RawIOBase):
    """``length`` bytes of ``f`` from ``start``, read at most ``READ_SIZE`` at a time.

    boto3 reads a body twice (to sign it over plain HTTP, then to send it) and
    asks for a MiB at a time to sign; with many uploads in flight these blocks
    add up, and freed they stay in the allocator's per-thread arenas. Short
    reads are allowed of any file object, and boto3 loops until the end.
    ``pread`` leaves the file's own position alone.
    """

    def __init__(self, f: BinaryIO, start: int, length: int) -> None:
        self._fd = f.fileno()
        self._start = start
        self._length = length
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._length}[whence]
        self._pos = min(max(base + offset, 0), self._length)
        return self._pos

    def read(self, size: int | None = -1, /) -> bytes:
        left = self._length - self._pos
        n = min(READ_SIZE, left if size is None or size < 0 else size, left)
        if n <= 0:
            return b""
        data = os.pread(self._fd, n, self._start + self._pos)
        self._pos += len(data)
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


class S3ObjectStore:
    """Envelope objects in one bucket that belongs to Lanterne alone."""

    def __init__(
        self,
        client: S3Client,
        bucket: str,
        spool_dir: Path,
        *,
        part_size: int = PART_SIZE,
        grace: timedelta = timedelta(days=1),
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        if part_size < MIN_PART_SIZE:
            raise ValueError(f"S3 parts are at least {MIN_PART_SIZE} bytes")
        self.client = client
        self.bucket = bucket
        self.spool_dir = spool_dir
        self.part_size = part_size
        self.grace = grace
        self._now = now

    def create_dirs(self) -> None:
        """The local spool directory (the bucket is the administrator's to create)."""
        self.spool_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        file_times.stamp(self.spool_dir, self.spool_dir.parent)

    def new_spool(self) -> BinaryIO:
        """An unnamed temporary file for one part of ciphertext, with no Python buffer."""
        f = tempfile.TemporaryFile(mode="w+b", buffering=0, dir=self.spool_dir)  # noqa: SIM115
        file_times.stamp(self.spool_dir)  # moved only where O_TMPFILE is missing
        return f

    def local_bytes(self, nbytes: int) -> int:
        """One part at most: the spool file holds a part until it is sent."""
        return min(nbytes, self.part_size)

    def new_object(self, object_id: str | None = None) -> S3PendingObject:
        """A new object; ``object_id`` names it (a restore), else a new random id."""
        return S3PendingObject(self, object_id)

    def write_bytes(self, data: bytes) -> str:
        obj = self.new_object()
        try:
            obj.write(data)
            obj.commit()
        except BaseException:
            obj.abort()
            raise
        return obj.id

    def import_file(self, object_id: str, f: BinaryIO) -> None:
        """The local file ``f`` (ciphertext: a finished resumable upload) becomes the
        object ``object_id``, whole or not at all; parts are read straight from it."""
        upload = _Upload(self.client, self.bucket, _check_id(object_id))
        size = os.fstat(f.fileno()).st_size
        last = max(0, (size - 1) // self.part_size * self.part_size)
        try:
            for start in range(0, last, self.part_size):
                upload.part(f, start, self.part_size)
        except BaseException:
            upload.abort()
            raise
        upload.finish(f, last, size - last)

    # Resumable uploads shared by several instances (server/store/shared_uploads.py):
    # the parts of one multipart upload are sent by whichever instance receives
    # them, and a small staging object holds what is not yet a part.

    def start_multipart(self, object_id: str) -> str:
        """A multipart upload to the key ``object_id``; its UploadId."""
        with _reachable():
            started = self.client.create_multipart_upload(
                Bucket=self.bucket, Key=_check_id(object_id), ContentType=CONTENT_TYPE
            )
        return started["UploadId"]

    def send_part(
        self, object_id: str, upload_id: str, number: int, f: BinaryIO, length: int
    ) -> str:
        """The first ``length`` bytes of ``f`` as part ``number``; its ETag."""
        with _reachable():
            sent = self.client.upload_part(
                Bucket=self.bucket,
                Key=_check_id(object_id),
                UploadId=upload_id,
                PartNumber=number,
                Body=_body(f, 0, length),
                ContentLength=length,
            )
        return sent["ETag"]

    def complete_multipart(
        self, object_id: str, upload_id: str, parts: list[tuple[int, str]]
    ) -> None:
        """The parts (number, ETag) in order become the object ``object_id``."""
        with _reachable():
            self.client.complete_multipart_upload(
                Bucket=self.bucket,
                Key=_check_id(object_id),
                UploadId=upload_id,
                MultipartUpload={"Parts": [{"PartNumber": n, "ETag": e} for n, e in parts]},
            )

    def abort_multipart(self, object_id: str, upload_id: str) -> None:
        """Abort (gone already is fine: another instance finished the job)."""
        try:
            with _reachable():
                self.client.abort_multipart_upload(
                    Bucket=self.bucket, Key=_check_id(object_id), UploadId=upload_id
                )
        except ClientError as exc:
            if _code(exc) not in {"NoSuchUpload", *_MISSING}:
                raise

    def abort_multiparts(self, object_id: str) -> int:
        """Abort every unfinished multipart upload to the key ``object_id`` (those an
        instance that died had begun, with the one in use); how many."""
        key = _check_id(object_id)
        aborted = 0
        with _reachable():
            pages = self.client.get_paginator("list_multipart_uploads").paginate(
                Bucket=self.bucket, Prefix=key
            )
            for page in pages:
                for upload in page.get("Uploads", []):
                    if upload.get("Key") == key:
                        self.abort_multipart(key, upload["UploadId"])
                        aborted += 1
        return aborted

    def put_file(self, object_id: str, f: BinaryIO, length: int) -> None:
        """The first ``length`` bytes of ``f`` as the object ``object_id``, one ``PutObject``."""
        with _reachable():
            self.client.put_object(
                Bucket=self.bucket,
                Key=_check_id(object_id),
                Body=_body(f, 0, length),
                ContentLength=length,
                ContentType=CONTENT_TYPE,
            )

    def copy_into(self, object_id: str, f: BinaryIO) -> int:
        """Append the object to the file ``f``, ``READ_SIZE`` at a time; its length."""
        copied = 0
        with self.open(object_id) as body:
            while chunk := body.read(READ_SIZE):
                _write_all(f, memoryview(chunk))
                copied += len(chunk)
        return copied

    def read_bytes(self, object_id: str) -> bytes:
        with self.open(object_id) as f:
            return f.read()

    @contextlib.contextmanager
    def open(self, object_id: str, start: int = 0) -> Iterator[Readable]:
        """The object from byte ``start`` on, streamed; FileNotFoundError if there is none."""
        key = _check_id(object_id)
        try:
            with _reachable():
                if start:
                    got = self.client.get_object(
                        Bucket=self.bucket, Key=key, Range=f"bytes={start}-"
                    )
                else:
                    got = self.client.get_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if _code(exc) in _MISSING:
                raise FileNotFoundError(object_id) from None
            if _code(exc) == "InvalidRange":  # start at or past the end
                self.size(object_id)  # FileNotFoundError if it is missing after all
                yield io.BytesIO(b"")
                return
            raise
        body = got["Body"]
        try:
            yield body
        finally:
            body.close()

    def size(self, object_id: str) -> int:
        """The object's length in bytes; FileNotFoundError if there is none."""
        try:
            with _reachable():
                head = self.client.head_object(Bucket=self.bucket, Key=_check_id(object_id))
        except ClientError as exc:
            if _code(exc) in _MISSING:
                raise FileNotFoundError(object_id) from None
            raise
        return int(head["ContentLength"])

    def delete(self, object_id: str) -> None:
        key = _check_id(object_id)
        with _reachable():
            self.client.delete_object(Bucket=self.bucket, Key=key)

    def ids(self) -> set[str]:
        with _reachable():
            return {key for key, _ in self._listing()}

    def _listing(self) -> Iterator[tuple[str, datetime]]:
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket)
        for page in pages:
            for item in page.get("Contents", []):
                key = item.get("Key", "")
                if _ID.fullmatch(key):
                    yield key, item["LastModified"]

    def collect_garbage(self, known: set[str], *, keep_uploads: Set[str] = frozenset()) -> int:
        """Abort unfinished uploads (but ``keep_uploads``, UploadIds of resumable
        uploads in progress) and remove objects no database row refers to
        (``known``: recorded objects, and resumable uploads' keys and staging objects).

        Only what is older than ``grace``: another instance may be writing the
        rest. Keys that are not ids are not Lanterne's and are left alone.
        """
        with _reachable():
            return self._collect(known, keep_uploads, self._now() - self.grace)

    def _collect(self, known: set[str], keep_uploads: Set[str], cutoff: datetime) -> int:
        removed = 0
        pages = self.client.get_paginator("list_multipart_uploads").paginate(Bucket=self.bucket)
        for page in pages:
            for upload in page.get("Uploads", []):
                key = upload.get("Key", "")
                # A resumable upload in progress may be older (its row lists it).
                if (
                    _ID.fullmatch(key)
                    and upload["UploadId"] not in keep_uploads
                    and upload["Initiated"] <= cutoff
                ):
                    with contextlib.suppress(ClientError):  # finished or aborted meanwhile
                        self.client.abort_multipart_upload(
                            Bucket=self.bucket, Key=key, UploadId=upload["UploadId"]
                        )
                        removed += 1
        for key, modified in list(self._listing()):
            if key not in known and modified <= cutoff:
                self.client.delete_object(Bucket=self.bucket, Key=key)
                removed += 1
        return removed


@dataclass(frozen=True)
class BucketFinding:
    """One result of ``check_bucket``: ``ok`` False is a failure, ``warn`` advice."""

    item: str
    ok: bool
    message: str
    warn: bool = False


_PUBLIC_GRANTEES = (
    "http://acs.amazonaws.com/groups/global/AllUsers",
    "http://acs.amazonaws.com/groups/global/AuthenticatedUsers",
)


def check_bucket(client: S3Client, bucket: str) -> list[BucketFinding]:
    """What ``lanterne-server check`` says about the bucket.

    Fails when the bucket cannot be reached, is readable by anyone, or keeps
    what is deleted (versioning, object lock: a deleted submission's ciphertext
    would stay). Warns where the server cannot say (several S3-compatible
    servers implement only part of the bucket API) and about access logs.
    """
    try:
        client.head_bucket(Bucket=bucket)
    except ClientError as exc:
        return [BucketFinding("bucket", False, f"{bucket!r} cannot be used ({_code(exc)})")]
    except BotoCoreError as exc:
        return [BucketFinding("bucket", False, f"the S3 server cannot be reached ({exc})")]
    found = [BucketFinding("bucket", True, f"{bucket!r} exists and answers")]
    found.append(_versioning(client, bucket))
    found.append(_object_lock(client, bucket))
    found.append(_public(client, bucket))
    found.append(_logging(client, bucket))
    return found


def _unsupported(item: str, exc: ClientError) -> BucketFinding:
    return BucketFinding(
        item, True, f"this S3 server does not say ({_code(exc)}): check it by hand", warn=True
    )


def _versioning(client: S3Client, bucket: str) -> BucketFinding:
    try:
        status = client.get_bucket_versioning(Bucket=bucket).get("Status")
    except ClientError as exc:
        return _unsupported("versioning", exc)
    if status == "Enabled":
        return BucketFinding(
            "versioning", False, "enabled: deleted ciphertext would be kept as old versions"
        )
    if status == "Suspended":
        return BucketFinding(
            "versioning",
            True,
            "suspended: versions made while it was enabled are still kept; delete them",
            warn=True,
        )
    return BucketFinding("versioning", True, "never enabled")


def _object_lock(client: S3Client, bucket: str) -> BucketFinding:
    try:
        lock = client.get_object_lock_configuration(Bucket=bucket)
    except ClientError as exc:
        if _code(exc) == "ObjectLockConfigurationNotFoundError":
            return BucketFinding("object lock", True, "off")
        return _unsupported("object lock", exc)
    if lock.get("ObjectLockConfiguration", {}).get("ObjectLockEnabled") == "Enabled":
        return BucketFinding("object lock", False, "on: deleted ciphertext would be retained")
    return BucketFinding("object lock", True, "off")


def _public(client: S3Client, bucket: str) -> BucketFinding:
    try:
        acl = client.get_bucket_acl(Bucket=bucket)
    except ClientError as exc:
        return _unsupported("public access", exc)
    for grant in acl.get("Grants", []):
        if grant.get("Grantee", {}).get("URI") in _PUBLIC_GRANTEES:
            return BucketFinding("public access", False, "the bucket's ACL grants access to all")
    try:
        public = client.get_bucket_policy_status(Bucket=bucket)
    except ClientError as exc:
        if _code(exc) in {"NoSuchBucketPolicy", "NoSuchPolicy"}:
            return BucketFinding("public access", True, "no ACL grant and no policy for all")
        return _unsupported("public access", exc)
    if public.get("PolicyStatus", {}).get("IsPublic"):
        return BucketFinding("public access", False, "the bucket's policy makes it public")
    return BucketFinding("public access", True, "no ACL grant and no policy for all")


def _logging(client: S3Client, bucket: str) -> BucketFinding:
    try:
        logging = client.get_bucket_logging(Bucket=bucket)
    except ClientError as exc:
        return _unsupported("access logs", exc)
    if "LoggingEnabled" in logging:
        return BucketFinding(
            "access logs",
            True,
            "on: the S3 server logs the time of every upload and download",
            warn=True,
        )
    return BucketFinding("access logs", True, "off")


if TYPE_CHECKING:

    def _is_an_object_store(store: S3ObjectStore) -> ObjectStore:
        return store  # mypy checks that the S3 store has the Protocol's every method
