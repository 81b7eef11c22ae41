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
* **expiry** (``expire``): what the retention rule calls for a source with no
  activity for the channel's period (server/domain/channel.py, ``Retention``);
  it removes exactly what a journalist's deletion removes.

Invariants: rows go first, in one transaction, then the object files; a crash
in between leaves only unlisted files, which ``ObjectStore.collect_garbage``
removes at the next start. A submission always has its source (the schema
says NOT NULL, ON DELETE RESTRICT), so nothing sent can become unlistable.
The rows themselves are the store's (``server.store.protocols.SourceStore``;
SQLite: server/store/sources.py): this module decides, the store writes.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence

from server.store.protocols import (
    ItemKind,
    ObjectRow,
    ObjectStore,
    ReplyPurpose,
    RetentionFacts,
    SourceGone,
    SourceNotFound,
    SourceRow,
    SourceStore,
    new_id,
)

__all__ = ["ItemKind", "ReplyPurpose", "SourceGone", "SourceLifecycle", "SourceNotFound"]

# The random shift of a source's expiry day, in days either way (server/domain/channel.py
# says why; it imports this module, so the bound lives here).
EXPIRY_SHIFT_DAYS = 7


def draw_shift() -> int:
    """A source's expiry shift, uniform in [-EXPIRY_SHIFT_DAYS, +EXPIRY_SHIFT_DAYS]."""
    return secrets.randbelow(2 * EXPIRY_SHIFT_DAYS + 1) - EXPIRY_SHIFT_DAYS


class SourceLifecycle:
    """``end_sessions(source_id)`` ends a source's sessions (the source app's
    SessionStore); the journalist API, which has none, passes nothing."""

    def __init__(
        self,
        rows: SourceStore,
        store: ObjectStore,
        end_sessions: Callable[[str], None] | None = None,
    ) -> None:
        self.rows = rows
        self.store = store
        self._end_sessions = end_sessions

    # Create and follow up

    def is_active(self, source_id: str) -> bool:
        """The source exists and has not deleted their account."""
        return self.rows.is_active(source_id)

    def record_submission(
        self,
        source_id: str,
        new_source: SourceRow | None,
        day: str,
        objects: Sequence[ObjectRow],
        finished_uploads: Sequence[str] = (),
    ) -> str:
        """Make a submission visible: its source (``new_source``, for a first
        submission), its row and its objects, and the removal of the rows of the
        ``finished_uploads`` that became its objects, in ONE transaction. Every
        object must already be complete in the store. A follow-up for a source
        that deleted their account meanwhile raises ``SourceGone`` and records
        nothing. Returns the submission id."""
        submission_id = new_id()
        self.rows.record_submission(
            submission_id, source_id, new_source, day, objects, finished_uploads
        )
        if new_source is not None:
            # Drawn once, whether or not retention is on now: turning it on later
            # finds every source shifted. A crash before this line leaves none,
            # which the retention sweep draws then (channel.Retention).
            self.rows.set_expiry_shift(new_source.id, draw_shift())
        return submission_id

    def logged_in(self, source_id: str, day: str) -> None:
        self.rows.touch(source_id, day)

    # What journalists add

    def add_item(
        self,
        kind: ItemKind,
        source_id: str,
        body: bytes,
        journalist_id: int | None,
        day: str,
        purpose: ReplyPurpose | None = None,
    ) -> tuple[str, str]:
        """Store a note or a reply; (item id, object id). A reply to a source
        who deleted their account raises ``SourceGone``: it could never be read
        by them, and keeping it would re-create what they asked to erase. A
        reply's ``purpose`` (acknowledgement, feedback) records its day too."""
        object_id = self.store.write_bytes(body)
        item_id = new_id()
        try:
            self.rows.add_item(kind, item_id, source_id, object_id, journalist_id, day, purpose)
        except BaseException:
            self.store.delete(object_id)
            raise
        return item_id, object_id

    # Ending

    def delete_by_source(self, source_id: str) -> None:
        """The source deletes their account (see the module docstring)."""
        replies = self.rows.delete_by_source(source_id)
        if self._end_sessions is not None:
            self._end_sessions(source_id)
        self._delete_objects(replies)

    def delete_by_journalist(self, source_id: str, unchanged: RetentionFacts | None = None) -> None:
        """Everything of the source: rows and objects. ``SourceNotFound`` if none
        (or, for ``expire``, if it changed since the retention rule read it)."""
        objects = self.rows.delete_source(source_id, unchanged)
        if self._end_sessions is not None:
            self._end_sessions(source_id)
        self._delete_objects(objects)

    def expire(self, source_id: str, unchanged: RetentionFacts | None = None) -> None:
        """The removal a retention policy calls: the same as a journalist's deletion,
        in one transaction with the check that ``unchanged`` (the facts the policy
        decided on) still holds; ``SourceNotFound`` otherwise."""
        self.delete_by_journalist(source_id, unchanged)

    def delete_submission(self, submission_id: str) -> None:
        """One submission and its objects (a journalist's choice). ``SourceNotFound`` if none."""
        self._delete_objects(self.rows.delete_submission(submission_id))

    def _delete_objects(self, object_ids: list[str]) -> None:
        for object_id in object_ids:
            self.store.delete(object_id)
