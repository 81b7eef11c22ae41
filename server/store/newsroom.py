"""What the journalists read and the triage state they share, in SQLite (tables
``triage`` and ``notes`` in server/store/db.py). The rules (which tags, which
changes) are server/domain/newsroom.py's; this module only reads and writes rows.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from server.store.db import Database
from server.store.protocols import (
    ItemRow,
    MoveConflict,
    ObjectRow,
    SourceItems,
    SourceNotFound,
    SourceSummary,
    TriageRefused,
)


class SqliteNewsroomStore:
    """``server.store.protocols.NewsroomStore`` on the instance's SQLite database."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def source_summaries(self) -> list[SourceSummary]:
        with self.db.connect() as conn:
            rows = conn.execute(
                "SELECT s.id, s.reply_key, s.last_active_on, s.deleted_by_source,"
                " (SELECT count(*) FROM submissions WHERE source_id = s.id),"
                " (SELECT coalesce(sum(o.size), 0) FROM objects o JOIN submissions u"
                "   ON o.submission_id = u.id WHERE u.source_id = s.id),"
                " coalesce(t.seen, 0), coalesce(t.starred, 0), coalesce(t.tags, '[]'), j.name,"
                " (SELECT count(*) FROM notes WHERE source_id = s.id),"
                " (SELECT count(*) FROM replies WHERE source_id = s.id), s.desk,"
                " s.created_on, s.acknowledged_on, s.feedback_on, s.feedback_months,"
                " s.kept_until, s.expiry_shift"
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
                desk=r[12],
                created_on=r[13],
                acknowledged_on=r[14],
                feedback_on=r[15],
                feedback_months=r[16],
                kept_until=r[17],
                expiry_shift=r[18],
            )
            for r in rows
        ]

    def items_of(self, source_id: str) -> SourceItems:
        with self.db.connect() as conn:  # one transaction: one consistent view
            subs = conn.execute(
                "SELECT id, received_on FROM submissions WHERE source_id = ? ORDER BY rowid",
                (source_id,),
            ).fetchall()
            submissions = [
                (
                    sid,
                    day,
                    [
                        ObjectRow(*o)
                        for o in conn.execute(
                            "SELECT id, kind, size FROM objects WHERE submission_id = ?"
                            " ORDER BY rowid",
                            (sid,),
                        )
                    ],
                )
                for sid, day in subs
            ]
            replies = [
                ItemRow(*r)
                for r in conn.execute(
                    "SELECT r.id, r.object_id, r.sent_on, j.name FROM replies r"
                    " LEFT JOIN journalists j ON j.id = r.journalist_id"
                    " WHERE r.source_id = ? ORDER BY r.rowid",
                    (source_id,),
                )
            ]
            notes = [
                ItemRow(*r)
                for r in conn.execute(
                    "SELECT n.id, n.object_id, n.written_on, j.name FROM notes n"
                    " LEFT JOIN journalists j ON j.id = n.journalist_id"
                    " WHERE n.source_id = ? ORDER BY n.rowid",
                    (source_id,),
                )
            ]
        return SourceItems(submissions, replies, notes)

    def object_is_known(self, object_id: str) -> bool:
        with self.db.connect() as conn:
            row = conn.execute(
                "SELECT 1 FROM objects WHERE id = ?1"
                " UNION ALL SELECT 1 FROM replies WHERE object_id = ?1"
                " UNION ALL SELECT 1 FROM notes WHERE object_id = ?1",
                (object_id,),
            ).fetchone()
        return row is not None

    def source_of_object(self, object_id: str) -> tuple[str, str | None] | None:
        with self.db.read() as conn:
            row = conn.execute(
                "SELECT s.id, s.desk FROM sources s WHERE s.id IN ("
                " SELECT u.source_id FROM objects o JOIN submissions u ON u.id = o.submission_id"
                "  WHERE o.id = ?1"
                " UNION ALL SELECT source_id FROM replies WHERE object_id = ?1"
                " UNION ALL SELECT source_id FROM notes WHERE object_id = ?1)",
                (object_id,),
            ).fetchone()
        return (row[0], row[1]) if row else None

    def source_of_submission(self, submission_id: str) -> tuple[str, str | None] | None:
        with self.db.read() as conn:
            row = conn.execute(
                "SELECT s.id, s.desk FROM submissions u JOIN sources s ON s.id = u.source_id"
                " WHERE u.id = ?",
                (submission_id,),
            ).fetchone()
        return (row[0], row[1]) if row else None

    def move_source(
        self, source_id: str, desk: str, replacements: Mapping[str, tuple[str, int]]
    ) -> None:
        with self.db.connect() as conn:
            if not conn.execute("SELECT 1 FROM sources WHERE id = ?", (source_id,)).fetchone():
                raise SourceNotFound(source_id)
            current = {
                r[0]
                for r in conn.execute(
                    "SELECT o.id FROM objects o JOIN submissions u ON u.id = o.submission_id"
                    " WHERE u.source_id = ?1"
                    " UNION ALL SELECT object_id FROM replies WHERE source_id = ?1"
                    " UNION ALL SELECT object_id FROM notes WHERE source_id = ?1",
                    (source_id,),
                )
            }
            if current != set(replacements):
                raise MoveConflict(source_id)
            for old, (new, size) in replacements.items():
                conn.execute("UPDATE objects SET id = ?, size = ? WHERE id = ?", (new, size, old))
                conn.execute("UPDATE replies SET object_id = ? WHERE object_id = ?", (new, old))
                conn.execute("UPDATE notes SET object_id = ? WHERE object_id = ?", (new, old))
            conn.execute("UPDATE sources SET desk = ? WHERE id = ?", (desk, source_id))

    def update_triage(
        self,
        source_id: str,
        *,
        seen: bool | None,
        starred: bool | None,
        tags: list[str] | None,
        add_tags: list[str] | None,
        remove_tags: list[str] | None,
        assignee: str | None,
        clear_assignee: bool,
        max_tags: int,
    ) -> None:
        """Tag additions and removals apply inside the transaction, so two
        journalists tagging at once both keep their tags."""
        with self.db.connect() as conn:
            if tags is not None or add_tags or remove_tags:
                row = conn.execute(
                    "SELECT tags FROM triage WHERE source_id = ?", (source_id,)
                ).fetchone()
                current = set(json.loads(row[0])) if row else set()
                new = set(tags) if tags is not None else current
                new = (new | set(add_tags or ())) - set(remove_tags or ())
                if len(new) > max_tags:
                    raise TriageRefused("tags")
                tags = sorted(new)
            assignee_id = None
            if assignee is not None:
                row = conn.execute(
                    "SELECT id FROM journalists WHERE name = ?", (assignee,)
                ).fetchone()
                if row is None:
                    raise TriageRefused("assignee")
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
