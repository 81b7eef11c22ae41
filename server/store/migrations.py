"""Schema migrations: bring a database from any earlier release up to ``SCHEMA_VERSION``.

The version lives in ``meta.schema_version``. ``prepare`` runs in ``init`` and
at the start of ``run``:

* a new, empty file gets the current schema (``server.store.db.SCHEMA``) at once;
* an older database gets each step of ``MIGRATIONS`` after its version, in
  order, all in ONE transaction with the version bump: a failed upgrade
  leaves the database as it was, never half migrated;
* a database newer than this code is refused (an admin rolled the code back:
  running would mean writing rows an older schema does not describe).

Running it again is a no-op, so it is safe at every start. A step is only
ever appended, never edited once released: databases in the field have run it.
"""

from __future__ import annotations

import secrets
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from server.store.db import SCHEMA, SCHEMA_VERSION, UPLOADS_SCHEMA


class MigrationError(Exception):
    """The database cannot be brought to this release's schema; the message says why."""


@dataclass(frozen=True)
class Migration:
    to_version: int
    description: str
    apply: Callable[[sqlite3.Connection], None]
    # The same step for PostgreSQL (server.store.postgres), whose databases start
    # at POSTGRES_BASELINE: required of every step after it, none before.
    postgres: str | None = None


def _statements(script: str) -> Iterator[str]:
    """Split SQL into statements: executescript() would commit our transaction first."""
    buf = ""
    for line in script.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            yield buf.strip()
            buf = ""
    if buf.strip() and not buf.strip().startswith("--"):
        raise MigrationError(f"incomplete SQL statement: {buf.strip()[:60]!r}")


def _run(conn: sqlite3.Connection, script: str) -> None:
    for statement in _statements(script):
        conn.execute(statement)


def _v2_triage_and_notes(conn: sqlite3.Connection) -> None:
    # The journalist API's shared triage state and notes (issue 5).
    _run(
        conn,
        """
        CREATE TABLE triage (
            source_id TEXT PRIMARY KEY REFERENCES sources(id) ON DELETE CASCADE,
            seen      INTEGER NOT NULL DEFAULT 0,
            starred   INTEGER NOT NULL DEFAULT 0,
            tags      TEXT NOT NULL DEFAULT '[]',
            assignee  INTEGER REFERENCES journalists(id) ON DELETE SET NULL
        );
        CREATE TABLE notes (
            id            TEXT PRIMARY KEY,
            source_id     TEXT NOT NULL REFERENCES sources(id) ON DELETE CASCADE,
            object_id     TEXT NOT NULL,
            journalist_id INTEGER REFERENCES journalists(id) ON DELETE SET NULL,
            written_on    TEXT NOT NULL
        );
        CREATE INDEX notes_by_source ON notes(source_id);
        """,
    )


def _v3_source_lifecycle_and_journalist_ids(conn: sqlite3.Connection) -> None:
    # Issue 11. Tables are rebuilt (SQLite cannot drop a NOT NULL), foreign keys
    # being off during migrations; prepare() runs foreign_key_check afterwards.
    # * journalists: AUTOINCREMENT, so a removed journalist's id is never reused.
    # * sources: login_hash and reply_key nullable, plus deleted_by_source: a
    #   source deleting their account keeps their row, without login or reply material.
    # * submissions: source_id NOT NULL, RESTRICT. Older releases unlinked a
    #   deleted account's submissions (source_id NULL), where no journalist could
    #   see or delete them: each such submission gets a source row of its own,
    #   marked deleted by the source (which of them came from the same source
    #   was not kept, so they are not grouped), dated by the submission's day.
    _run(
        conn,
        """
        CREATE TABLE journalists_v3 (
            id             INTEGER PRIMARY KEY AUTOINCREMENT,
            name           TEXT NOT NULL UNIQUE,
            encryption_key BLOB NOT NULL,
            signing_key    BLOB NOT NULL,
            role           TEXT NOT NULL DEFAULT 'journalist'
                           CHECK (role IN ('journalist', 'admin')),
            added_on       TEXT NOT NULL
        );
        INSERT INTO journalists_v3(id, name, encryption_key, signing_key, role, added_on)
            SELECT id, name, encryption_key, signing_key, role, added_on FROM journalists;
        DROP TABLE journalists;
        ALTER TABLE journalists_v3 RENAME TO journalists;
        CREATE TABLE sources_v3 (
            id                TEXT PRIMARY KEY,
            login_hash        BLOB UNIQUE,
            reply_key         BLOB,
            created_on        TEXT NOT NULL,
            last_active_on    TEXT NOT NULL,
            deleted_by_source INTEGER NOT NULL DEFAULT 0 CHECK (deleted_by_source IN (0, 1)),
            CHECK ((deleted_by_source = 0) = (login_hash IS NOT NULL AND reply_key IS NOT NULL))
        );
        INSERT INTO sources_v3(id, login_hash, reply_key, created_on, last_active_on)
            SELECT id, login_hash, reply_key, created_on, last_active_on FROM sources;
        DROP TABLE sources;
        ALTER TABLE sources_v3 RENAME TO sources;
        """,
    )
    orphans = conn.execute(
        "SELECT id, received_on FROM submissions WHERE source_id IS NULL ORDER BY rowid"
    ).fetchall()
    for submission_id, day in orphans:
        source_id = secrets.token_hex(16)  # the form of server.store.objects.new_id
        conn.execute(
            "INSERT INTO sources(id, created_on, last_active_on, deleted_by_source)"
            " VALUES (?, ?, ?, 1)",
            (source_id, day, day),
        )
        conn.execute(
            "UPDATE submissions SET source_id = ? WHERE id = ?", (source_id, submission_id)
        )
    _run(
        conn,
        """
        CREATE TABLE submissions_v3 (
            id          TEXT PRIMARY KEY,
            source_id   TEXT NOT NULL REFERENCES sources(id) ON DELETE RESTRICT,
            received_on TEXT NOT NULL
        );
        INSERT INTO submissions_v3(id, source_id, received_on)
            SELECT id, source_id, received_on FROM submissions ORDER BY rowid;
        DROP TABLE submissions;
        ALTER TABLE submissions_v3 RENAME TO submissions;
        """,
    )


def _v4_hybrid_keys(conn: sqlite3.Connection) -> None:
    _run(conn, "ALTER TABLE journalists ADD COLUMN hybrid_key BLOB;")


def _v5_shared_ephemeral(conn: sqlite3.Connection) -> None:
    """Nothing in lanterne.sqlite3: on SQLite the short-lived state has a file of
    its own, ``ephemeral.sqlite`` (server/store/ephemeral.py), made by its store."""


# Sessions, throttles, tokens and spent challenges where every instance finds them
# (server/store/postgres_ephemeral.py). UNLOGGED: never in the WAL (so never in a
# WAL archive or on a streaming replica), emptied by PostgreSQL after a crash,
# which logs sources out, the safe failure. Releases before this step created
# the table at start, outside the list, with a TEXT until_day: it is dropped and
# made again (nothing in it outlives a day; the upgrade logs everyone out once).
_V5_POSTGRES = """
DROP TABLE IF EXISTS ephemeral;
DROP SEQUENCE IF EXISTS ephemeral_seq;
CREATE UNLOGGED TABLE ephemeral (
    kind      TEXT NOT NULL,
    key       BYTEA NOT NULL,
    value     BYTEA NOT NULL,
    tier      INTEGER NOT NULL DEFAULT 0,
    seq       BIGINT NOT NULL,
    until_day day NOT NULL,
    PRIMARY KEY (kind, key)
);
CREATE UNLOGGED SEQUENCE ephemeral_seq;
CREATE INDEX ephemeral_order ON ephemeral(kind, tier, seq);
"""


_DIGEST_RECIPIENTS = """
CREATE TABLE IF NOT EXISTS digest_recipients (
    journalist_id INTEGER PRIMARY KEY REFERENCES journalists(id) ON DELETE CASCADE,
    email         TEXT NOT NULL,
    last_sent_on  TEXT
);
"""


def _v6_digest_recipients(conn: sqlite3.Connection) -> None:
    _run(conn, _DIGEST_RECIPIENTS)


def _v7_desks(conn: sqlite3.Connection) -> None:
    # Issue 16 §1: desks, their members, journalists receiving every desk, and
    # the desk each source chose (NULL: the whole newsroom, as before desks).
    _run(
        conn,
        """
        CREATE TABLE desks (
            name         TEXT PRIMARY KEY,
            titles       TEXT NOT NULL,
            details      TEXT NOT NULL
        );
        CREATE TABLE desk_members (
            desk          TEXT NOT NULL REFERENCES desks(name) ON DELETE CASCADE,
            journalist_id INTEGER NOT NULL REFERENCES journalists(id) ON DELETE CASCADE,
            PRIMARY KEY (desk, journalist_id)
        );
        ALTER TABLE journalists ADD COLUMN
            all_desks INTEGER NOT NULL DEFAULT 0 CHECK (all_desks IN (0, 1));
        ALTER TABLE sources ADD COLUMN desk TEXT REFERENCES desks(name) ON DELETE RESTRICT;
        CREATE INDEX sources_by_desk ON sources(desk);
        """,
    )


_V7_POSTGRES = """
CREATE TABLE desks (
    seq          BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
    name         TEXT PRIMARY KEY,
    titles       TEXT NOT NULL,
    details      TEXT NOT NULL
);
CREATE TABLE desk_members (
    desk          TEXT NOT NULL REFERENCES desks(name) ON DELETE CASCADE,
    journalist_id INTEGER NOT NULL REFERENCES journalists(id) ON DELETE CASCADE,
    PRIMARY KEY (desk, journalist_id)
);
ALTER TABLE journalists ADD COLUMN
    all_desks INTEGER NOT NULL DEFAULT 0 CHECK (all_desks IN (0, 1));
ALTER TABLE sources ADD COLUMN desk TEXT REFERENCES desks(name) ON DELETE RESTRICT;
CREATE INDEX sources_by_desk ON sources(desk);
"""


_V8_UPLOAD_COLUMNS = (
    ("s3_upload", "TEXT"),
    ("staging", "TEXT"),
    ("staged", "INTEGER NOT NULL DEFAULT 0"),
    ("next_part", "INTEGER NOT NULL DEFAULT 1"),
    ("assembled", "INTEGER NOT NULL DEFAULT 0"),
)


def _v8_shared_uploads(conn: sqlite3.Connection) -> None:
    # Uploads whose bytes are S3 parts (server/store/shared_uploads.py); the
    # SQLite database keeps the same columns, empty, so both schemas stay one.
    have = {r[1] for r in conn.execute("PRAGMA table_info(uploads)")}
    if have:
        for name, kind in _V8_UPLOAD_COLUMNS:
            if name not in have:
                conn.execute(f"ALTER TABLE uploads ADD COLUMN {name} {kind}")
    _run(conn, UPLOADS_SCHEMA)


_V8_POSTGRES = """
ALTER TABLE uploads ADD COLUMN s3_upload TEXT;
ALTER TABLE uploads ADD COLUMN staging TEXT;
ALTER TABLE uploads ADD COLUMN staged BIGINT NOT NULL DEFAULT 0;
ALTER TABLE uploads ADD COLUMN next_part INTEGER NOT NULL DEFAULT 1;
ALTER TABLE uploads ADD COLUMN assembled SMALLINT NOT NULL DEFAULT 0;
CREATE TABLE upload_parts (
    upload_id TEXT NOT NULL REFERENCES uploads(id) ON DELETE CASCADE,
    number    INTEGER NOT NULL,
    start     BIGINT NOT NULL,
    size      BIGINT NOT NULL,
    etag      TEXT NOT NULL,
    PRIMARY KEY (upload_id, number)
);
"""


def _v9_channel_deadlines_and_retention(conn: sqlite3.Connection) -> None:
    _run(conn, _V9_SQL)


# Issue 16 (server/domain/channel.py): the days an acknowledgement and a
# feedback were first sent, a per-source feedback period (6 months, external
# authorities' justified cases), the day a journalist kept the source until,
# and the source's random expiry shift (days, drawn once). Days only.
_V9_SQL = """
ALTER TABLE sources ADD COLUMN acknowledged_on TEXT;
ALTER TABLE sources ADD COLUMN feedback_on TEXT;
ALTER TABLE sources ADD COLUMN feedback_months INTEGER CHECK (feedback_months BETWEEN 1 AND 12);
ALTER TABLE sources ADD COLUMN kept_until TEXT;
ALTER TABLE sources ADD COLUMN expiry_shift INTEGER CHECK (expiry_shift BETWEEN -30 AND 30);
"""


# Version 1 is the schema of the first release (the source interface only).
MIGRATIONS: tuple[Migration, ...] = (
    Migration(2, "triage and notes tables (journalist API)", _v2_triage_and_notes),
    Migration(
        3,
        "source lifecycle (deleted accounts keep their submissions), journalist ids never reused",
        _v3_source_lifecycle_and_journalist_ids,
    ),
    # PostgreSQL databases start at 4 (server.store.postgres.POSTGRES_BASELINE).
    Migration(4, "hybrid post-quantum journalist keys", _v4_hybrid_keys),
    Migration(
        5,
        "the instances' shared short-lived state (PostgreSQL: an UNLOGGED table)",
        _v5_shared_ephemeral,
        postgres=_V5_POSTGRES,
    ),
    Migration(
        6,
        "the daily digest's addresses and last days (issue 16 section 4)",
        _v6_digest_recipients,
        postgres="""
        CREATE TABLE digest_recipients (
            journalist_id INTEGER PRIMARY KEY REFERENCES journalists(id) ON DELETE CASCADE,
            email         TEXT NOT NULL,
            last_sent_on  day
        );
        """,
    ),
    Migration(7, "desks and the desk of each source", _v7_desks, postgres=_V7_POSTGRES),
    Migration(
        8,
        "resumable uploads shared by several instances (S3 parts, staging object)",
        _v8_shared_uploads,
        postgres=_V8_POSTGRES,
    ),
    Migration(
        9,
        "official channel: acknowledgement and feedback days, retention",
        _v9_channel_deadlines_and_retention,
        postgres=_V9_SQL.replace(" TEXT;", " day;"),
    ),
)


def _check_steps(migrations: tuple[Migration, ...], target: int) -> None:
    versions = [m.to_version for m in migrations]
    if versions != list(range(2, target + 1)):
        raise MigrationError(f"migration steps {versions} do not lead from 1 to {target}")


def current_version(path: Path) -> int | None:
    """The database's schema version; None for a file with no Lanterne schema yet."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return _version(conn)
    finally:
        conn.close()


def _version(conn: sqlite3.Connection) -> int | None:
    has_meta = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'"
    ).fetchone()
    if not has_meta:
        return None
    row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    if row is None:
        return None
    try:
        return int(row[0])
    except ValueError as exc:
        raise MigrationError(f"meta.schema_version is not a number: {row[0]!r}") from exc


def prepare(
    path: Path,
    *,
    migrations: tuple[Migration, ...] = MIGRATIONS,
    target: int = SCHEMA_VERSION,
    schema: str = SCHEMA,
) -> list[Migration]:
    """Create or upgrade the database at ``path``; the steps applied (empty if none).

    ``migrations``, ``target`` and ``schema`` are seams for tests.
    """
    _check_steps(migrations, target)
    conn = sqlite3.connect(path, timeout=30, isolation_level=None)
    try:
        # WAL cannot be switched on inside a transaction; it persists in the file.
        conn.execute("PRAGMA journal_mode = WAL")
        # Checked before and after every step: a migration must not break references.
        conn.execute("PRAGMA foreign_keys = OFF")
        conn.execute("BEGIN IMMEDIATE")  # one upgrader at a time; writers wait
        try:
            applied = _upgrade(conn, migrations, target, schema)
            problems = conn.execute("PRAGMA foreign_key_check").fetchall()
            if problems:
                raise MigrationError(f"foreign keys broken after migrating: {problems[:5]}")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return applied
    except sqlite3.DatabaseError as exc:
        raise MigrationError(f"{path}: {exc}") from exc
    finally:
        conn.close()


def _upgrade(
    conn: sqlite3.Connection, migrations: tuple[Migration, ...], target: int, schema: str
) -> list[Migration]:
    version = _version(conn)
    if version is None:
        tables = conn.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table'").fetchone()
        if tables[0]:
            raise MigrationError("the database has tables but no schema version: not Lanterne's?")
        _run(conn, schema)
        _set_version(conn, target)
        return []
    if version > target:
        raise MigrationError(
            f"the database is at schema version {version}, newer than this release"
            f" ({target}): install the newer Lanterne again, or restore a backup"
        )
    if version < 1:
        raise MigrationError(f"unknown schema version {version}")
    applied = [m for m in migrations if m.to_version > version]
    for step in applied:
        step.apply(conn)
    _set_version(conn, target)
    return applied


def _set_version(conn: sqlite3.Connection, version: int) -> None:
    conn.execute(
        "INSERT INTO meta(key, value) VALUES ('schema_version', ?)"
        " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        (str(version),),
    )
