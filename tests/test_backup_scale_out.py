"""``lanterne-server backup`` and ``restore`` on PostgreSQL and S3 (issue 14 §2).

Against the real cluster (tests/pg_cluster.py) and moto's S3 server
(tests/s3_server.py), through the real admin commands: one signed, encrypted
file holds the rows (a logical dump, server/store/postgres_dump.py) and the
bucket's objects; restore puts them into an empty database and an empty
bucket, after the signature is verified; a tampered file or a non-empty
target writes nothing; the backups of both backends restore into either.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

import envelope
from journalist_cli.identity_store import JournalistIdentity, seal_identity, write_identity_file
from server.store.postgres import PostgresDatabase
from server.store.postgres_dump import NOT_BACKED_UP, TABLES
from tests.pg_cluster import Cluster, fresh_schema
from tests.s3_server import S3Server, backend_secrets
from tests.server_process import SourceClient, init_instance, make_journalist, run_server
from tests.test_configured_backend import (  # noqa: F401 -- the fixture
    Configured,
    admin,
    backend_config,
    configured,
    pg_count,
)

# Real server processes, PostgreSQL and S3: CI runs it, --fast does not.
pytestmark = pytest.mark.slow

MESSAGE = "LNTCANARY-backup-message-0d3f"
FILE = b"LNTCANARY-backup-file-71aa " * 40_000  # 1 MB: several envelope chunks


def admin_key(directory: Path) -> Path:
    key = JournalistIdentity.generate("admin")
    path = directory / "admin.identity"
    write_identity_file(path, seal_identity(key, None))
    return path


@contextlib.contextmanager
def empty_target(
    pg_cluster: Cluster, s3: S3Server, tmp_path: Path, name: str
) -> Iterator[tuple[str, str, Path]]:
    """A new empty schema and bucket, and a config.toml naming them."""
    with fresh_schema(pg_cluster) as url:
        bucket = s3.new_bucket()
        config = tmp_path / f"{name}.toml"
        config.write_text(backend_config(url, s3, bucket))
        yield url, bucket, config


def keys_of(s3: S3Server, bucket: str) -> dict[str, bytes]:
    client = s3.client()
    listed = client.list_objects_v2(Bucket=bucket).get("Contents", [])
    return {o["Key"]: client.get_object(Bucket=bucket, Key=o["Key"])["Body"].read() for o in listed}


def tables_of(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema()"
        ).fetchone()
    assert row is not None
    return int(row[0])


def message_of(objects: dict[str, bytes], identity: envelope.Identity) -> str:
    for blob in objects.values():
        with contextlib.suppress(envelope.EnvelopeError, ValueError, UnicodeDecodeError):
            doc = json.loads(envelope.decrypt_bytes(blob, [identity]))
            if isinstance(doc, dict) and "message" in doc:
                return envelope.decrypt_bytes(
                    objects[doc["message"]["object"]], [identity]
                ).decode()
    raise AssertionError("no manifest among the objects")


@pytest.fixture
def backed_up(
    configured: Configured,  # noqa: F811
    s3_server: S3Server,
    tmp_path: Path,
) -> tuple[Configured, Path, Path, str, int]:
    """A submission on PostgreSQL and S3, a journalist added and removed, a backup."""
    c = configured
    data = ["--data-dir", str(c.instance.data_dir)]
    bruno = make_journalist(tmp_path / "keys", "bruno")
    assert (
        admin(
            ["journalists", "add", *data, "--no-client-auth", str(bruno.pub_path)], c.env
        ).returncode
        == 0
    )
    with psycopg.connect(c.url) as conn:
        row = conn.execute("SELECT id FROM journalists WHERE name = 'bruno'").fetchone()
        # A row in the tables later steps added: a desk, its member, a digest address.
        conn.execute("INSERT INTO desks(name, titles, details) VALUES ('enquetes', '{}', '{}')")
        conn.execute(
            "INSERT INTO desk_members(desk, journalist_id)"
            " SELECT 'enquetes', id FROM journalists WHERE name = 'alice'"
        )
        conn.execute(
            "INSERT INTO digest_recipients(journalist_id, email)"
            " SELECT id, 'alice@example.org' FROM journalists WHERE name = 'alice'"
        )
    assert row is not None
    removed = admin(
        ["journalists", "remove", *data, "--hs-dir", str(tmp_path / "hs"), "bruno"], c.env
    )
    assert removed.returncode == 0, removed.stderr
    with run_server(c.instance) as server, SourceClient(server.base_url) as source:
        codename = source.first_submission(MESSAGE, [("report.txt", FILE, "text/plain")])
    identity = admin_key(tmp_path)
    to = tmp_path / "lanterne.backup"
    done = admin(["backup", *data, "--to", str(to), "--signing-key", str(identity)], c.env)
    assert done.returncode == 0, done.stderr
    assert "backup written" in done.stdout and "3 objects" in done.stdout
    return c, to, identity, codename, int(row[0])


def test_a_backup_of_postgresql_and_s3_restores_into_an_empty_database_and_bucket(
    backed_up: tuple[Configured, Path, Path, str, int],
    s3_server: S3Server,
    pg_cluster: Cluster,
    tmp_path: Path,
) -> None:
    c, to, identity, codename, bruno_id = backed_up
    raw = to.read_bytes()
    assert MESSAGE.encode() not in raw and FILE[:26] not in raw and b"SQLite format 3" not in raw
    before = keys_of(s3_server, c.bucket)
    counts = {t: pg_count(c.url, t) for t in TABLES}
    assert counts["submissions"] == 1 and counts["objects"] == 3
    assert counts["desks"] == counts["desk_members"] == counts["digest_recipients"] == 1

    with empty_target(pg_cluster, s3_server, tmp_path, "new") as (url, bucket, config):
        restored = tmp_path / "restored"
        done = admin(
            ["restore", "--data-dir", str(restored), "--from", str(to),
             "--identity", str(identity), "--config", str(config)],
            c.env,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert "restored 3 objects" in done.stdout
        # The same rows and the same ciphertext, in the new database and bucket.
        assert {t: pg_count(url, t) for t in TABLES} == counts
        assert keys_of(s3_server, bucket) == before
        assert (restored / "config.toml").read_bytes() == config.read_bytes()
        assert (restored / "secrets.json").read_bytes() == (
            c.instance.data_dir / "secrets.json"
        ).read_bytes()
        with contextlib.closing(sqlite3.connect(restored / "lanterne.sqlite3")) as local:
            assert local.execute("SELECT count(*) FROM submissions").fetchone() == (0,)
        assert [p.name for p in (restored / "objects").iterdir()] == []
        # A journalist decrypts what the restored bucket holds.
        alice = c.instance.journalists[0].identity
        assert message_of(keys_of(s3_server, bucket), alice) == MESSAGE
        # The removed journalist's id is never given again.
        carol = make_journalist(tmp_path / "keys", "carol")
        data = ["--data-dir", str(restored)]
        assert (
            admin(
                ["journalists", "add", *data, "--no-client-auth", str(carol.pub_path)], c.env
            ).returncode
            == 0
        )
        with psycopg.connect(url) as conn:
            row = conn.execute("SELECT id FROM journalists WHERE name = 'carol'").fetchone()
        assert row is not None and row[0] > bruno_id
        # The restored instance serves, and the source's codename still opens.
        restored_instance = c.instance.__class__(
            restored, c.instance.journalists, tmp_path / "restored-tmp", tmp_path / "r.log"
        )
        restored_instance.tmp_dir.mkdir()
        with run_server(restored_instance) as server, SourceClient(server.base_url) as source:
            assert source.login(codename).status_code == 303

    # Back to SQLite and files: the same backup, restored with an embedded config.
    embedded = tmp_path / "embedded.toml"
    embedded.write_text("# SQLite and files\n")
    local_dir = tmp_path / "local"
    done = admin(
        ["restore", "--data-dir", str(local_dir), "--from", str(to),
         "--identity", str(identity), "--config", str(embedded)],
        c.env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert {p.name: p.read_bytes() for p in (local_dir / "objects").iterdir()} == before
    with contextlib.closing(sqlite3.connect(local_dir / "lanterne.sqlite3")) as local:
        assert local.execute("SELECT count(*) FROM submissions").fetchone() == (1,)


def test_a_tampered_backup_writes_nothing_and_a_full_target_is_refused(
    backed_up: tuple[Configured, Path, Path, str, int],
    s3_server: S3Server,
    pg_cluster: Cluster,
    tmp_path: Path,
) -> None:
    c, to, identity, _, _ = backed_up
    tampered = tmp_path / "tampered.backup"
    raw = bytearray(to.read_bytes())
    raw[len(raw) // 2] ^= 1
    tampered.write_bytes(bytes(raw))
    with empty_target(pg_cluster, s3_server, tmp_path, "new") as (url, bucket, config):
        restored = tmp_path / "restored"
        args = ["restore", "--data-dir", str(restored), "--identity", str(identity)]
        done = admin([*args, "--from", str(tampered), "--config", str(config)], c.env)
        assert done.returncode == 3 and "altered" in done.stderr, done.stderr
        assert "Traceback" not in done.stderr
        assert tables_of(url) == 0 and keys_of(s3_server, bucket) == {}
        assert not restored.exists()
        assert not [p for p in tmp_path.iterdir() if ".restoring-" in p.name]

    # The backup's own config.toml names the database and bucket it came from,
    # which hold rows and objects: refused, nothing written, nothing removed.
    before = keys_of(s3_server, c.bucket)
    counts = {t: pg_count(c.url, t) for t in TABLES}
    done = admin([*args, "--from", str(to)], c.env)
    assert done.returncode == 1 and "restore into an empty one" in done.stderr, done.stderr
    assert keys_of(s3_server, c.bucket) == before
    assert {t: pg_count(c.url, t) for t in TABLES} == counts
    assert not restored.exists()

    # An empty database but a bucket that is not: refused before any row.
    with fresh_schema(pg_cluster) as url:
        config = tmp_path / "half.toml"
        config.write_text(backend_config(url, s3_server, c.bucket))
        done = admin([*args, "--from", str(to), "--config", str(config)], c.env)
        assert done.returncode == 1 and "is not empty" in done.stderr, done.stderr
        assert tables_of(url) == 0 and keys_of(s3_server, c.bucket) == before


def test_a_sqlite_backup_restores_into_postgresql_and_s3(
    s3_server: S3Server, pg_cluster: Cluster, tmp_path: Path
) -> None:
    instance = init_instance(tmp_path / "embedded")
    with run_server(instance) as server, SourceClient(server.base_url) as source:
        assert source.first_submission(MESSAGE, [("report.txt", FILE, "text/plain")])
    identity = admin_key(tmp_path)
    to = tmp_path / "embedded.backup"
    data = ["--data-dir", str(instance.data_dir)]
    done = admin(
        ["backup", *data, "--to", str(to), "--signing-key", str(identity)], dict(os.environ)
    )
    assert done.returncode == 0, done.stderr
    files = {
        p.name: p.read_bytes() for p in instance.objects_dir.iterdir() if not p.name.startswith(".")
    }
    password = pg_cluster.password
    env = {**os.environ, **backend_secrets(password)}
    with empty_target(pg_cluster, s3_server, tmp_path, "new") as (url, bucket, config):
        restored = tmp_path / "restored"
        done = admin(
            ["restore", "--data-dir", str(restored), "--from", str(to),
             "--identity", str(identity), "--config", str(config)],
            env,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert keys_of(s3_server, bucket) == files
        assert pg_count(url, "submissions") == 1 and pg_count(url, "journalists") == 2
        assert message_of(files, instance.journalists[0].identity) == MESSAGE


def test_every_postgresql_table_is_backed_up_or_said_not_to_be(pg_url: str) -> None:
    with PostgresDatabase(pg_url, max_size=1) as pg:
        pg.prepare()
        with pg.connect() as conn:
            tables = {
                str(r[0])
                for r in conn.execute(
                    "SELECT table_name FROM information_schema.tables"
                    " WHERE table_schema = current_schema()"
                )
            }
    assert tables == {"meta", *TABLES, *NOT_BACKED_UP}


def test_a_restore_into_a_schema_of_an_older_release_upgrades_it(
    backed_up: tuple[Configured, Path, Path, str, int],
    s3_server: S3Server,
    pg_cluster: Cluster,
    tmp_path: Path,
) -> None:
    """An empty database an older release made (no desks table yet) counts as
    empty, and is brought to this release's schema in the restore's transaction."""
    from server.store.db import SCHEMA_VERSION
    from server.store.migrations import MIGRATIONS
    from server.store.postgres import POSTGRES_BASELINE, prepare

    c, to, identity, _, _ = backed_up
    with empty_target(pg_cluster, s3_server, tmp_path, "old") as (url, bucket, config):
        with PostgresDatabase(url, max_size=1) as pg, pg.connect() as conn:
            old = tuple(m for m in MIGRATIONS if m.to_version <= POSTGRES_BASELINE)
            prepare(conn, migrations=old, target=POSTGRES_BASELINE)
        done = admin(
            ["restore", "--data-dir", str(tmp_path / "restored"), "--from", str(to),
             "--identity", str(identity), "--config", str(config)],
            c.env,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        with PostgresDatabase(url, max_size=1) as pg:
            assert pg.schema_version() == SCHEMA_VERSION
        assert pg_count(url, "submissions") == 1 and pg_count(url, "desks") == 1
        assert len(keys_of(s3_server, bucket)) == 3
