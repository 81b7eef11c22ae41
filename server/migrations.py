"""Schema migrations: bring a database from any earlier release up to ``SCHEMA_VERSION``.

The version lives in ``meta.schema_version``. ``prepare`` runs in ``init`` and
at the start of ``run``:

* a new, empty file gets the current schema (``server.db.SCHEMA``) at once;
* an older database gets each step of ``MIGRATIONS`` after its version, in
  order, all in ONE transaction with the version bump: a failed upgrade
  leaves the database as it was, never half migrated;
* a database newer than this code is refused (an admin rolled the code back:
  running would mean writing rows an older schema does not describe).

Running it again is a no-op, so it is safe at every start. A step is only
ever appended, never edited once released: databases in the field have run it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from server.db import SCHEMA, SCHEMA_VERSION


class MigrationError(Exception):
    """The database cannot be brought to this release's schema; the message says why."""


@dataclass(frozen=True)
class Migration:
    to_version: int
    description: str
    apply: Callable[[sqlite3.Connection], None]


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


# Version 1 is the schema of the first release (the source interface only).
MIGRATIONS: tuple[Migration, ...] = (
    Migration(2, "triage and notes tables (journalist API)", _v2_triage_and_notes),
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
