"""Sources, submissions, replies and notes in SQLite: the rows of a source's
life (server/domain/source_lifecycle.py decides when; this module only says how).

Each method is one transaction; the object files are the caller's to delete
once the rows are gone (rows first, files after: a crash in between leaves
only unlisted files, which ``ObjectStore.collect_garbage`` removes at start).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from server.store.db import Database
from server.store.protocols import (
    ItemKind,
    ObjectRow,
    ReplyPurpose,
    ReplyRow,
    RetentionFacts,
    SourceGone,
    SourceNotFound,
    SourceRow,
)

_INSERT_ITEM = {
    ItemKind.NOTE: "INSERT INTO notes(id, source_id, object_id, journalist_id, written_on)"
    " VALUES (?, ?, ?, ?, ?)",
    ItemKind.REPLY: "INSERT INTO replies(id, source_id, object_id, journalist_id, sent_on)"
    " VALUES (?, ?, ?, ?, ?)",
}
# The first acknowledgement or feedback day stays: it is the one the law counts.
_RECORD_PURPOSE = {
    ReplyPurpose.ACKNOWLEDGEMENT: "UPDATE sources SET acknowledged_on ="
    " coalesce(acknowledged_on, ?) WHERE id = ?",
    ReplyPurpose.FEEDBACK: "UPDATE sources SET feedback_on = coalesce(feedback_on, ?) WHERE id = ?",
}


class SqliteSourceStore:
    """``server.store.protocols.SourceStore`` on the instance's SQLite database."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def find_source(self, login_hash: bytes) -> SourceRow | None:
        return self.db.find_source(login_hash)

    def replies(self, source_id: str) -> list[ReplyRow]:
        return self.db.replies(source_id)

    def is_active(self, source_id: str) -> bool:
        with self.db.connect() as conn:
            row = conn.execute(
                "SELECT 1 FROM sources WHERE id = ? AND deleted_by_source = 0", (source_id,)
            ).fetchone()
        return row is not None

    def desk_of(self, source_id: str) -> str | None:
        with self.db.read() as conn:
            row = conn.execute("SELECT desk FROM sources WHERE id = ?", (source_id,)).fetchone()
        return row[0] if row else None

    def record_submission(
        self,
        submission_id: str,
        source_id: str,
        new_source: SourceRow | None,
        day: str,
        objects: Sequence[ObjectRow],
        finished_uploads: Sequence[str] = (),
    ) -> None:
        with self.db.connect() as conn:
            if new_source is not None:
                conn.execute(
                    "INSERT INTO sources(id, login_hash, reply_key, created_on, last_active_on,"
                    " desk) VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        new_source.id,
                        new_source.login_hash,
                        new_source.reply_key,
                        day,
                        day,
                        new_source.desk,
                    ),
                )
            touched = conn.execute(
                "UPDATE sources SET last_active_on = ? WHERE id = ? AND deleted_by_source = 0",
                (day, source_id),
            ).rowcount
            if touched == 0:
                raise SourceGone(source_id)
            conn.execute(
                "INSERT INTO submissions(id, source_id, received_on) VALUES (?, ?, ?)",
                (submission_id, source_id, day),
            )
            conn.executemany(
                "INSERT INTO objects(id, submission_id, kind, size) VALUES (?, ?, ?, ?)",
                [(o.id, submission_id, o.kind, o.size) for o in objects],
            )
            # Uploads that became objects (server/store/uploads.py): their rows go
            # in the same transaction, so an upload is either listed or an object.
            conn.executemany("DELETE FROM uploads WHERE id = ?", [(i,) for i in finished_uploads])

    def touch(self, source_id: str, day: str) -> None:
        with self.db.connect() as conn:
            conn.execute(
                "UPDATE sources SET last_active_on = ? WHERE id = ? AND deleted_by_source = 0",
                (day, source_id),
            )

    def add_item(
        self,
        kind: ItemKind,
        item_id: str,
        source_id: str,
        object_id: str,
        journalist_id: int | None,
        day: str,
        purpose: ReplyPurpose | None = None,
    ) -> None:
        with self.db.connect() as conn:
            row = conn.execute(
                "SELECT deleted_by_source FROM sources WHERE id = ?", (source_id,)
            ).fetchone()
            if row is None:
                raise SourceNotFound(source_id)
            if kind is ItemKind.REPLY and row[0]:
                raise SourceGone(source_id)
            conn.execute(_INSERT_ITEM[kind], (item_id, source_id, object_id, journalist_id, day))
            if purpose is not None and kind is ItemKind.REPLY:
                conn.execute(_RECORD_PURPOSE[purpose], (day, source_id))

    def keep_until(self, source_id: str, day: str) -> None:
        with self.db.connect() as conn:
            found = conn.execute(
                "UPDATE sources SET kept_until = CASE WHEN kept_until IS NULL OR kept_until < ?1"
                " THEN ?1 ELSE kept_until END WHERE id = ?2",
                (day, source_id),
            ).rowcount
        if found == 0:
            raise SourceNotFound(source_id)

    def set_feedback_months(self, source_id: str, months: int | None) -> None:
        with self.db.connect() as conn:
            found = conn.execute(
                "UPDATE sources SET feedback_months = ? WHERE id = ?", (months, source_id)
            ).rowcount
        if found == 0:
            raise SourceNotFound(source_id)

    def retention_facts(self) -> list[RetentionFacts]:
        with self.db.read() as conn:
            rows = conn.execute(
                "SELECT id, last_active_on, kept_until, expiry_shift, desk FROM sources ORDER BY id"
            ).fetchall()
        return [RetentionFacts(*r) for r in rows]

    def set_expiry_shift(self, source_id: str, shift: int) -> None:
        with self.db.connect() as conn:
            conn.execute(
                "UPDATE sources SET expiry_shift = ? WHERE id = ? AND expiry_shift IS NULL",
                (shift, source_id),
            )

    def delete_by_source(self, source_id: str) -> list[str]:
        with self.db.connect() as conn:
            replies = [
                r[0]
                for r in conn.execute(
                    "SELECT object_id FROM replies WHERE source_id = ?", (source_id,)
                )
            ]
            conn.execute("DELETE FROM replies WHERE source_id = ?", (source_id,))
            conn.execute(
                "UPDATE sources SET login_hash = NULL, reply_key = NULL, deleted_by_source = 1"
                " WHERE id = ?",
                (source_id,),
            )
        return replies

    def delete_source(self, source_id: str, unchanged: RetentionFacts | None = None) -> list[str]:
        with self.db.connect() as conn:
            if unchanged is not None and _retention_facts(conn, source_id) != unchanged:
                raise SourceNotFound(source_id)  # active or kept since: not deleted
            objects = _object_ids(conn, source_id)
            conn.execute(
                "DELETE FROM objects WHERE submission_id IN"
                " (SELECT id FROM submissions WHERE source_id = ?)",
                (source_id,),
            )
            conn.execute("DELETE FROM submissions WHERE source_id = ?", (source_id,))
            # Replies, notes and triage follow by ON DELETE CASCADE.
            if conn.execute("DELETE FROM sources WHERE id = ?", (source_id,)).rowcount == 0:
                raise SourceNotFound(source_id)
        return objects

    def delete_submission(self, submission_id: str) -> list[str]:
        with self.db.connect() as conn:
            objects = [
                r[0]
                for r in conn.execute(
                    "SELECT id FROM objects WHERE submission_id = ?", (submission_id,)
                )
            ]
            conn.execute("DELETE FROM objects WHERE submission_id = ?", (submission_id,))
            if conn.execute("DELETE FROM submissions WHERE id = ?", (submission_id,)).rowcount == 0:
                raise SourceNotFound(submission_id)
        return objects


def _retention_facts(conn: sqlite3.Connection, source_id: str) -> RetentionFacts | None:
    row = conn.execute(
        "SELECT id, last_active_on, kept_until, expiry_shift, desk FROM sources WHERE id = ?",
        (source_id,),
    ).fetchone()
    return RetentionFacts(*row) if row else None


def _object_ids(conn: sqlite3.Connection, source_id: str) -> list[str]:
    return [
        r[0]
        for r in conn.execute(
            "SELECT o.id FROM objects o JOIN submissions s ON o.submission_id = s.id"
            " WHERE s.source_id = ?1"
            " UNION ALL SELECT object_id FROM replies WHERE source_id = ?1"
            " UNION ALL SELECT object_id FROM notes WHERE source_id = ?1",
            (source_id,),
        )
    ]
