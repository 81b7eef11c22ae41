"""What only the S3 store has: multipart uploads, the grace of its garbage
collection, and the bucket check of ``lanterne-server check``; against moto's
S3 server over HTTP (tests/s3_server.py). The behaviour it shares with the
files store is in test_object_store_contract.py.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from server.store.protocols import StoreFull, StoreUnavailable
from server.store.s3_objects import (
    MIN_PART_SIZE,
    BucketFinding,
    S3Location,
    S3ObjectStore,
    check_bucket,
    connect,
)
from tests.s3_server import ACCESS_KEY, REGION, SECRET_KEY, S3Server

# slow: about 20-30 s of multipart uploads, retries against a stopped server and a killed
# writer on the 2-core machine; the contract suite keeps the S3 store in the fast tier.
pytestmark = pytest.mark.slow

PART = MIN_PART_SIZE
CHUNK = 64 * 1024


def make_store(s3: S3Server, tmp_path: Path, **kwargs: object) -> tuple[S3ObjectStore, str]:
    bucket = s3.new_bucket()
    client = connect(S3Location(s3.endpoint, bucket, ACCESS_KEY, SECRET_KEY, REGION))
    store = S3ObjectStore(client, bucket, tmp_path / "spool", part_size=PART, **kwargs)
    store.create_dirs()
    return store, bucket


def test_a_large_object_goes_up_in_parts_as_it_is_written(
    s3_server: S3Server, tmp_path: Path
) -> None:
    store, bucket = make_store(s3_server, tmp_path)
    client = s3_server.client()
    obj = store.new_object()
    data = os.urandom(2 * PART + 7)
    for i in range(0, 2 * PART, CHUNK):
        obj.write(data[i : i + CHUNK])
        # What the no-JS path claims of the disk reserve (ObjectStore.local_bytes).
        assert obj._spool is not None
        assert os.fstat(obj._spool.fileno()).st_size <= store.local_bytes(len(data)) == PART
    # Two full parts are on the server before the end, under the object's id.
    uploads = client.list_multipart_uploads(Bucket=bucket)["Uploads"]
    assert [u["Key"] for u in uploads] == [obj.id]
    parts = client.list_parts(Bucket=bucket, Key=obj.id, UploadId=uploads[0]["UploadId"])
    assert [p["Size"] for p in parts["Parts"]] == [PART, PART]
    obj.write(data[2 * PART :])
    obj.commit()
    assert client.head_object(Bucket=bucket, Key=obj.id)["ETag"].endswith('-3"')  # 3 parts
    assert store.read_bytes(obj.id) == data
    assert not client.list_multipart_uploads(Bucket=bucket).get("Uploads")


def test_a_small_object_is_one_put(s3_server: S3Server, tmp_path: Path) -> None:
    store, bucket = make_store(s3_server, tmp_path)
    object_id = store.write_bytes(b"x" * (PART - 1))
    etag = s3_server.client().head_object(Bucket=bucket, Key=object_id)["ETag"]
    assert "-" not in etag  # not a multipart object


def test_parts_are_at_least_the_s3_minimum(tmp_path: Path, s3_server: S3Server) -> None:
    client = connect(S3Location(s3_server.endpoint, "b", ACCESS_KEY, SECRET_KEY, REGION))
    with pytest.raises(ValueError, match="at least"):
        S3ObjectStore(client, "b", tmp_path, part_size=MIN_PART_SIZE - 1)


def test_a_failed_commit_raises_and_shows_nothing(s3_server: S3Server, tmp_path: Path) -> None:
    """The server refuses the completion (here: something else aborted the
    upload): the error reaches the caller and no object appears."""
    store, bucket = make_store(s3_server, tmp_path)
    client = s3_server.client()
    obj = store.new_object()
    obj.write(os.urandom(PART + 1))  # one part sent
    (upload,) = client.list_multipart_uploads(Bucket=bucket)["Uploads"]
    client.abort_multipart_upload(Bucket=bucket, Key=obj.id, UploadId=upload["UploadId"])
    with pytest.raises((ClientError, StoreUnavailable)):  # AWS: NoSuchUpload; moto: a 500
        obj.commit()
    assert store.ids() == set()
    assert not client.list_multipart_uploads(Bucket=bucket).get("Uploads")
    obj.abort()  # after a failed commit: nothing left to do, no error


def test_garbage_collection_spares_what_is_younger_than_grace(
    s3_server: S3Server, tmp_path: Path
) -> None:
    """With several instances, an object may be complete before its row, and
    another instance may be uploading: the S3 store leaves both alone for a day."""
    clock = [datetime.now(UTC)]
    store, bucket = make_store(s3_server, tmp_path, now=lambda: clock[0])
    assert store.grace == timedelta(days=1)
    client = s3_server.client()
    unlisted = store.write_bytes(b"row not yet committed")
    uploading = store.new_object()
    uploading.write(os.urandom(PART + 1))
    # moto dates every multipart upload in 2010: a clock before that sees all as new.
    clock[0] = datetime(2009, 1, 1, tzinfo=UTC)
    assert store.collect_garbage(set()) == 0
    assert store.ids() == {unlisted}
    assert client.list_multipart_uploads(Bucket=bucket).get("Uploads")
    clock[0] = datetime.now(UTC) + timedelta(days=1, minutes=1)
    assert store.collect_garbage(set()) == 2
    assert store.ids() == set()
    assert not client.list_multipart_uploads(Bucket=bucket).get("Uploads")
    uploading.abort()


def test_garbage_collection_leaves_keys_that_are_not_ids(
    s3_server: S3Server, tmp_path: Path
) -> None:
    store, bucket = make_store(s3_server, tmp_path, grace=timedelta(0))
    client = s3_server.client()
    client.put_object(Bucket=bucket, Key="README", Body=b"not Lanterne's")
    store.write_bytes(b"unlisted")
    assert store.collect_garbage(set()) == 1
    assert [o["Key"] for o in client.list_objects_v2(Bucket=bucket)["Contents"]] == ["README"]
    assert store.ids() == set()


# The bucket check


def by_item(findings: list[BucketFinding]) -> dict[str, BucketFinding]:
    return {f.item: f for f in findings}


def bucket_client(s3: S3Server) -> Any:
    return connect(S3Location(s3.endpoint, "unused", ACCESS_KEY, SECRET_KEY, REGION))


def test_a_private_unversioned_bucket_passes(s3_server: S3Server) -> None:
    bucket = s3_server.new_bucket()
    found = check_bucket(bucket_client(s3_server), bucket)
    assert [f for f in found if not f.ok] == []
    assert {"bucket", "versioning", "object lock", "public access", "access logs"} <= set(
        by_item(found)
    )


def test_a_missing_bucket_fails(s3_server: S3Server) -> None:
    found = check_bucket(bucket_client(s3_server), "lanterne-missing")
    assert [(f.item, f.ok) for f in found] == [("bucket", False)]


def test_an_unreachable_server_fails(tmp_path: Path) -> None:
    from tests.server_process import free_port

    client = connect(
        S3Location(f"http://127.0.0.1:{free_port()}", "b", ACCESS_KEY, SECRET_KEY, REGION)
    )
    found = check_bucket(client, "b")
    assert [(f.item, f.ok) for f in found] == [("bucket", False)]
    assert "cannot be reached" in found[0].message


def test_versioning_keeps_deleted_ciphertext_so_it_fails(s3_server: S3Server) -> None:
    bucket = s3_server.new_bucket()
    client = s3_server.client()
    client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    found = by_item(check_bucket(bucket_client(s3_server), bucket))
    assert not found["versioning"].ok
    client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Suspended"})
    found = by_item(check_bucket(bucket_client(s3_server), bucket))
    assert found["versioning"].ok and found["versioning"].warn


def test_object_lock_fails(s3_server: S3Server) -> None:
    client = s3_server.client()
    client.create_bucket(Bucket="lanterne-locked", ObjectLockEnabledForBucket=True)
    found = by_item(check_bucket(bucket_client(s3_server), "lanterne-locked"))
    assert not found["object lock"].ok


def test_a_public_bucket_fails(s3_server: S3Server) -> None:
    bucket = s3_server.new_bucket()
    s3_server.client().put_bucket_acl(Bucket=bucket, ACL="public-read")
    found = by_item(check_bucket(bucket_client(s3_server), bucket))
    assert not found["public access"].ok


def test_access_logs_are_a_warning(s3_server: S3Server) -> None:
    bucket = s3_server.new_bucket()
    logs = s3_server.new_bucket()
    client = s3_server.client()
    client.put_bucket_acl(Bucket=logs, ACL="log-delivery-write")
    client.put_bucket_logging(
        Bucket=bucket,
        BucketLoggingStatus={"LoggingEnabled": {"TargetBucket": logs, "TargetPrefix": "x/"}},
    )
    found = by_item(check_bucket(bucket_client(s3_server), bucket))
    assert found["access logs"].ok and found["access logs"].warn


@pytest.mark.parametrize("size", [0, 1, PART, PART + 1, 2 * PART, 2 * PART + 3])
def test_a_finished_upload_file_becomes_an_object(
    s3_server: S3Server, tmp_path: Path, size: int
) -> None:
    """What the resumable uploads' commit needs: a local file of ciphertext into
    the object named by the upload's id, whole or not at all."""
    store, bucket = make_store(s3_server, tmp_path)
    data = os.urandom(size)
    path = tmp_path / "upload"
    path.write_bytes(data)
    object_id = "ab" * 16
    with path.open("rb") as f:
        store.import_file(object_id, f)
    assert store.read_bytes(object_id) == data
    assert store.ids() == {object_id}
    assert not s3_server.client().list_multipart_uploads(Bucket=bucket).get("Uploads")


def test_import_file_takes_only_ids(s3_server: S3Server, tmp_path: Path) -> None:
    store, _ = make_store(s3_server, tmp_path)
    (tmp_path / "upload").write_bytes(b"x")
    with (tmp_path / "upload").open("rb") as f, pytest.raises(ValueError, match="object id"):
        store.import_file("../upload", f)
    assert store.ids() == set()


_WRITER = """
import os, sys, time
from pathlib import Path
from server.store.s3_objects import S3Location, S3ObjectStore, connect, MIN_PART_SIZE
endpoint, bucket, spool = sys.argv[1:4]
client = connect(S3Location(endpoint, bucket, "{access}", "{secret}", "{region}"))
store = S3ObjectStore(client, bucket, Path(spool), part_size=MIN_PART_SIZE)
obj = store.new_object()
obj.write(os.urandom(MIN_PART_SIZE + 4096))  # one part sent, 4 KiB in the spool
print(obj.id, flush=True)
time.sleep(600)
"""


def test_an_instance_killed_mid_upload_leaves_nothing_visible_or_named(
    s3_server: S3Server, tmp_path: Path
) -> None:
    """kill -9 in the middle of an object: no object appears, the spool leaves
    no file behind, and garbage collection aborts the unfinished upload."""
    import signal
    import subprocess
    import sys

    store, bucket = make_store(s3_server, tmp_path)
    code = _WRITER.format(access=ACCESS_KEY, secret=SECRET_KEY, region=REGION)
    writer = subprocess.Popen(
        [sys.executable, "-c", code, s3_server.endpoint, bucket, str(store.spool_dir)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert writer.stdout is not None
        object_id = writer.stdout.readline().strip()
        assert len(object_id) == 32, object_id
        fds = list(Path(f"/proc/{writer.pid}/fd").iterdir())
        spooled = [
            os.readlink(fd) for fd in fds if os.readlink(fd).startswith(str(store.spool_dir))
        ]
        assert spooled, "the writer holds its spool file open"
        assert all(link.endswith("(deleted)") or "#" in link for link in spooled), spooled
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait()
        if writer.stdout is not None:
            writer.stdout.close()
    assert os.listdir(store.spool_dir) == []
    assert store.ids() == set()
    client = s3_server.client()
    (upload,) = client.list_multipart_uploads(Bucket=bucket)["Uploads"]
    assert upload["Key"] == object_id
    later = S3ObjectStore(
        store.client,
        bucket,
        store.spool_dir,
        part_size=PART,
        now=lambda: datetime.now(UTC) + timedelta(days=2),
    )
    assert later.collect_garbage(set()) == 1
    assert not client.list_multipart_uploads(Bucket=bucket).get("Uploads")


def test_an_unreachable_s3_server_is_a_503_not_a_500(tmp_path: Path) -> None:
    """The S3 server down: every call is StoreUnavailable, an OSError the web
    layer answers with 503 (error_pages.storage_failure), after boto3's retries."""
    from server.web.error_pages import storage_failure
    from tests.s3_server import running_s3_server

    with running_s3_server(tmp_path) as peer:
        store, bucket = make_store(peer, tmp_path)
        kept = store.write_bytes(b"kept")
        pending = store.new_object()
    # The server is gone now.
    failures: list[OSError] = []
    for call in (
        lambda: store.write_bytes(b"x"),
        lambda: store.read_bytes(kept),
        lambda: store.size(kept),
        lambda: store.delete(kept),
        lambda: store.ids(),
        lambda: store.collect_garbage(set()),
        lambda: pending.write(os.urandom(PART)),
    ):
        with pytest.raises(StoreUnavailable) as caught:
            call()
        failures.append(caught.value)
    assert {storage_failure(f) for f in failures} == {503}
    pending.abort()
    assert StoreFull("x").errno == 28 and storage_failure(StoreFull("x")) == 507
    del bucket


def test_the_machines_aws_set_up_is_ignored(
    s3_server: S3Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """docs/SCALE_OUT.md: another program's AWS set-up on the machine (a profile
    that does not exist here, other credentials, another endpoint) neither
    breaks the store nor sends the ciphertext elsewhere."""
    bucket = s3_server.new_bucket()  # before: the tests' own client reads the set-up
    elsewhere = "http://127.0.0.1:9"  # nothing listens there
    aws = tmp_path / "aws-config"
    aws.write_text(
        f"[default]\nendpoint_url = {elsewhere}\nregion = eu-west-3\n"
        "aws_access_key_id = other\naws_secret_access_key = other\n"
    )
    aws_env = {
        "AWS_PROFILE": "a-profile-that-is-not-there",
        "AWS_CONFIG_FILE": str(aws),
        "AWS_SHARED_CREDENTIALS_FILE": str(aws),
        "AWS_ACCESS_KEY_ID": "other",
        "AWS_SECRET_ACCESS_KEY": "other",
        "AWS_ENDPOINT_URL": elsewhere,
        "AWS_ENDPOINT_URL_S3": elsewhere,
        "AWS_DEFAULT_REGION": "eu-west-3",
    }
    for name, value in aws_env.items():
        monkeypatch.setenv(name, value)
    client = connect(S3Location(s3_server.endpoint, bucket, ACCESS_KEY, SECRET_KEY, REGION))
    store = S3ObjectStore(client, bucket, tmp_path / "spool", part_size=PART)
    store.create_dirs()
    object_id = store.write_bytes(b"went to the configured endpoint")
    assert store.client.meta.endpoint_url == s3_server.endpoint
    assert store.client.meta.region_name == REGION
    for name in aws_env:  # the tests' own client, to look
        monkeypatch.delenv(name)
    got = s3_server.client().get_object(Bucket=bucket, Key=object_id)["Body"].read()
    assert got == b"went to the configured endpoint"
