"""The SQLite database: what the server knows, kept to the minimum (DESIGN §7).

No plaintext, no IP addresses, no user agents; dates are days. Each method
opens its own short connection, so the database can be used from worker
threads and the event loop alike without sharing a connection.

A full disk must not stop reads (docs/RELIABILITY.md, "Full disk"). In WAL
mode every connection needs the 32 KiB shared-memory file (``-shm``), and
SQLite deletes it, with the WAL, when the last connection of the database
closes: on an idle server each request recreated it, and with less than
32 KiB free every read failed (``SQLITE_IOERR_SHMSIZE``). A serving process
therefore keeps one idle connection open (``hold_open``), so the file is
made once, at start. The WAL is still emptied at quiet moments, as the last
close did: a connection that wrote while no other of its process was open
copies the WAL into the database and cuts it to nothing (a checkpoint that
never waits; under load SQLite's own checkpoint every 1000 pages bounds the
WAL, as before).
Reads (``read``) take no write lock and write nothing; temporary tables and
sorts stay in memory.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import sqlite3
import threading
import weakref
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from server.store import file_times
from server.store.protocols import (
    DeskProblem,
    DeskRow,
    DigestSubscription,
    JournalistRow,
    ObjectRow,
    ReplyRow,
    SourceRow,
)

# Bumped with each step appended to server.store.migrations.MIGRATIONS.
SCHEMA_VERSION = 9

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
-- Journalists are known only by their public keys. The journalist API (its
-- own listener, server/web/journalist_api) authenticates requests with signing_key.
-- AUTOINCREMENT: an id is never given again after its journalist is removed
-- (an API token names one).
CREATE TABLE IF NOT EXISTS journalists (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    name           TEXT NOT NULL UNIQUE,
    encryption_key BLOB NOT NULL,
    signing_key    BLOB NOT NULL,
    role           TEXT NOT NULL DEFAULT 'journalist' CHECK (role IN ('journalist', 'admin')),
    added_on       TEXT NOT NULL,
    -- The X-Wing public key (1216 bytes) of a hybrid key; NULL for an
    -- X25519-only key. Last, because migration 4 adds it with ALTER TABLE.
    hybrid_key     BLOB,
    -- Receives what is sent to every desk (migration 7).
    all_desks      INTEGER NOT NULL DEFAULT 0 CHECK (all_desks IN (0, 1))
);
-- Desks (docs/DESKS.md): a source's first submission picks one, and what it
-- sends is encrypted to the desk's members (and all_desks journalists) only.
-- titles and details (descriptions): JSON objects, language code -> text.
CREATE TABLE IF NOT EXISTS desks (
    name         TEXT PRIMARY KEY,
    titles       TEXT NOT NULL,
    details      TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS desk_members (
    desk          TEXT NOT NULL REFERENCES desks(name) ON DELETE CASCADE,
    journalist_id INTEGER NOT NULL REFERENCES journalists(id) ON DELETE CASCADE,
    PRIMARY KEY (desk, journalist_id)
);
-- A source is a hash of its login id and the public half of its reply key.
-- A source who deletes their account keeps a row with neither (they can never
-- log in again, nothing can be encrypted to them) and the flag set, so that
-- what they sent stays listed for the journalists (server/domain/source_lifecycle.py).
CREATE TABLE IF NOT EXISTS sources (
    id                TEXT PRIMARY KEY,
    login_hash        BLOB UNIQUE,
    reply_key         BLOB,
    created_on        TEXT NOT NULL,
    last_active_on    TEXT NOT NULL,
    deleted_by_source INTEGER NOT NULL DEFAULT 0 CHECK (deleted_by_source IN (0, 1)),
    -- The desk the first submission chose; NULL: the whole newsroom (migration 7).
    desk              TEXT REFERENCES desks(name) ON DELETE RESTRICT,
    -- An official channel's days (server/domain/channel.py), added by migration 9:
    -- the first acknowledgement and feedback sent, a per-source feedback period,
    -- the day a journalist kept the source until, and its random expiry shift.
    acknowledged_on   TEXT,
    feedback_on       TEXT,
    feedback_months   INTEGER CHECK (feedback_months BETWEEN 1 AND 12),
    kept_until        TEXT,
    expiry_shift      INTEGER CHECK (expiry_shift BETWEEN -30 AND 30),
    CHECK ((deleted_by_source = 0) = (login_hash IS NOT NULL AND reply_key IS NOT NULL))
);
CREATE INDEX IF NOT EXISTS sources_by_desk ON sources(desk);
-- A row here means every object of the submission is complete on disk. Every
-- submission has its source; only a journalist deletes either (RESTRICT).
CREATE TABLE IF NOT EXISTS submissions (
    id          TEXT PRIMARY KEY,
    source_id   TEXT NOT NULL REFERENCES sources(id) ON DELETE RESTRICT,
    received_on TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS objects (
    id            TEXT PRIMARY KEY,
    submission_id TEXT NOT NULL REFERENCES submissions(id) ON DELETE CASCADE,
    kind          TEXT NOT NULL CHECK (kind IN ('manifest', 'message', 'file')),
    size          INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS objects_by_submission ON objects(submission_id);
-- Reply bodies are envelope files in the object store, to the source's reply key.
CREATE TABLE IF NOT EXISTS replies (
    id            TEXT PRIMARY KEY,
    source_id     TEXT NOT NULL REFERENCES sources(id) ON DELETE CASCADE,
    object_id     TEXT NOT NULL,
    journalist_id INTEGER REFERENCES journalists(id) ON DELETE SET NULL,
    sent_on       TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS replies_by_source ON replies(source_id);
-- The newsroom's shared triage state and notes (journalist API). Note bodies
-- are envelopes to every journalist, in the object store.
CREATE TABLE IF NOT EXISTS triage (
    source_id TEXT PRIMARY KEY REFERENCES sources(id) ON DELETE CASCADE,
    seen      INTEGER NOT NULL DEFAULT 0,
    starred   INTEGER NOT NULL DEFAULT 0,
    tags      TEXT NOT NULL DEFAULT '[]',
    assignee  INTEGER REFERENCES journalists(id) ON DELETE SET NULL
);
CREATE TABLE IF NOT EXISTS notes (
    id            TEXT PRIMARY KEY,
    source_id     TEXT NOT NULL REFERENCES sources(id) ON DELETE CASCADE,
    object_id     TEXT NOT NULL,
    journalist_id INTEGER REFERENCES journalists(id) ON DELETE SET NULL,
    written_on    TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS notes_by_source ON notes(source_id);
-- The daily digest (server/domain/digest.py): the address a journalist asked
-- to be told at, and the last day their digest went out (days only).
CREATE TABLE IF NOT EXISTS digest_recipients (
    journalist_id INTEGER PRIMARY KEY REFERENCES journalists(id) ON DELETE CASCADE,
    email         TEXT NOT NULL,
    last_sent_on  TEXT
);
"""

# Uploads in progress on the JavaScript path (server/store/uploads.py): ciphertext
# lengths and progress only, gone at commit or after a day without activity.
# ``owner_hash`` is SHA-256 of the browser's upload cookie; ``active_on`` is
# the day (UTC) of the last activity: finer times live in memory only. Kept as
# its own script because ``UploadStore.prepare`` runs it at every start: it is
# transient state, so a database older than this table simply gains it, and
# one with the former ``active_minute`` column is converted there.
UPLOADS_SCHEMA = """
CREATE TABLE IF NOT EXISTS uploads (
    id         TEXT PRIMARY KEY,
    owner_hash BLOB NOT NULL,
    length     INTEGER NOT NULL,
    received   INTEGER NOT NULL DEFAULT 0,
    active_on  TEXT NOT NULL,
    s3_upload  TEXT,
    staging    TEXT,
    staged     INTEGER NOT NULL DEFAULT 0,
    next_part  INTEGER NOT NULL DEFAULT 1,
    assembled  INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS uploads_by_owner ON uploads(owner_hash);
CREATE TABLE IF NOT EXISTS upload_parts (
    upload_id TEXT NOT NULL REFERENCES uploads(id) ON DELETE CASCADE,
    number    INTEGER NOT NULL,
    start     INTEGER NOT NULL,
    size      INTEGER NOT NULL,
    etag      TEXT NOT NULL,
    PRIMARY KEY (upload_id, number)
);
"""
# The columns after ``active_on`` and ``upload_parts`` serve only the store
# shared by several instances (server/store/shared_uploads.py: the bytes in an
# S3 bucket); here they stay empty. One schema for both databases.
SCHEMA += UPLOADS_SCHEMA


class Database:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._anchor: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        self._in_use = 0  # connections of this object open now, the held one aside

    def hold_open(self) -> None:
        """Keep one idle connection for as long as this object lives, so that the
        shared-memory file is not deleted and remade between requests (module doc)."""
        if self._anchor is None:
            conn = sqlite3.connect(
                self.path, timeout=30, isolation_level=None, check_same_thread=False
            )
            # Opens the WAL index; fetchall() ends the statement: no transaction stays open.
            conn.execute("SELECT count(*) FROM sqlite_master").fetchall()
            self._anchor = conn
            file_times.stamp_sqlite(self.path)
            # Closed before the interpreter goes: the last close deletes the WAL and
            # shared-memory files, which moves the directory's time; release() stamps it.
            atexit.register(_release_at_exit, weakref.ref(self))

    def release(self) -> None:
        if self._anchor is not None:
            self._anchor.close()
            self._anchor = None
            file_times.stamp_sqlite(self.path)

    def _open(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        try:
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute("PRAGMA secure_delete = ON")  # deleted rows are zeroed, not left behind
            conn.execute("PRAGMA temp_store = MEMORY")  # sorts and temporary tables: no files
        except BaseException:
            conn.close()
            raise
        with self._lock:
            self._in_use += 1
        return conn

    def _close(self, conn: sqlite3.Connection) -> None:
        with self._lock:
            self._in_use -= 1
        conn.close()
        file_times.stamp_sqlite(self.path)

    def _last_in_use(self) -> bool:
        with self._lock:
            return self._in_use == 1

    @contextlib.contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
        """A connection in one transaction: committed on success, rolled back on error.

        Once it is closed, the database's files (WAL and shared memory included,
        which even reads write to) and the data directory are stamped to the day.
        """
        conn = self._open()
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            # What the last close did before a connection was held: only when no
            # other connection of this process is open, so a busy server does not
            # pay a checkpoint per write (the WAL then empties at the next quiet moment).
            if conn.total_changes and self._last_in_use():
                _empty_wal(conn)
        finally:
            self._close(conn)

    @contextlib.contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """A connection that only reads: one consistent snapshot, no write lock
        (writers do not wait for it), and nothing written, so it works on a full disk."""
        conn = self._open()
        try:
            conn.execute("PRAGMA query_only = ON")
            conn.execute("BEGIN")
            try:
                yield conn
            finally:
                conn.execute("ROLLBACK")
        finally:
            self._close(conn)

    def create(self) -> None:
        """Create the schema, or migrate an older database to it (idempotent).

        Raises ``server.store.migrations.MigrationError`` for a database newer than this code.
        """
        # Imported here: migrations imports SCHEMA from this module.
        from server.store.migrations import prepare

        try:
            prepare(self.path)
        finally:
            file_times.stamp_sqlite(self.path)

    # Journalists

    def add_journalist(
        self,
        name: str,
        encryption_key: bytes,
        signing_key: bytes,
        role: str,
        day: str,
        hybrid_key: bytes | None = None,
    ) -> None:
        with self.connect() as conn:
            conn.execute(
                "INSERT INTO journalists(name, encryption_key, signing_key, role, added_on,"
                " hybrid_key) VALUES (?, ?, ?, ?, ?, ?)"
                " ON CONFLICT(name) DO UPDATE SET encryption_key = excluded.encryption_key,"
                " signing_key = excluded.signing_key, role = excluded.role,"
                " hybrid_key = excluded.hybrid_key",
                (name, encryption_key, signing_key, role, day, hybrid_key),
            )

    def remove_journalist(self, name: str) -> bool:
        with self.connect() as conn:
            return conn.execute("DELETE FROM journalists WHERE name = ?", (name,)).rowcount > 0

    def journalists(self) -> list[JournalistRow]:
        with self.read() as conn:
            rows = conn.execute(
                "SELECT id, name, encryption_key, signing_key, role, hybrid_key, all_desks"
                " FROM journalists ORDER BY name"
            ).fetchall()
        return [_journalist(row) for row in rows]

    def journalist(self, journalist_id: int) -> JournalistRow | None:
        with self.read() as conn:
            row = conn.execute(
                "SELECT id, name, encryption_key, signing_key, role, hybrid_key, all_desks"
                " FROM journalists WHERE id = ?",
                (journalist_id,),
            ).fetchone()
        return _journalist(row) if row else None

    def journalist_named(self, name: str) -> JournalistRow | None:
        with self.read() as conn:
            row = conn.execute(
                "SELECT id, name, encryption_key, signing_key, role, hybrid_key, all_desks"
                " FROM journalists WHERE name = ?",
                (name,),
            ).fetchone()
        return _journalist(row) if row else None

    # The daily digest (DigestStore)

    def set_digest_address(self, name: str, address: str | None) -> bool:
        with self.connect() as conn:
            row = conn.execute("SELECT id FROM journalists WHERE name = ?", (name,)).fetchone()
            if row is None:
                return False
            if address is None:
                conn.execute("DELETE FROM digest_recipients WHERE journalist_id = ?", (row[0],))
            else:
                conn.execute(
                    "INSERT INTO digest_recipients(journalist_id, email) VALUES (?, ?)"
                    " ON CONFLICT(journalist_id) DO UPDATE SET email = excluded.email",
                    (row[0], address),
                )
        return True

    def digest_subscriptions(self) -> list[DigestSubscription]:
        with self.read() as conn:
            rows = conn.execute(
                "SELECT j.id, j.name, d.email, d.last_sent_on FROM digest_recipients d"
                " JOIN journalists j ON j.id = d.journalist_id ORDER BY j.name"
            ).fetchall()
        return [DigestSubscription(*row) for row in rows]

    def mark_digest_sent(self, journalist_id: int, day: str) -> None:
        with self.connect() as conn:
            conn.execute(
                "UPDATE digest_recipients SET last_sent_on = ? WHERE journalist_id = ?",
                (day, journalist_id),
            )

    def received_since(self, day: str, journalist_id: int) -> bool:
        # One query whatever the answer: the digest's timing says nothing.
        with self.read() as conn:
            row = conn.execute(
                "SELECT 1 FROM submissions s JOIN sources src ON src.id = s.source_id"
                " WHERE s.received_on >= ? AND (src.desk IS NULL"
                " OR EXISTS (SELECT 1 FROM journalists j WHERE j.id = ? AND j.all_desks = 1)"
                " OR EXISTS (SELECT 1 FROM desk_members m"
                " WHERE m.desk = src.desk AND m.journalist_id = ?)) LIMIT 1",
                (day, journalist_id, journalist_id),
            ).fetchone()
        return row is not None

    # Instance values the admin commands record for the running server

    def meta_value(self, key: str) -> str | None:
        with self.read() as conn:
            row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return str(row[0]) if row else None

    def set_meta_value(self, key: str, value: str) -> None:
        with self.connect() as conn:
            conn.execute(
                "INSERT INTO meta(key, value) VALUES (?, ?)"
                " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

    # Desks (docs/DESKS.md; the admin's commands: server/ops/desks.py)

    def desks(self) -> list[DeskRow]:
        with self.read() as conn:
            rows = conn.execute("SELECT name, titles, details FROM desks ORDER BY rowid").fetchall()
            members = conn.execute(
                "SELECT m.desk, j.name FROM desk_members m"
                " JOIN journalists j ON j.id = m.journalist_id ORDER BY j.name"
            ).fetchall()
        return [
            DeskRow(
                name,
                json.loads(titles),
                json.loads(descriptions),
                tuple(j for d, j in members if d == name),
            )
            for name, titles, descriptions in rows
        ]

    def add_desk(self, desk: DeskRow) -> None:
        with self.connect() as conn:
            if conn.execute("SELECT 1 FROM desks WHERE name = ?", (desk.name,)).fetchone():
                raise DeskProblem("exists")
            conn.execute(
                "INSERT INTO desks(name, titles, details) VALUES (?, ?, ?)",
                (desk.name, json.dumps(desk.titles), json.dumps(desk.descriptions)),
            )
            _set_members(conn, desk.name, desk.members)

    def set_desk_members(self, name: str, members: Sequence[str]) -> None:
        with self.connect() as conn:
            if not conn.execute("SELECT 1 FROM desks WHERE name = ?", (name,)).fetchone():
                raise DeskProblem("unknown")
            conn.execute("DELETE FROM desk_members WHERE desk = ?", (name,))
            _set_members(conn, name, members)

    def set_desk_texts(
        self, name: str, titles: Mapping[str, str], descriptions: Mapping[str, str]
    ) -> None:
        with self.connect() as conn:
            changed = conn.execute(
                "UPDATE desks SET titles = ?, details = ? WHERE name = ?",
                (json.dumps(dict(titles)), json.dumps(dict(descriptions)), name),
            ).rowcount
            if not changed:
                raise DeskProblem("unknown")

    def remove_desk(self, name: str) -> None:
        with self.connect() as conn:
            if not conn.execute("SELECT 1 FROM desks WHERE name = ?", (name,)).fetchone():
                raise DeskProblem("unknown")
            (count,) = conn.execute(
                "SELECT count(*) FROM sources WHERE desk = ?", (name,)
            ).fetchone()
            if count:
                raise DeskProblem("in_use", str(count))
            conn.execute("DELETE FROM desks WHERE name = ?", (name,))

    def desk_sources(self, name: str) -> list[str]:
        with self.read() as conn:
            rows = conn.execute("SELECT id FROM sources WHERE desk = ? ORDER BY id", (name,))
            return [r[0] for r in rows]

    def set_all_desks(self, journalist: str, on: bool) -> None:
        with self.connect() as conn:
            changed = conn.execute(
                "UPDATE journalists SET all_desks = ? WHERE name = ?", (int(on), journalist)
            ).rowcount
            if not changed:
                raise DeskProblem("journalist", journalist)

    # Sources (their lifecycle: server/store/sources.py, server/domain/source_lifecycle.py)

    def find_source(self, login_hash: bytes) -> SourceRow | None:
        """An active source by login hash (a deleted account has none)."""
        with self.read() as conn:
            row = conn.execute(
                "SELECT id, login_hash, reply_key, desk FROM sources WHERE login_hash = ?",
                (login_hash,),
            ).fetchone()
        return SourceRow(*row) if row else None

    # Submissions

    def submissions(self) -> list[tuple[str, str, list[ObjectRow]]]:
        """Every complete submission: (id, received_on, objects)."""
        with self.read() as conn:
            subs = conn.execute(
                "SELECT id, received_on FROM submissions ORDER BY received_on, rowid"
            ).fetchall()
            out = []
            for sid, day in subs:
                objs = conn.execute(
                    "SELECT id, kind, size FROM objects WHERE submission_id = ? ORDER BY rowid",
                    (sid,),
                ).fetchall()
                out.append((sid, day, [ObjectRow(*o) for o in objs]))
        return out

    def known_object_ids(self) -> set[str]:
        with self.read() as conn:
            ids = {r[0] for r in conn.execute("SELECT id FROM objects")}
            ids |= {r[0] for r in conn.execute("SELECT object_id FROM replies")}
            ids |= {r[0] for r in conn.execute("SELECT object_id FROM notes")}
        return ids

    # Replies

    def replies(self, source_id: str) -> list[ReplyRow]:
        with self.read() as conn:
            rows = conn.execute(
                "SELECT id, object_id, sent_on FROM replies WHERE source_id = ? ORDER BY rowid",
                (source_id,),
            ).fetchall()
        return [ReplyRow(*r) for r in rows]


def _journalist(row: tuple[Any, ...]) -> JournalistRow:
    return JournalistRow(row[0], row[1], row[2], row[3], row[4], row[5], all_desks=bool(row[6]))


def _set_members(conn: sqlite3.Connection, desk: str, members: Sequence[str]) -> None:
    for name in members:
        found = conn.execute("SELECT id FROM journalists WHERE name = ?", (name,)).fetchone()
        if found is None:
            raise DeskProblem("journalist", name)
        conn.execute(
            "INSERT OR IGNORE INTO desk_members(desk, journalist_id) VALUES (?, ?)",
            (desk, found[0]),
        )


def _release_at_exit(ref: weakref.ref[Database]) -> None:
    db = ref()
    if db is not None:
        db.release()


def _empty_wal(conn: sqlite3.Connection) -> None:
    """Copy the WAL into the database and cut it to nothing, if no reader needs it
    now (never waiting: a busy WAL is emptied by the next writer, or at the last close)."""
    with contextlib.suppress(sqlite3.OperationalError):  # a full disk: the WAL stays, intact
        conn.execute("PRAGMA busy_timeout = 0")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
