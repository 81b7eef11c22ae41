"""The default wiring on PostgreSQL and S3, chosen by config.toml alone (issue 14).

A real ``lanterne-server`` process is configured only through its data
directory's config.toml (``[database]``, ``[objects]``) and environment secrets
(``PGPASSWORD``, ``LANTERNE_S3_*``), against the test cluster and moto's S3
server: ``init`` prepares the PostgreSQL schema and registers the journalists
there, ``run`` serves a no-JavaScript submission whose rows land in PostgreSQL
and whose objects land in the bucket, with nothing in the data directory's
objects/ or SQLite file, and no plaintext anywhere the backends keep things.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

import envelope
from tests.pg_cluster import Cluster
from tests.s3_server import REGION, S3Server, backend_secrets
from tests.server_process import (
    ROOT,
    SERVER_CMD,
    Instance,
    SourceClient,
    find_canaries,
    make_journalist,
    run_server,
)

# slow: a server process on PostgreSQL and S3 with a whole submission.
pytestmark = pytest.mark.slow

MESSAGE = "LNTCANARY-configured-message-5b1e"
FILE = b"LNTCANARY-configured-file-a93c " * 3000  # 93 kB: more than one envelope chunk


@dataclass
class Configured:
    instance: Instance
    env: dict[str, str]
    url: str  # the PostgreSQL URL with the password, for the test's own checks
    bucket: str


def without_password(url: str) -> str:
    parts = urlsplit(url)
    assert parts.username and parts.hostname
    netloc = f"{parts.username}@{parts.hostname}:{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))


def backend_config(pg_url: str, s3: S3Server, bucket: str) -> str:
    return (
        f'[database]\nurl = "{without_password(pg_url)}"\npool_size = 4\n\n'
        f'[objects]\nendpoint = "{s3.endpoint}"\nbucket = "{bucket}"\n'
        f'region = "{REGION}"\naddressing = "path"\n'
    )


def admin(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*SERVER_CMD, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,  # a `run` that ignores the config would serve for ever
    )


@pytest.fixture
def configured(
    tmp_path: Path, pg_url: str, s3_server: S3Server, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Configured]:
    password = urlsplit(pg_url).password
    assert password
    secrets = backend_secrets(password)
    for name, value in secrets.items():
        monkeypatch.setenv(name, value)  # run_server passes the environment on
    env = {**os.environ, **secrets}
    data_dir = tmp_path / "data"
    created = admin(["init", "--data-dir", str(data_dir)], env)
    assert created.returncode == 0, created.stderr
    bucket = s3_server.new_bucket()
    (data_dir / "config.toml").write_text(backend_config(pg_url, s3_server, bucket))
    keys = tmp_path / "keys"
    keys.mkdir()
    alice = make_journalist(keys, "alice")
    done = admin(["init", "--data-dir", str(data_dir), "--journalist", str(alice.pub_path)], env)
    assert done.returncode == 0, done.stderr
    tmp_dir = tmp_path / "server-tmp"
    tmp_dir.mkdir()
    instance = Instance(data_dir, [alice], tmp_dir, tmp_path / "server.log")
    yield Configured(instance, env, pg_url, bucket)


def pg_count(url: str, table: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()  # a name from the test
    assert row is not None
    return int(row[0])


def sqlite_count(path: Path, table: str) -> int:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


def test_config_toml_alone_puts_a_submission_in_postgresql_and_the_bucket(
    configured: Configured, s3_server: S3Server, pg_cluster: Cluster
) -> None:
    c = configured
    data_dir = c.instance.data_dir
    # init registered alice in PostgreSQL, not in the data directory's SQLite file.
    assert pg_count(c.url, "journalists") == 1
    assert sqlite_count(data_dir / "lanterne.sqlite3", "journalists") == 0

    with run_server(c.instance) as server, SourceClient(server.base_url) as source:
        assert source.first_submission(MESSAGE, [("report.txt", FILE, "text/plain")])

    assert pg_count(c.url, "submissions") == 1
    assert sqlite_count(data_dir / "lanterne.sqlite3", "submissions") == 0
    assert list((data_dir / "objects").iterdir()) == []
    s3 = s3_server.client()
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=c.bucket).get("Contents", [])]
    assert len(keys) == 3  # manifest, message, file
    with psycopg.connect(c.url) as conn:
        listed = {str(r[0]) for r in conn.execute("SELECT id FROM objects")}
    assert listed == set(keys)

    # The bucket's objects are the submission: the manifest names the message.
    identity = c.instance.journalists[0].identity
    raw = {k: s3.get_object(Bucket=c.bucket, Key=k)["Body"].read() for k in keys}
    with psycopg.connect(c.url) as conn:
        row = conn.execute("SELECT id FROM objects WHERE kind = 'manifest'").fetchone()
    assert row is not None
    manifest = json.loads(envelope.decrypt_bytes(raw[row[0]], [identity]))
    message = envelope.decrypt_bytes(raw[manifest["message"]["object"]], [identity])
    assert message.decode() == MESSAGE

    # No plaintext in PostgreSQL's files (after a checkpoint), the bucket or the data dir.
    with psycopg.connect(pg_cluster.url(), autocommit=True) as conn:
        conn.execute("CHECKPOINT")
    canaries = [MESSAGE.encode(), FILE[:30]]
    assert find_canaries(canaries, [pg_cluster.data_dir, data_dir]) == []
    assert not any(canary in blob for canary in canaries for blob in raw.values())


def test_a_missing_bucket_secret_is_one_line_at_start(configured: Configured) -> None:
    env = {k: v for k, v in configured.env.items() if k != "LANTERNE_S3_SECRET_ACCESS_KEY"}
    ran = admin(["run", "--data-dir", str(configured.instance.data_dir), "--port", "0"], env)
    assert ran.returncode == 1
    assert "LANTERNE_S3_SECRET_ACCESS_KEY" in ran.stderr
    assert "Traceback" not in ran.stderr


def test_a_resumable_upload_commits_into_the_bucket(
    configured: Configured, s3_server: S3Server, pg_cluster: Cluster
) -> None:
    """The browser's path: tus uploads of ciphertext, then the commit. With both
    ``[database]`` and ``[objects]`` the uploads are shared (PostgreSQL rows, S3
    parts and staging objects, server/store/shared_uploads.py): the commit
    assembles each into its object and leaves no upload row, file, staging
    object or unfinished multipart upload behind."""
    from tests.test_uploads_tus import Browser, manifest, seal

    c = configured
    data_dir = c.instance.data_dir
    message = b"LNTCANARY-resumable-message-77d0"
    document = b"LNTCANARY-resumable-file-0e4b " * 20_000  # 600 kB, several tus chunks
    with run_server(c.instance) as server, Browser(server.base_url) as browser:
        msg_id = browser.upload(seal(c.instance, message))
        doc_id = browser.upload(seal(c.instance, document))
        plain = manifest((msg_id, len(message)), [(doc_id, "a.txt", "text/plain", len(document))])
        manifest_id = browser.upload(seal(c.instance, plain))
        committed = browser.commit(manifest_id, msg_id, [doc_id])
        assert committed.status_code == 303, committed.text
        assert committed.headers["location"] == "/en/codename"
        for upload_id in (manifest_id, msg_id, doc_id):
            assert browser.head(upload_id).status_code == 404

    assert pg_count(c.url, "submissions") == 1
    s3 = s3_server.client()
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=c.bucket).get("Contents", [])}
    assert keys == {manifest_id, msg_id, doc_id}
    assert s3.list_multipart_uploads(Bucket=c.bucket).get("Uploads", []) == []
    assert pg_count(c.url, "uploads") == 0
    assert pg_count(c.url, "upload_parts") == 0
    identity = c.instance.journalists[0].identity
    body = s3.get_object(Bucket=c.bucket, Key=doc_id)["Body"].read()
    assert envelope.decrypt_bytes(body, [identity]) == document
    assert list((data_dir / "objects").iterdir()) == []
    assert [p.name for p in (data_dir / "uploads").iterdir()] == []
    assert sqlite_count(data_dir / "lanterne.sqlite3", "uploads") == 0
    with psycopg.connect(pg_cluster.url(), autocommit=True) as conn:
        conn.execute("CHECKPOINT")
    assert find_canaries([message, document[:30]], [pg_cluster.data_dir, data_dir]) == []


def test_admin_commands_work_on_the_configured_rows(configured: Configured, tmp_path: Path) -> None:
    """journalists add/list/remove, list, directory show and backup, on an
    instance whose rows are in PostgreSQL: each reads and changes those rows."""
    c = configured
    data = ["--data-dir", str(c.instance.data_dir)]
    bruno = make_journalist(tmp_path / "keys", "bruno")
    added = admin(["journalists", "add", *data, "--no-client-auth", str(bruno.pub_path)], c.env)
    assert added.returncode == 0, added.stderr
    with psycopg.connect(c.url) as conn:
        names = {r[0] for r in conn.execute("SELECT name FROM journalists")}
    assert names == {"alice", "bruno"}
    listed = admin(["journalists", "list", *data], c.env)
    assert listed.returncode == 0 and "alice" in listed.stdout and "bruno" in listed.stdout
    hs_dir = ["--hs-dir", str(tmp_path / "no-hs")]
    removed = admin(["journalists", "remove", *data, *hs_dir, "bruno"], c.env)
    assert removed.returncode == 0, removed.stderr
    assert pg_count(c.url, "journalists") == 1
    shown = admin(["directory", "show", *data], c.env)
    assert shown.returncode == 0 and "No newsroom key" in shown.stdout, shown.stderr

    assert admin(["list", *data], c.env).stdout.strip() == "No submission yet."
    with run_server(c.instance) as server, SourceClient(server.base_url) as source:
        source.first_submission(MESSAGE, None)
    with psycopg.connect(c.url) as conn:
        ids = {str(r[0]) for r in conn.execute("SELECT id FROM objects")}
    listing = admin(["list", *data], c.env)
    assert listing.returncode == 0, listing.stderr
    assert len(ids) == 2 and all(f"bucket {c.bucket}, key {i}" in listing.stdout for i in ids)

    # backup reads the configured rows and bucket (tests/test_backup_scale_out.py);
    # without a signing key it writes nothing.
    backup = ["backup", *data, "--to", str(tmp_path / "b.tar")]
    refused = admin([*backup, "--signing-key", str(tmp_path / "none")], c.env)
    assert refused.returncode == 1 and "none" in refused.stderr, refused.stderr
    assert "Traceback" not in refused.stderr and not (tmp_path / "b.tar").exists()
