"""The whole life of a source, in one place: every path that creates, extends
or ends a source calls this module, and no other code deletes their rows or
objects (docs/SOURCE_INTERFACE.md, "Deleting an account"; docs/THREAT_MODEL.md).

States and transitions:

* **create**: a first submission records the source (its login hash and
  reply key) and the submission in ONE transaction (``record_submission``);
* **follow-up**: a logged-in source's submission, recorded only while the
  account is ``active`` (a session can outlive a deletion made elsewhere);
* **deleted by the source** (``delete_by_source``): the login hash and the
  reply key are erased (they can never log in again and nothing can be
  encrypted to them), the replies are deleted, rows and objects, and every
  session of the source ends. What they SENT stays: submissions, the
  journalists' notes and triage stay listed, with ``deleted_by_source`` set.
  Only a flag, not the day: the day a source left is itself metadata;
* **deleted by a journalist** (``delete_by_journalist``): every row and every
  object of the source goes (submissions, replies, notes, triage);
* **expiry** (``expire``): what a retention policy will call for a source it
  has decided to drop; today nothing decides that automatically, and it
  removes exactly what a journalist's deletion removes.

Invariants: rows go first, in one transaction, then the object files; a crash
in between leaves only unlisted files, which ``ObjectStore.collect_garbage``
removes at the next start. A submission always has its source (the schema
says NOT NULL, ON DELETE RESTRICT), so nothing sent can become unlistable.
"""

from __future__ import annotations

import enum
import sqlite3
from collections.abc import Callable, Sequence

from server.store.db import Database, ObjectRow, SourceRow
from server.store.objects import ObjectStore, new_id


class SourceNotFound(Exception):
    """No source (or submission) with this id: never existed, or deleted by a journalist."""


class SourceGone(Exception):
    """The source deleted their account: nothing can be sent to them any more."""


class ItemKind(enum.Enum):
    """What journalists add to a source: both are envelopes the server cannot read."""

    NOTE = "notes"
    REPLY = "replies"


_INSERT_ITEM = {
    ItemKind.NOTE: "INSERT INTO notes(id, source_id, object_id, journalist_id, written_on)"
    " VALUES (?, ?, ?, ?, ?)",
    ItemKind.REPLY: "INSERT INTO replies(id, source_id, object_id, journalist_id, sent_on)"
    " VALUES (?, ?, ?, ?, ?)",
}


class SourceLifecycle:
    """``end_sessions(source_id)`` ends a source's sessions (the source app's
    SessionStore); the journalist API, which has none, passes nothing."""

    def __init__(
        self,
        db: Database,
        store: ObjectStore,
        end_sessions: Callable[[str], None] | None = None,
    ) -> None:
        self.db = db
        self.store = store
        self._end_sessions = end_sessions

    # Create and follow up

    def is_active(self, source_id: str) -> bool:
        """The source exists and has not deleted their account."""
        with self.db.connect() as conn:
            row = conn.execute(
                "SELECT 1 FROM sources WHERE id = ? AND deleted_by_source = 0", (source_id,)
            ).fetchone()
        return row is not None

    def record_submission(
        self,
        source_id: str,
        new_source: SourceRow | None,
        day: str,
        objects: Sequence[ObjectRow],
        also: Callable[[sqlite3.Connection], None] | None = None,
    ) -> str:
        """Make a submission visible: its source (``new_source``, for a first
        submission), its row and its objects, plus whatever ``also`` writes, in
        ONE transaction. Every object must already be complete in the store.
        A follow-up for a source that deleted their account meanwhile raises
        ``SourceGone`` and records nothing. Returns the submission id."""
        submission_id = new_id()
        with self.db.connect() as conn:
            if new_source is not None:
                conn.execute(
                    "INSERT INTO sources(id, login_hash, reply_key, created_on, last_active_on)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (new_source.id, new_source.login_hash, new_source.reply_key, day, day),
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
            if also is not None:
                also(conn)
        return submission_id

    def logged_in(self, source_id: str, day: str) -> None:
        with self.db.connect() as conn:
            conn.execute(
                "UPDATE sources SET last_active_on = ? WHERE id = ? AND deleted_by_source = 0",
                (day, source_id),
            )

    # What journalists add

    def add_item(
        self, kind: ItemKind, source_id: str, body: bytes, journalist_id: int | None, day: str
    ) -> tuple[str, str]:
        """Store a note or a reply; (item id, object id). A reply to a source
        who deleted their account raises ``SourceGone``: it could never be read
        by them, and keeping it would re-create what they asked to erase."""
        object_id = self.store.write_bytes(body)
        item_id = new_id()
        try:
            with self.db.connect() as conn:
                row = conn.execute(
                    "SELECT deleted_by_source FROM sources WHERE id = ?", (source_id,)
                ).fetchone()
                if row is None:
                    raise SourceNotFound(source_id)
                if kind is ItemKind.REPLY and row[0]:
                    raise SourceGone(source_id)
                conn.execute(
                    _INSERT_ITEM[kind], (item_id, source_id, object_id, journalist_id, day)
                )
        except BaseException:
            self.store.delete(object_id)
            raise
        return item_id, object_id

    # Ending

    def delete_by_source(self, source_id: str) -> None:
        """The source deletes their account (see the module docstring)."""
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
        if self._end_sessions is not None:
            self._end_sessions(source_id)
        self._delete_objects(replies)

    def delete_by_journalist(self, source_id: str) -> None:
        """Everything of the source: rows and objects. ``SourceNotFound`` if none."""
        with self.db.connect() as conn:
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
        if self._end_sessions is not None:
            self._end_sessions(source_id)
        self._delete_objects(objects)

    def expire(self, source_id: str) -> None:
        """The removal a retention policy calls: the same as a journalist's deletion."""
        self.delete_by_journalist(source_id)

    def delete_submission(self, submission_id: str) -> None:
        """One submission and its objects (a journalist's choice). ``SourceNotFound`` if none."""
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
        self._delete_objects(objects)

    def _delete_objects(self, object_ids: list[str]) -> None:
        for object_id in object_ids:
            self.store.delete(object_id)


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
