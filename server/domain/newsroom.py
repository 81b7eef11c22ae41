"""What journalists see and change: sources with their items, triage and notes.

Triage state and notes are the newsroom's, shared by every journalist (tables
``triage`` and ``notes`` in ``server/store/db.py``); notes are envelopes in the object
store like everything else.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from server.domain.source_lifecycle import ItemKind, SourceLifecycle, SourceNotFound
from server.store.db import Database
from server.store.objects import ObjectStore

TAG = re.compile(r"[A-Za-z0-9._-]{1,32}")
MAX_TAGS = 16


class NotFound(Exception):
    """No such source, submission, object or journalist."""


class Invalid(Exception):
    """A value the API does not accept (the message says which)."""


@dataclass
class SourceSummary:
    id: str
    reply_key: bytes | None  # None once the source deleted their account
    last_activity: str
    account_deleted: bool
    submissions: int = 0
    size: int = 0
    seen: bool = False
    starred: bool = False
    tags: list[str] = field(default_factory=list)
    assignee: str | None = None
    notes: int = 0
    replies: int = 0


class Newsroom:
    """Reads for the journalists; every change of a source's life goes to
    ``self.lifecycle`` (server/domain/source_lifecycle.py)."""

    def __init__(self, db: Database, store: ObjectStore, lifecycle: SourceLifecycle) -> None:
        self.db = db
        self.store = store
        self.lifecycle = lifecycle

    # Reading

    def sources(self) -> list[SourceSummary]:
        with self.db.connect() as conn:
            rows = conn.execute(
                "SELECT s.id, s.reply_key, s.last_active_on, s.deleted_by_source,"
                " (SELECT count(*) FROM submissions WHERE source_id = s.id),"
                " (SELECT coalesce(sum(o.size), 0) FROM objects o JOIN submissions u"
                "   ON o.submission_id = u.id WHERE u.source_id = s.id),"
                " coalesce(t.seen, 0), coalesce(t.starred, 0), coalesce(t.tags, '[]'), j.name,"
                " (SELECT count(*) FROM notes WHERE source_id = s.id),"
                " (SELECT count(*) FROM replies WHERE source_id = s.id)"
                " FROM sources s LEFT JOIN triage t ON t.source_id = s.id"
                " LEFT JOIN journalists j ON j.id = t.assignee"
                " ORDER BY s.last_active_on DESC, s.id"
            ).fetchall()
        return [
            SourceSummary(
                id=r[0],
                reply_key=r[1],
                last_activity=r[2],
                account_deleted=bool(r[3]),
                submissions=r[4],
                size=r[5],
                seen=bool(r[6]),
                starred=bool(r[7]),
                tags=json.loads(r[8]),
                assignee=r[9],
                notes=r[10],
                replies=r[11],
            )
            for r in rows
        ]

    def source(self, source_id: str) -> SourceSummary:
        for s in self.sources():
            if s.id == source_id:
                return s
        raise NotFound(source_id)

    def items(self, source_id: str) -> dict[str, list[dict[str, Any]]]:
        """Submissions with their objects, replies and notes of one source."""
        self.source(source_id)
        with self.db.connect() as conn:
            subs = conn.execute(
                "SELECT id, received_on FROM submissions WHERE source_id = ? ORDER BY rowid",
                (source_id,),
            ).fetchall()
            submissions = [
                {
                    "id": sid,
                    "received_on": day,
                    "objects": [
                        {"id": o[0], "kind": o[1], "size": o[2]}
                        for o in conn.execute(
                            "SELECT id, kind, size FROM objects WHERE submission_id = ?"
                            " ORDER BY rowid",
                            (sid,),
                        )
                    ],
                }
                for sid, day in subs
            ]
            replies = [
                {"id": r[0], "object_id": r[1], "sent_on": r[2], "journalist": r[3]}
                for r in conn.execute(
                    "SELECT r.id, r.object_id, r.sent_on, j.name FROM replies r"
                    " LEFT JOIN journalists j ON j.id = r.journalist_id"
                    " WHERE r.source_id = ? ORDER BY r.rowid",
                    (source_id,),
                )
            ]
            notes = [
                {"id": r[0], "object_id": r[1], "written_on": r[2], "journalist": r[3]}
                for r in conn.execute(
                    "SELECT n.id, n.object_id, n.written_on, j.name FROM notes n"
                    " LEFT JOIN journalists j ON j.id = n.journalist_id"
                    " WHERE n.source_id = ? ORDER BY n.rowid",
                    (source_id,),
                )
            ]
        for item in (*replies, *notes):
            item["size"] = self._object_size(item["object_id"])
        return {"submissions": submissions, "replies": replies, "notes": notes}

    def _object_size(self, object_id: str) -> int:
        try:
            return self.store.path(object_id).stat().st_size
        except (OSError, ValueError):
            return 0

    def object_is_known(self, object_id: str) -> bool:
        with self.db.connect() as conn:
            row = conn.execute(
                "SELECT 1 FROM objects WHERE id = ?1"
                " UNION ALL SELECT 1 FROM replies WHERE object_id = ?1"
                " UNION ALL SELECT 1 FROM notes WHERE object_id = ?1",
                (object_id,),
            ).fetchone()
        return row is not None

    # Changing

    def update_triage(
        self,
        source_id: str,
        *,
        seen: bool | None = None,
        starred: bool | None = None,
        tags: list[str] | None = None,
        add_tags: list[str] | None = None,
        remove_tags: list[str] | None = None,
        assignee: str | None = None,
        clear_assignee: bool = False,
    ) -> None:
        """Change triage state; tag additions and removals apply atomically, so two
        journalists tagging at once both keep their tags."""
        self.source(source_id)
        for given in (tags, add_tags, remove_tags):
            if given is not None and not all(TAG.fullmatch(t) for t in given):
                raise Invalid("tags: each 1-32 letters, digits, '.', '-', '_'")
        with self.db.connect() as conn:
            if tags is not None or add_tags or remove_tags:
                row = conn.execute(
                    "SELECT tags FROM triage WHERE source_id = ?", (source_id,)
                ).fetchone()
                current = set(json.loads(row[0])) if row else set()
                new = set(tags) if tags is not None else current
                new = (new | set(add_tags or ())) - set(remove_tags or ())
                if len(new) > MAX_TAGS:
                    raise Invalid(f"tags: at most {MAX_TAGS} per source")
                tags = sorted(new)
            assignee_id = None
            if assignee is not None:
                row = conn.execute(
                    "SELECT id FROM journalists WHERE name = ?", (assignee,)
                ).fetchone()
                if row is None:
                    raise Invalid("assignee: no journalist has that name")
                assignee_id = row[0]
            conn.execute("INSERT OR IGNORE INTO triage(source_id) VALUES (?)", (source_id,))
            updates: list[tuple[str, Any]] = []
            if seen is not None:
                updates.append(("seen", int(seen)))
            if starred is not None:
                updates.append(("starred", int(starred)))
            if tags is not None:
                updates.append(("tags", json.dumps(tags)))
            if assignee is not None or clear_assignee:
                updates.append(("assignee", assignee_id))
            for column, value in updates:
                # Column names come from the literals above, never from the request.
                sql = f"UPDATE triage SET {column} = ? WHERE source_id = ?"  # noqa: S608
                conn.execute(sql, (value, source_id))

    def add_item(
        self, kind: ItemKind, source_id: str, body: bytes, journalist_id: int, day: str
    ) -> dict[str, str]:
        """Store a note or a reply (an envelope the server cannot read).

        ``SourceGone`` for a reply to a source who deleted their account."""
        try:
            item_id, object_id = self.lifecycle.add_item(kind, source_id, body, journalist_id, day)
        except SourceNotFound:
            raise NotFound(source_id) from None
        return {"id": item_id, "object_id": object_id}
