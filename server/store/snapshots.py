"""The database's side of backup and restore (server/ops/backup.py writes and
reads the archive): a consistent copy, what it refers to, and its checks.

``DatabaseError`` is what every function here raises for a database that
cannot be read; callers outside the store catch it without importing sqlite3.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

DatabaseError = sqlite3.DatabaseError


def snapshot(db_path: Path, dest: Path) -> None:
    """Copy the database to ``dest``: all pages in one step, one read transaction."""
    src = sqlite3.connect(db_path, timeout=30)
    try:
        dst = sqlite3.connect(dest)
        try:
            src.backup(dst)  # all pages in one step: one read transaction, one instant
        finally:
            dst.close()
    finally:
        src.close()


def _referenced(conn: sqlite3.Connection) -> list[str]:
    rows = conn.execute(
        "SELECT id FROM objects UNION SELECT object_id FROM replies"
        " UNION SELECT object_id FROM notes ORDER BY 1"
    )
    return [r[0] for r in rows]


def schema_and_objects(db_path: Path) -> tuple[int | None, list[str]]:
    """A snapshot's recorded schema version and every object id its rows name."""
    conn = sqlite3.connect(db_path)
    try:
        version = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        return (int(version[0]) if version else None), _referenced(conn)
    finally:
        conn.close()


def drop_missing(db_path: Path, missing: list[str]) -> list[str]:
    """Remove from a snapshot what refers to objects deleted during the backup
    (deletions in progress); the object ids it still refers to."""
    conn = sqlite3.connect(db_path)
    try:
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA secure_delete = ON")
        conn.execute("CREATE TEMP TABLE gone (id TEXT PRIMARY KEY)")
        conn.executemany("INSERT INTO gone VALUES (?)", [(m,) for m in missing])
        conn.execute(
            "DELETE FROM submissions WHERE id IN"
            " (SELECT submission_id FROM objects WHERE id IN (SELECT id FROM gone))"
        )
        conn.execute("DELETE FROM replies WHERE object_id IN (SELECT id FROM gone)")
        conn.execute("DELETE FROM notes WHERE object_id IN (SELECT id FROM gone)")
        conn.commit()
        return _referenced(conn)
    finally:
        conn.close()


def checked_objects(db_path: Path) -> set[str] | None:
    """A restored database, read only: None if SQLite's integrity check fails,
    else every object id its rows name. ``DatabaseError`` if it cannot be read."""
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        if conn.execute("PRAGMA integrity_check").fetchone() != ("ok",):
            return None
        return set(_referenced(conn))
    finally:
        conn.close()
