"""``lanterne-server check`` on the scale-out backend: the PostgreSQL database
(connection, schema version, settings that keep times) and the S3 bucket
(policy), against a real cluster and moto's S3 server, when config.toml names
them; the secrets from the environment the check is given."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from server.ops.health_check import CheckConfig, Finding, run_checks
from server.settings import S3_ACCESS_KEY_ENV, S3_SECRET_KEY_ENV
from server.store.postgres import PostgresDatabase
from server.store.postgres_stores import PostgresJournalistStore
from tests.s3_server import ACCESS_KEY, SECRET_KEY, S3Server


def scale_out_findings(data_dir: Path, environ: dict[str, str]) -> dict[str, Finding]:
    found = run_checks(CheckConfig(data_dir=data_dir, environ=environ))
    return {f.item: f for f in found if f.item.startswith(("PostgreSQL", "S3", "scale_out"))}


def without_password(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    assert parts.password
    netloc = f"{parts.username}@{parts.hostname}:{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc)), parts.password


def test_the_embedded_backend_has_no_such_lines(tmp_path: Path) -> None:
    assert scale_out_findings(tmp_path, {}) == {}


def test_the_database(tmp_path: Path, pg_url: str) -> None:
    url, password = without_password(pg_url)
    (tmp_path / "config.toml").write_text(f'[database]\nurl = "{url}"\n')
    found = scale_out_findings(tmp_path, {"PGPASSWORD": password})
    assert found["PostgreSQL database"].ok
    assert not found["PostgreSQL schema"].ok  # nobody ran init yet
    with PostgresDatabase(pg_url) as db:
        db.prepare()
    found = scale_out_findings(tmp_path, {"PGPASSWORD": password})
    assert all(f.ok and not f.warn for f in found.values()), found
    found = scale_out_findings(tmp_path, {"PGPASSWORD": "wrong"})
    assert [(i, f.ok) for i, f in found.items()] == [("PostgreSQL database", False)]
    assert "password authentication failed" in found["PostgreSQL database"].message


def test_journalists_and_the_directory_are_read_where_the_rows_are(
    tmp_path: Path, pg_url: str
) -> None:
    # On PostgreSQL the data directory has no lanterne.db: the journalists, the
    # signed directory and the desks come from the database config.toml names.
    url, password = without_password(pg_url)
    (tmp_path / "config.toml").write_text(f'[database]\nurl = "{url}"\n')
    with PostgresDatabase(pg_url) as db:
        db.prepare()
        store = PostgresJournalistStore(db)
        for name in [j.name for j in store.journalists()]:
            store.remove_journalist(name)
        store.add_journalist("alice", os.urandom(32), os.urandom(32), "journalist", "2026-12-04")
    found = {f.item: f for f in run_checks(CheckConfig(tmp_path, environ={"PGPASSWORD": password}))}
    assert "database" not in found, found["database"]  # no SQLite file was looked for
    assert found["journalists"].ok and found["journalists"].message == "1 registered"
    assert found["key directory"].warn and "not signed" in found["key directory"].message
    # Unreachable: the PostgreSQL line says so, and no row line pretends to know.
    found = {f.item: f for f in run_checks(CheckConfig(tmp_path, environ={"PGPASSWORD": "x"}))}
    assert not found["PostgreSQL database"].ok
    assert "journalists" not in found and "database" not in found


def test_the_bucket(tmp_path: Path, s3_server: S3Server) -> None:
    bucket = s3_server.new_bucket()
    (tmp_path / "config.toml").write_text(
        f'[objects]\nendpoint = "{s3_server.endpoint}"\nbucket = "{bucket}"\n'
    )
    found = scale_out_findings(tmp_path, {})
    assert not found["S3 bucket"].ok
    assert S3_ACCESS_KEY_ENV in found["S3 bucket"].message
    environ = {S3_ACCESS_KEY_ENV: ACCESS_KEY, S3_SECRET_KEY_ENV: SECRET_KEY}
    found = scale_out_findings(tmp_path, environ)
    assert set(found) == {
        "S3 bucket",
        "S3 versioning",
        "S3 object lock",
        "S3 public access",
        "S3 access logs",
    }
    assert all(f.ok for f in found.values()), found
    s3_server.client().put_bucket_versioning(
        Bucket=bucket, VersioningConfiguration={"Status": "Enabled"}
    )
    found = scale_out_findings(tmp_path, environ)
    assert not found["S3 versioning"].ok
    assert "deleted ciphertext" in found["S3 versioning"].message
