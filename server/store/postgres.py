"""The PostgreSQL database: the same rows as the SQLite one, for several instances.

The second database of the store layer (issue 14 §2), through psycopg 3 and
its connection pool; SQLite stays the default. The privacy rules of the SQLite
schema (server.store.db) hold here and are enforced by the schema itself:

- **Days, never finer.** Every date column has the type ``day``, a text domain
  that refuses anything but ``YYYY-MM-DD``; no column is a timestamp, and no
  default calls ``now()`` (the dates come from the app's clock, cut to the
  day). ``check_database`` fails on ``track_commit_timestamp``, which would
  record each row's commit time to the microsecond.
- **No addresses, no user agents**: no such column exists; client addresses
  reach PostgreSQL's logs only if the administrator turns on
  ``log_connections`` (the instances' addresses, never a source's: sources
  come through Tor), and ``check_database`` warns about statement logging.
- **Deletion.** PostgreSQL has nothing like SQLite's ``secure_delete``: a
  deleted row stays in its page until ``VACUUM`` lets the space be reused, and
  in the write-ahead log until the segment is recycled. docs/THREAT_MODEL.md
  says what that means; every row holds ciphertext ids, hashes and days only.

Migrations. A PostgreSQL database starts at ``POSTGRES_BASELINE`` (the first
schema written for it, ``POSTGRES_SCHEMA``); each later step of the one list
``server.store.migrations.MIGRATIONS`` carries its PostgreSQL SQL beside its
SQLite function, and ``prepare`` applies them exactly as the SQLite ``prepare``
does: all in one transaction with the version bump, one upgrader at a time
(an advisory lock: several instances may start together), a newer database
refused. Unlike SQLite's, PostgreSQL's DDL is transactional, so a failed step
leaves nothing behind.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool

from server.store.db import SCHEMA_VERSION
from server.store.migrations import MIGRATIONS, Migration, MigrationError
from server.store.protocols import StoreFull, StoreUnavailable

# The schema version POSTGRES_SCHEMA describes: no PostgreSQL database is older.
# (4: the hybrid_key column was written into the schema before any PostgreSQL
# database existed.)
POSTGRES_BASELINE = 4
# pg_advisory_xact_lock key: "LNTR" (any constant that nothing else on the server uses).
_MIGRATION_LOCK = 0x4C4E5452

# ``seq``: SQLite's implicit rowid made explicit where the SQLite store lists
# rows in the order they were written (submissions, objects, replies, notes);
# it says that order and nothing more, as the rowid does.
POSTGRES_SCHEMA = """
CREATE DOMAIN day AS TEXT CHECK (VALUE ~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}$');
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
-- GENERATED ALWAYS: ids come from the sequence only, which never goes back, so
-- a removed journalist's id is never given again (an API token names one).
CREATE TABLE journalists (
    id             INTEGER GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name           TEXT NOT NULL UNIQUE,
    encryption_key BYTEA NOT NULL,
    signing_key    BYTEA NOT NULL,
    role           TEXT NOT NULL DEFAULT 'journalist' CHECK (role IN ('journalist', 'admin')),
    added_on       day NOT NULL,
    hybrid_key     BYTEA  -- X-Wing public key (1216 bytes), NULL for an X25519-only key
);
CREATE TABLE sources (
    id                TEXT PRIMARY KEY,
    login_hash        BYTEA UNIQUE,
    reply_key         BYTEA,
    created_on        day NOT NULL,
    last_active_on    day NOT NULL,
    deleted_by_source INTEGER NOT NULL DEFAULT 0 CHECK (deleted_by_source IN (0, 1)),
    CHECK ((deleted_by_source = 0) = (login_hash IS NOT NULL AND reply_key IS NOT NULL))
);
CREATE TABLE submissions (
    seq         BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
    id          TEXT PRIMARY KEY,
    source_id   TEXT NOT NULL REFERENCES sources(id) ON DELETE RESTRICT,
    received_on day NOT NULL
);
CREATE INDEX submissions_by_source ON submissions(source_id);
CREATE TABLE objects (
    seq           BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
    id            TEXT PRIMARY KEY,
    submission_id TEXT NOT NULL REFERENCES submissions(id) ON DELETE CASCADE,
    kind          TEXT NOT NULL CHECK (kind IN ('manifest', 'message', 'file')),
    size          BIGINT NOT NULL
);
CREATE INDEX objects_by_submission ON objects(submission_id);
CREATE TABLE replies (
    seq           BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
    id            TEXT PRIMARY KEY,
    source_id     TEXT NOT NULL REFERENCES sources(id) ON DELETE CASCADE,
    object_id     TEXT NOT NULL,
    journalist_id INTEGER REFERENCES journalists(id) ON DELETE SET NULL,
    sent_on       day NOT NULL
);
CREATE INDEX replies_by_source ON replies(source_id);
CREATE TABLE triage (
    source_id TEXT PRIMARY KEY REFERENCES sources(id) ON DELETE CASCADE,
    seen      INTEGER NOT NULL DEFAULT 0 CHECK (seen IN (0, 1)),
    starred   INTEGER NOT NULL DEFAULT 0 CHECK (starred IN (0, 1)),
    tags      TEXT NOT NULL DEFAULT '[]',
    assignee  INTEGER REFERENCES journalists(id) ON DELETE SET NULL
);
CREATE TABLE notes (
    seq           BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
    id            TEXT PRIMARY KEY,
    source_id     TEXT NOT NULL REFERENCES sources(id) ON DELETE CASCADE,
    object_id     TEXT NOT NULL,
    journalist_id INTEGER REFERENCES journalists(id) ON DELETE SET NULL,
    written_on    day NOT NULL
);
CREATE INDEX notes_by_source ON notes(source_id);
CREATE TABLE uploads (
    id         TEXT PRIMARY KEY,
    owner_hash BYTEA NOT NULL,
    length     BIGINT NOT NULL,
    received   BIGINT NOT NULL DEFAULT 0,
    active_on  day NOT NULL
);
CREATE INDEX uploads_by_owner ON uploads(owner_hash);
"""


class PostgresDatabase:
    """A pool of connections to one PostgreSQL database.

    ``url`` is a libpq connection URL without a password: the password comes
    from the environment (``PGPASSWORD``) or libpq's password file, never from
    config.toml (``server.settings``).
    """

    def __init__(
        self,
        url: str,
        *,
        min_size: int = 1,
        max_size: int = 10,
        password: str | None = None,
        wait: float = 10,
    ) -> None:
        self.url = url
        # None: libpq finds the password itself (PGPASSWORD, the password file).
        self._kwargs: dict[str, Any] = {"connect_timeout": 10, "application_name": "lanterne"}
        if password is not None:
            self._kwargs["password"] = password
        self.pool = ConnectionPool(
            url,
            min_size=min_size,
            max_size=max_size,
            open=False,
            timeout=wait,  # for a free connection, then StoreUnavailable
            name="lanterne",
            kwargs=self._kwargs,
            # A connection is checked (one round trip) before each use: after a
            # restart of PostgreSQL every pooled connection is dead, and a request
            # must get a new one, not an error.
            check=ConnectionPool.check_connection,
        )

    def open(self, timeout: float = 30) -> None:
        """Connect now: a wrong URL or password fails here, not at the first request.

        One plain connection first, so that the error is PostgreSQL's own (the
        pool would only say that it timed out); psycopg.OperationalError.
        """
        psycopg.connect(
            self.url, **{**self._kwargs, "connect_timeout": max(1, int(timeout))}
        ).close()
        self.pool.open(wait=True, timeout=timeout)

    def close(self) -> None:
        self.pool.close()

    def __enter__(self) -> PostgresDatabase:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def connect(self) -> Iterator[psycopg.Connection[tuple[Any, ...]]]:
        """A connection in one transaction: committed on success, rolled back on error.

        PostgreSQL out of reach (down, restarting, no free connection within the
        pool's timeout, a query cut off) is ``StoreUnavailable``, its disk full
        ``StoreFull``: the web layer's 503 and 507. Other errors pass unchanged.
        """
        with self.errors(), self.pool.connection() as conn:
            yield conn

    @staticmethod
    @contextlib.contextmanager
    def errors() -> Iterator[None]:
        """The driver's "cannot reach" errors as the store layer's own (``connect``)."""
        try:
            yield
        except psycopg.errors.DiskFull as exc:
            raise StoreFull("the database") from exc
        except psycopg.OperationalError as exc:  # PoolTimeout is one
            raise StoreUnavailable("the database") from exc

    @contextlib.contextmanager
    def session(self) -> Iterator[psycopg.Connection[tuple[Any, ...]]]:
        """A connection of its own, outside the pool, in autocommit: for what
        lives as long as a session (advisory locks held while a request works).
        Errors as ``connect``'s."""
        with self.errors(), psycopg.connect(self.url, autocommit=True, **self._kwargs) as conn:
            yield conn

    def prepare(self) -> list[Migration]:
        with self.connect() as conn:
            return prepare(conn)

    def schema_version(self) -> int | None:
        with self.connect() as conn:
            return _version(conn)


def _version(conn: psycopg.Connection[tuple[Any, ...]]) -> int | None:
    row = conn.execute("SELECT to_regclass('meta') IS NOT NULL").fetchone()
    if not row or not row[0]:
        return None
    found = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    if found is None:
        return None
    try:
        return int(str(found[0]))
    except ValueError as exc:
        raise MigrationError(f"meta.schema_version is not a number: {found[0]!r}") from exc


def prepare(
    conn: psycopg.Connection[tuple[Any, ...]],
    *,
    migrations: tuple[Migration, ...] = MIGRATIONS,
    target: int = SCHEMA_VERSION,
    schema: str = POSTGRES_SCHEMA,
    baseline: int = POSTGRES_BASELINE,
) -> list[Migration]:
    """Create or upgrade the database; the steps applied (empty if none).

    Runs in one transaction of its own (``conn`` must not be in one yet);
    ``migrations``, ``target``, ``schema`` and ``baseline`` are seams for tests.
    """
    try:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
            return _upgrade(conn, migrations, target, schema, baseline)
    except psycopg.Error as exc:
        raise MigrationError(f"PostgreSQL: {exc}") from exc


def _upgrade(
    conn: psycopg.Connection[tuple[Any, ...]],
    migrations: tuple[Migration, ...],
    target: int,
    schema: str,
    baseline: int,
) -> list[Migration]:
    version = _version(conn)
    if version is None:
        tables = conn.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema()"
        ).fetchone()
        if tables and tables[0]:
            raise MigrationError("the database has tables but no schema version: not Lanterne's?")
        conn.execute(schema.encode())  # several statements, no parameters
        _set_version(conn, baseline)
        version = baseline
        fresh = True
    else:
        fresh = False
    if version > target:
        raise MigrationError(
            f"the database is at schema version {version}, newer than this release"
            f" ({target}): install the newer Lanterne again, or restore a backup"
        )
    if version < baseline:
        raise MigrationError(f"unknown schema version {version} for PostgreSQL")
    applied = [m for m in migrations if m.to_version > version]
    for step in applied:
        if step.postgres is None:
            raise MigrationError(f"migration {step.to_version} has no PostgreSQL version")
        conn.execute(step.postgres.encode())
    _set_version(conn, target)
    return [] if fresh and not applied else applied


def _set_version(conn: psycopg.Connection[tuple[Any, ...]], version: int) -> None:
    conn.execute(
        "INSERT INTO meta(key, value) VALUES ('schema_version', %s)"
        " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        (str(version),),
    )


_WATCHED_SETTINGS = (
    "track_commit_timestamp",
    "log_statement",
    "log_min_duration_statement",
    "archive_mode",
)


@dataclass(frozen=True)
class DatabaseFinding:
    """One result of ``check_database``: ``ok`` False is a failure, ``warn`` advice."""

    item: str
    ok: bool
    message: str
    warn: bool = False


def check_database(
    url: str, target: int = SCHEMA_VERSION, timeout: float = 10, password: str | None = None
) -> list[DatabaseFinding]:
    """What ``lanterne-server check`` says about the PostgreSQL database at ``url``."""
    db = PostgresDatabase(url, max_size=1, password=password)
    try:
        db.open(timeout)
        with db.connect() as conn:
            version = _version(conn)
            rows = conn.execute(
                "SELECT name, setting FROM pg_settings WHERE name = ANY(%s)",
                (list(_WATCHED_SETTINGS),),
            ).fetchall()
            settings = {str(name): str(value) for name, value in rows}
    except (psycopg.Error, MigrationError, OSError) as exc:
        return [DatabaseFinding("database", False, f"cannot be used: {exc}")]
    finally:
        db.close()
    found = [DatabaseFinding("database", True, "connected")]
    if version == target:
        found.append(DatabaseFinding("schema", True, f"version {version}"))
    else:
        found.append(
            DatabaseFinding("schema", False, f"version {version}, this release wants {target}")
        )
    if settings.get("track_commit_timestamp") == "on":
        found.append(
            DatabaseFinding(
                "commit times", False, "track_commit_timestamp records each row's time: turn off"
            )
        )
    else:
        found.append(DatabaseFinding("commit times", True, "not recorded"))
    logged = (
        settings.get("log_statement", "none") != "none"
        or int(str(settings.get("log_min_duration_statement", "-1"))) >= 0
    )
    found.append(
        DatabaseFinding(
            "statement logs",
            True,
            "on: the log keeps each statement's time and parameters (ids, days)"
            if logged
            else "off",
            warn=logged,
        )
    )
    if settings.get("archive_mode", "off") != "off":
        found.append(
            DatabaseFinding(
                "WAL archive",
                True,
                "on: archived WAL keeps deleted rows for as long as the archive is kept",
                warn=True,
            )
        )
    return found
