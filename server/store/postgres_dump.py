"""The PostgreSQL rows' side of backup and restore (server/ops/backup.py).

A backup holds the rows as an SQLite database in Lanterne's schema, whatever
the backend: the SQLite file itself on an embedded instance, and on
PostgreSQL this logical dump of every Lanterne table, read in ONE
``REPEATABLE READ`` transaction (one instant, as SQLite's online backup is).
So one archive format serves both backends, its checks
(server/store/snapshots.py) and migrations run on it alike, and a backup of
either restores into either.

What the dump holds is what the rows hold: ids, hashes, public keys, days.
Left out, as an embedded backup leaves them out or empties them: the shared
short-lived state (``ephemeral``: sessions and tokens, which a restore ends
anyway) and uploads in progress (``uploads``, ``upload_parts``: their parts are not in the
backup). A table added to the PostgreSQL schema must be named in ``TABLES``
or ``NOT_BACKED_UP`` (``tests/test_backup_scale_out.py`` fails otherwise).

Rows are streamed through a server-side cursor and written in batches, so
memory stays flat whatever the number of rows.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg

from server.store.db import SCHEMA_VERSION
from server.store.migrations import prepare as prepare_sqlite
from server.store.postgres import PostgresDatabase
from server.store.postgres import prepare as prepare_postgres

# In an order that keeps every reference valid: each table after those it names.
TABLES = (
    "journalists",
    "digest_recipients",
    "desks",
    "desk_members",
    "sources",
    "submissions",
    "objects",
    "replies",
    "triage",
    "notes",
)
NOT_BACKED_UP = ("uploads", "upload_parts", "ephemeral")
# Where the SQLite store lists rows by rowid, PostgreSQL has ``seq``: the dump
# writes them in that order, so the restored rowids keep it.
_ORDER = {
    "journalists": "id",
    "digest_recipients": "journalist_id",
    "desks": "seq",
    "desk_members": "desk, journalist_id",
    "sources": "id",
    "submissions": "seq",
    "objects": "seq",
    "replies": "seq",
    "triage": "source_id",
    "notes": "seq",
}
_BATCH = 500


class DumpError(Exception):
    """The rows cannot be dumped or loaded; the message says why."""


# Every table and column name in the statements below comes from TABLES and
# from the schema's own PRAGMA table_info, never from input (the noqa: S608).
def _columns(lite: sqlite3.Connection, table: str) -> list[str]:
    return [str(r[1]) for r in lite.execute(f"PRAGMA table_info({table})")]  # a name from TABLES


def _batches(cursor: Iterator[tuple[Any, ...]]) -> Iterator[list[tuple[Any, ...]]]:
    batch: list[tuple[Any, ...]] = []
    for row in cursor:
        batch.append(row)
        if len(batch) == _BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def dump_to_sqlite(pg: PostgresDatabase, dest: Path) -> None:
    """Write every Lanterne row of ``pg`` into a new SQLite database at ``dest``."""
    prepare_sqlite(dest)  # the current schema, empty
    lite = sqlite3.connect(dest, isolation_level=None)
    try:
        lite.execute("BEGIN")
        with pg.connect() as conn:
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            version = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            if version is None or int(str(version[0])) != SCHEMA_VERSION:
                found = None if version is None else version[0]
                raise DumpError(
                    f"the database is at schema version {found}, this release writes"
                    f" {SCHEMA_VERSION}: run `lanterne-server init` first"
                )
            for key, value in conn.execute(
                "SELECT key, value FROM meta WHERE key <> 'schema_version'"
            ):
                lite.execute("INSERT INTO meta(key, value) VALUES (?, ?)", (key, value))
            for table in TABLES:
                names = _columns(lite, table)
                listed = ", ".join(names)
                marks = ", ".join("?" * len(names))
                with conn.cursor(name=f"dump_{table}") as rows:  # server-side: streamed
                    rows.itersize = _BATCH
                    rows.execute(f"SELECT {listed} FROM {table} ORDER BY {_ORDER[table]}")  # noqa: S608
                    for batch in _batches(iter(rows)):
                        lite.executemany(
                            f"INSERT INTO {table}({listed}) VALUES ({marks})",  # noqa: S608
                            batch,
                        )
            # The journalists' ids are never given again: carry the sequence on.
            last = conn.execute(
                "SELECT pg_sequence_last_value("
                "pg_get_serial_sequence('journalists', 'id')::regclass)"
            ).fetchone()
        used = int(last[0]) if last and last[0] is not None else 0
        if used:
            lite.execute("DELETE FROM sqlite_sequence WHERE name = 'journalists'")
            lite.execute(
                "INSERT INTO sqlite_sequence(name, seq) VALUES ('journalists', ?)", (used,)
            )
        lite.execute("COMMIT")
    except BaseException:
        if lite.in_transaction:
            lite.execute("ROLLBACK")
        raise
    finally:
        lite.close()


def is_empty(pg: PostgresDatabase) -> bool:
    """No Lanterne row in ``pg``: no schema yet, or one with no row in any table
    a backup holds and no instance value but the schema version."""
    with pg.connect() as conn:
        found = conn.execute("SELECT to_regclass('meta') IS NOT NULL").fetchone()
        if not found or not found[0]:
            return True
        return _empty(conn)


def _empty(conn: psycopg.Connection[tuple[Any, ...]]) -> bool:
    for table in TABLES:
        exists = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (table,)).fetchone()
        if not exists or not exists[0]:
            continue  # a schema from an older release, which prepare() will upgrade
        row = conn.execute(f"SELECT EXISTS (SELECT 1 FROM {table})").fetchone()  # noqa: S608
        if row and row[0]:
            return False
    row = conn.execute(
        "SELECT EXISTS (SELECT 1 FROM meta WHERE key <> 'schema_version')"
    ).fetchone()
    return not (row and row[0])


def load_from_sqlite(pg: PostgresDatabase, src: Path) -> None:
    """Put every row of the SQLite database ``src`` (at this release's schema
    version) into ``pg``, which must hold no Lanterne row: all in one
    transaction, with the schema created or migrated first, so that a failure
    leaves ``pg`` as it was."""
    lite = sqlite3.connect(f"file:{src}?mode=ro", uri=True)
    try:
        with pg.connect() as conn, conn.transaction():
            # A savepoint inside this transaction; its advisory lock is held to the
            # end of it, so no instance starting meanwhile writes in between.
            prepare_postgres(conn)
            if not _empty(conn):
                raise DumpError(
                    "the database already holds Lanterne rows: restore into an empty one"
                )
            for key, value in lite.execute(
                "SELECT key, value FROM meta WHERE key <> 'schema_version'"
            ):
                conn.execute("INSERT INTO meta(key, value) VALUES (%s, %s)", (key, value))
            for table in TABLES:
                names = _columns(lite, table)
                listed = ", ".join(names)
                marks = ", ".join(["%s"] * len(names))
                overriding = " OVERRIDING SYSTEM VALUE" if table == "journalists" else ""
                order = "id" if table == "journalists" else "rowid"
                with conn.cursor() as cur:
                    for batch in _batches(
                        lite.execute(f"SELECT {listed} FROM {table} ORDER BY {order}")  # noqa: S608
                    ):
                        cur.executemany(
                            f"INSERT INTO {table}({listed}){overriding} VALUES ({marks})",  # noqa: S608
                            batch,
                        )
            seq = lite.execute(
                "SELECT seq FROM sqlite_sequence WHERE name = 'journalists'"
            ).fetchone()
            top = lite.execute("SELECT max(id) FROM journalists").fetchone()
            used = max(int(seq[0]) if seq else 0, int(top[0] or 0) if top else 0)
            if used:
                conn.execute(
                    "SELECT setval(pg_get_serial_sequence('journalists', 'id'), %s, true)", (used,)
                )
    finally:
        lite.close()
