"""Journalists, sources and the newsroom's rows in PostgreSQL: the store
Protocols (server/store/protocols.py) on ``server.store.postgres.PostgresDatabase``.

The same rows and the same rules as the SQLite stores (``server.store.db``,
``server.store.sources``, ``server.store.newsroom``); the same contract tests
run against both (tests/test_row_store_contract.py). Each method is one
transaction. Where SQLite serialises writers (``BEGIN IMMEDIATE``),
PostgreSQL lets them run together at READ COMMITTED, so every
read-then-write locks what it read first (``FOR UPDATE``, or an ``UPDATE``
that takes the row lock): two journalists tagging a source at once, on two
instances, both keep their tags; a submission and the deletion of its
source's account never interleave.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import psycopg

from server.store.postgres import PostgresDatabase
from server.store.protocols import (
    DeskProblem,
    DeskRow,
    DigestSubscription,
    ItemKind,
    ItemRow,
    JournalistRow,
    MoveConflict,
    ObjectRow,
    ReplyPurpose,
    ReplyRow,
    RetentionFacts,
    SourceGone,
    SourceItems,
    SourceNotFound,
    SourceRow,
    SourceSummary,
    TriageRefused,
)

_LOCK_FOR_SHARE = "SELECT deleted_by_source FROM sources WHERE id = %s FOR SHARE"
_LOCK_FOR_UPDATE = "SELECT deleted_by_source FROM sources WHERE id = %s FOR UPDATE"
_JOURNALIST = (
    "SELECT id, name, encryption_key, signing_key, role, hybrid_key, all_desks FROM journalists"
)


def _journalist(row: tuple[Any, ...]) -> JournalistRow:
    hybrid = None if row[5] is None else bytes(row[5])
    return JournalistRow(
        row[0], row[1], bytes(row[2]), bytes(row[3]), row[4], hybrid, all_desks=bool(row[6])
    )


def _set_members(conn: psycopg.Connection[Any], desk: str, members: Sequence[str]) -> None:
    for name in members:
        found = conn.execute("SELECT id FROM journalists WHERE name = %s", (name,)).fetchone()
        if found is None:
            raise DeskProblem("journalist", name)
        conn.execute(
            "INSERT INTO desk_members(desk, journalist_id) VALUES (%s, %s) ON CONFLICT DO NOTHING",
            (desk, found[0]),
        )


class PostgresJournalistStore:
    """``JournalistStore``, and what the admin commands write."""

    def __init__(self, db: PostgresDatabase) -> None:
        self.db = db

    def add_journalist(
        self,
        name: str,
        encryption_key: bytes,
        signing_key: bytes,
        role: str,
        day: str,
        hybrid_key: bytes | None = None,
    ) -> None:
        with self.db.connect() as conn:
            conn.execute(
                "INSERT INTO journalists(name, encryption_key, signing_key, role, added_on,"
                " hybrid_key) VALUES (%s, %s, %s, %s, %s, %s)"
                " ON CONFLICT(name) DO UPDATE SET encryption_key = excluded.encryption_key,"
                " signing_key = excluded.signing_key, role = excluded.role,"
                " hybrid_key = excluded.hybrid_key",
                (name, encryption_key, signing_key, role, day, hybrid_key),
            )

    def remove_journalist(self, name: str) -> bool:
        with self.db.connect() as conn:
            return conn.execute("DELETE FROM journalists WHERE name = %s", (name,)).rowcount > 0

    def journalists(self) -> list[JournalistRow]:
        with self.db.connect() as conn:
            rows = conn.execute(_JOURNALIST + " ORDER BY name").fetchall()
        return [_journalist(r) for r in rows]

    def journalist(self, journalist_id: int) -> JournalistRow | None:
        with self.db.connect() as conn:
            row = conn.execute(_JOURNALIST + " WHERE id = %s", (journalist_id,)).fetchone()
        return _journalist(row) if row else None

    def journalist_named(self, name: str) -> JournalistRow | None:
        with self.db.connect() as conn:
            row = conn.execute(_JOURNALIST + " WHERE name = %s", (name,)).fetchone()
        return _journalist(row) if row else None

    def meta_value(self, key: str) -> str | None:
        with self.db.connect() as conn:
            row = conn.execute("SELECT value FROM meta WHERE key = %s", (key,)).fetchone()
        return str(row[0]) if row else None

    def set_meta_value(self, key: str, value: str) -> None:
        with self.db.connect() as conn:
            conn.execute(
                "INSERT INTO meta(key, value) VALUES (%s, %s)"
                " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

    # The daily digest (DigestStore)

    def set_digest_address(self, name: str, address: str | None) -> bool:
        with self.db.connect() as conn:
            row = conn.execute("SELECT id FROM journalists WHERE name = %s", (name,)).fetchone()
            if row is None:
                return False
            if address is None:
                conn.execute("DELETE FROM digest_recipients WHERE journalist_id = %s", (row[0],))
            else:
                conn.execute(
                    "INSERT INTO digest_recipients(journalist_id, email) VALUES (%s, %s)"
                    " ON CONFLICT(journalist_id) DO UPDATE SET email = excluded.email",
                    (row[0], address),
                )
        return True

    def digest_subscriptions(self) -> list[DigestSubscription]:
        with self.db.connect() as conn:
            rows = conn.execute(
                "SELECT j.id, j.name, d.email, d.last_sent_on FROM digest_recipients d"
                " JOIN journalists j ON j.id = d.journalist_id ORDER BY j.name"
            ).fetchall()
        return [DigestSubscription(*row) for row in rows]

    def mark_digest_sent(self, journalist_id: int, day: str) -> None:
        with self.db.connect() as conn:
            conn.execute(
                "UPDATE digest_recipients SET last_sent_on = %s WHERE journalist_id = %s",
                (day, journalist_id),
            )

    def received_since(self, day: str, journalist_id: int) -> bool:
        # One query whatever the answer: the digest's timing says nothing.
        with self.db.connect() as conn:
            row = conn.execute(
                "SELECT 1 FROM submissions s JOIN sources src ON src.id = s.source_id"
                " WHERE s.received_on >= %s AND (src.desk IS NULL"
                " OR EXISTS (SELECT 1 FROM journalists j WHERE j.id = %s AND j.all_desks = 1)"
                " OR EXISTS (SELECT 1 FROM desk_members m"
                " WHERE m.desk = src.desk AND m.journalist_id = %s)) LIMIT 1",
                (day, journalist_id, journalist_id),
            ).fetchone()
        return row is not None

    def desks(self) -> list[DeskRow]:
        with self.db.connect() as conn:
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            rows = conn.execute("SELECT name, titles, details FROM desks ORDER BY seq").fetchall()
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
        with self.db.connect() as conn:
            added = conn.execute(
                "INSERT INTO desks(name, titles, details) VALUES (%s, %s, %s)"
                " ON CONFLICT (name) DO NOTHING",
                (desk.name, json.dumps(desk.titles), json.dumps(desk.descriptions)),
            ).rowcount
            if not added:
                raise DeskProblem("exists")
            _set_members(conn, desk.name, desk.members)

    def set_desk_members(self, name: str, members: Sequence[str]) -> None:
        with self.db.connect() as conn:
            if not conn.execute(
                "SELECT 1 FROM desks WHERE name = %s FOR UPDATE", (name,)
            ).fetchone():
                raise DeskProblem("unknown")
            conn.execute("DELETE FROM desk_members WHERE desk = %s", (name,))
            _set_members(conn, name, members)

    def set_desk_texts(
        self, name: str, titles: Mapping[str, str], descriptions: Mapping[str, str]
    ) -> None:
        with self.db.connect() as conn:
            changed = conn.execute(
                "UPDATE desks SET titles = %s, details = %s WHERE name = %s",
                (json.dumps(dict(titles)), json.dumps(dict(descriptions)), name),
            ).rowcount
            if not changed:
                raise DeskProblem("unknown")

    def remove_desk(self, name: str) -> None:
        with self.db.connect() as conn:
            if not conn.execute(
                "SELECT 1 FROM desks WHERE name = %s FOR UPDATE", (name,)
            ).fetchone():
                raise DeskProblem("unknown")
            row = conn.execute("SELECT count(*) FROM sources WHERE desk = %s", (name,)).fetchone()
            if row and row[0]:
                raise DeskProblem("in_use", str(row[0]))
            conn.execute("DELETE FROM desks WHERE name = %s", (name,))

    def desk_sources(self, name: str) -> list[str]:
        with self.db.connect() as conn:
            rows = conn.execute(
                "SELECT id FROM sources WHERE desk = %s ORDER BY id", (name,)
            ).fetchall()
        return [str(r[0]) for r in rows]

    def set_all_desks(self, journalist: str, on: bool) -> None:
        with self.db.connect() as conn:
            changed = conn.execute(
                "UPDATE journalists SET all_desks = %s WHERE name = %s", (int(on), journalist)
            ).rowcount
            if not changed:
                raise DeskProblem("journalist", journalist)

    def known_object_ids(self) -> set[str]:
        """Every object a row refers to: what garbage collection keeps."""
        with self.db.connect() as conn:
            rows = conn.execute(
                "SELECT id FROM objects UNION ALL SELECT object_id FROM replies"
                " UNION ALL SELECT object_id FROM notes"
            ).fetchall()
        return {str(r[0]) for r in rows}


class PostgresSourceStore:
    """``SourceStore``: sources, submissions, replies and notes."""

    def __init__(self, db: PostgresDatabase) -> None:
        self.db = db

    def find_source(self, login_hash: bytes) -> SourceRow | None:
        with self.db.connect() as conn:
            row = conn.execute(
                "SELECT id, login_hash, reply_key, desk FROM sources WHERE login_hash = %s",
                (login_hash,),
            ).fetchone()
        return SourceRow(row[0], bytes(row[1]), bytes(row[2]), row[3]) if row else None

    def desk_of(self, source_id: str) -> str | None:
        with self.db.connect() as conn:
            row = conn.execute("SELECT desk FROM sources WHERE id = %s", (source_id,)).fetchone()
        return row[0] if row else None

    def replies(self, source_id: str) -> list[ReplyRow]:
        with self.db.connect() as conn:
            rows = conn.execute(
                "SELECT id, object_id, sent_on FROM replies WHERE source_id = %s ORDER BY seq",
                (source_id,),
            ).fetchall()
        return [ReplyRow(*r) for r in rows]

    def is_active(self, source_id: str) -> bool:
        with self.db.connect() as conn:
            row = conn.execute(
                "SELECT 1 FROM sources WHERE id = %s AND deleted_by_source = 0", (source_id,)
            ).fetchone()
        return row is not None

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
                    " desk) VALUES (%s, %s, %s, %s, %s, %s)",
                    (
                        new_source.id,
                        new_source.login_hash,
                        new_source.reply_key,
                        day,
                        day,
                        new_source.desk,
                    ),
                )
            # The UPDATE locks the source's row until the commit: an account deletion
            # waits for this submission, or this one sees the deletion and stops.
            touched = conn.execute(
                "UPDATE sources SET last_active_on = %s WHERE id = %s AND deleted_by_source = 0",
                (day, source_id),
            ).rowcount
            if touched == 0:
                raise SourceGone(source_id)
            conn.execute(
                "INSERT INTO submissions(id, source_id, received_on) VALUES (%s, %s, %s)",
                (submission_id, source_id, day),
            )
            with conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO objects(id, submission_id, kind, size) VALUES (%s, %s, %s, %s)",
                    [(o.id, submission_id, o.kind, o.size) for o in objects],
                )
                if finished_uploads:
                    cur.execute("DELETE FROM uploads WHERE id = ANY(%s)", (list(finished_uploads),))

    def touch(self, source_id: str, day: str) -> None:
        with self.db.connect() as conn:
            conn.execute(
                "UPDATE sources SET last_active_on = %s WHERE id = %s AND deleted_by_source = 0",
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
        # A reply that records a day updates the source's row: locked for that from
        # the start (two FOR SHARE locks both upgrading would deadlock).
        lock = _LOCK_FOR_UPDATE if purpose is not None else _LOCK_FOR_SHARE
        with self.db.connect() as conn:
            row = conn.execute(lock, (source_id,)).fetchone()
            if row is None:
                raise SourceNotFound(source_id)
            if kind is ItemKind.REPLY and row[0]:
                raise SourceGone(source_id)
            if kind is ItemKind.REPLY:
                conn.execute(
                    "INSERT INTO replies(id, source_id, object_id, journalist_id, sent_on)"
                    " VALUES (%s, %s, %s, %s, %s)",
                    (item_id, source_id, object_id, journalist_id, day),
                )
                # The first acknowledgement or feedback day stays: the one the law counts.
                if purpose is ReplyPurpose.ACKNOWLEDGEMENT:
                    conn.execute(
                        "UPDATE sources SET acknowledged_on = coalesce(acknowledged_on, %s)"
                        " WHERE id = %s",
                        (day, source_id),
                    )
                elif purpose is ReplyPurpose.FEEDBACK:
                    conn.execute(
                        "UPDATE sources SET feedback_on = coalesce(feedback_on, %s) WHERE id = %s",
                        (day, source_id),
                    )
            else:
                conn.execute(
                    "INSERT INTO notes(id, source_id, object_id, journalist_id, written_on)"
                    " VALUES (%s, %s, %s, %s, %s)",
                    (item_id, source_id, object_id, journalist_id, day),
                )

    def keep_until(self, source_id: str, day: str) -> None:
        with self.db.connect() as conn:
            found = conn.execute(
                "UPDATE sources SET kept_until = greatest(kept_until, %(d)s::day) WHERE id = %(s)s",
                {"d": day, "s": source_id},
            ).rowcount
        if found == 0:
            raise SourceNotFound(source_id)

    def set_feedback_months(self, source_id: str, months: int | None) -> None:
        with self.db.connect() as conn:
            found = conn.execute(
                "UPDATE sources SET feedback_months = %s WHERE id = %s", (months, source_id)
            ).rowcount
        if found == 0:
            raise SourceNotFound(source_id)

    def retention_facts(self) -> list[RetentionFacts]:
        with self.db.connect() as conn:
            rows = conn.execute(
                "SELECT id, last_active_on, kept_until, expiry_shift, desk FROM sources ORDER BY id"
            ).fetchall()
        return [RetentionFacts(*r) for r in rows]

    def set_expiry_shift(self, source_id: str, shift: int) -> None:
        with self.db.connect() as conn:
            conn.execute(
                "UPDATE sources SET expiry_shift = %s WHERE id = %s AND expiry_shift IS NULL",
                (shift, source_id),
            )

    def delete_by_source(self, source_id: str) -> list[str]:
        with self.db.connect() as conn:
            conn.execute("SELECT 1 FROM sources WHERE id = %s FOR UPDATE", (source_id,))
            replies = [
                str(r[0])
                for r in conn.execute(
                    "DELETE FROM replies WHERE source_id = %s RETURNING object_id", (source_id,)
                ).fetchall()
            ]
            conn.execute(
                "UPDATE sources SET login_hash = NULL, reply_key = NULL, deleted_by_source = 1"
                " WHERE id = %s",
                (source_id,),
            )
        return replies

    def delete_source(self, source_id: str, unchanged: RetentionFacts | None = None) -> list[str]:
        with self.db.connect() as conn:
            row = conn.execute(
                "SELECT id, last_active_on, kept_until, expiry_shift, desk FROM sources"
                " WHERE id = %s FOR UPDATE",
                (source_id,),
            ).fetchone()
            if not row or (unchanged is not None and RetentionFacts(*row) != unchanged):
                raise SourceNotFound(source_id)  # gone, or active or kept since
            objects = [
                str(r[0])
                for r in conn.execute(
                    "SELECT o.id FROM objects o JOIN submissions s ON o.submission_id = s.id"
                    " WHERE s.source_id = %(s)s"
                    " UNION ALL SELECT object_id FROM replies WHERE source_id = %(s)s"
                    " UNION ALL SELECT object_id FROM notes WHERE source_id = %(s)s",
                    {"s": source_id},
                ).fetchall()
            ]
            conn.execute(
                "DELETE FROM objects WHERE submission_id IN"
                " (SELECT id FROM submissions WHERE source_id = %s)",
                (source_id,),
            )
            conn.execute("DELETE FROM submissions WHERE source_id = %s", (source_id,))
            # Replies, notes and triage follow by ON DELETE CASCADE.
            conn.execute("DELETE FROM sources WHERE id = %s", (source_id,))
        return objects

    def delete_submission(self, submission_id: str) -> list[str]:
        with self.db.connect() as conn:
            objects = [
                str(r[0])
                for r in conn.execute(
                    "DELETE FROM objects WHERE submission_id = %s RETURNING id", (submission_id,)
                ).fetchall()
            ]
            gone = conn.execute("DELETE FROM submissions WHERE id = %s", (submission_id,))
            if gone.rowcount == 0:
                raise SourceNotFound(submission_id)
        return objects


class PostgresNewsroomStore:
    """``NewsroomStore``: what the journalists read, and the triage they share."""

    def __init__(self, db: PostgresDatabase) -> None:
        self.db = db

    def source_summaries(self) -> list[SourceSummary]:
        with self.db.connect() as conn:
            # Each count once per table, grouped, rather than one subquery per source.
            rows = conn.execute(
                "WITH subs AS (SELECT source_id, count(*) AS n FROM submissions"
                "   GROUP BY source_id),"
                " sizes AS (SELECT u.source_id, sum(o.size) AS total FROM objects o"
                "   JOIN submissions u ON o.submission_id = u.id GROUP BY u.source_id),"
                " nts AS (SELECT source_id, count(*) AS n FROM notes GROUP BY source_id),"
                " rps AS (SELECT source_id, count(*) AS n FROM replies GROUP BY source_id)"
                " SELECT s.id, s.reply_key, s.last_active_on, s.deleted_by_source,"
                " coalesce(subs.n, 0), coalesce(sizes.total, 0),"
                " coalesce(t.seen, 0), coalesce(t.starred, 0), coalesce(t.tags, '[]'), j.name,"
                " coalesce(nts.n, 0), coalesce(rps.n, 0), s.desk, s.created_on,"
                " s.acknowledged_on, s.feedback_on, s.feedback_months, s.kept_until,"
                " s.expiry_shift"
                " FROM sources s LEFT JOIN triage t ON t.source_id = s.id"
                " LEFT JOIN journalists j ON j.id = t.assignee"
                " LEFT JOIN subs ON subs.source_id = s.id"
                " LEFT JOIN sizes ON sizes.source_id = s.id"
                " LEFT JOIN nts ON nts.source_id = s.id"
                " LEFT JOIN rps ON rps.source_id = s.id"
                " ORDER BY s.last_active_on DESC, s.id"
            ).fetchall()
        return [
            SourceSummary(
                id=r[0],
                reply_key=bytes(r[1]) if r[1] is not None else None,
                last_activity=r[2],
                account_deleted=bool(r[3]),
                submissions=int(r[4]),
                size=int(r[5]),
                seen=bool(r[6]),
                starred=bool(r[7]),
                tags=json.loads(r[8]),
                assignee=r[9],
                notes=int(r[10]),
                replies=int(r[11]),
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
        with self.db.connect() as conn:
            # One snapshot for the three reads, as SQLite's single transaction gives.
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            subs = conn.execute(
                "SELECT id, received_on FROM submissions WHERE source_id = %s ORDER BY seq",
                (source_id,),
            ).fetchall()
            objects: dict[str, list[ObjectRow]] = {str(sid): [] for sid, _ in subs}
            for sid, oid, kind, size in conn.execute(
                "SELECT o.submission_id, o.id, o.kind, o.size FROM objects o"
                " JOIN submissions s ON s.id = o.submission_id"
                " WHERE s.source_id = %s ORDER BY o.seq",
                (source_id,),
            ).fetchall():  # one round trip for every submission's objects
                objects[str(sid)].append(ObjectRow(oid, kind, int(size)))
            submissions = [(str(sid), str(day), objects[str(sid)]) for sid, day in subs]
            replies = [
                ItemRow(*r)
                for r in conn.execute(
                    "SELECT r.id, r.object_id, r.sent_on, j.name FROM replies r"
                    " LEFT JOIN journalists j ON j.id = r.journalist_id"
                    " WHERE r.source_id = %s ORDER BY r.seq",
                    (source_id,),
                ).fetchall()
            ]
            notes = [
                ItemRow(*r)
                for r in conn.execute(
                    "SELECT n.id, n.object_id, n.written_on, j.name FROM notes n"
                    " LEFT JOIN journalists j ON j.id = n.journalist_id"
                    " WHERE n.source_id = %s ORDER BY n.seq",
                    (source_id,),
                ).fetchall()
            ]
        return SourceItems(submissions, replies, notes)

    def object_is_known(self, object_id: str) -> bool:
        with self.db.connect() as conn:
            row = conn.execute(
                "SELECT 1 FROM objects WHERE id = %(o)s"
                " UNION ALL SELECT 1 FROM replies WHERE object_id = %(o)s"
                " UNION ALL SELECT 1 FROM notes WHERE object_id = %(o)s",
                {"o": object_id},
            ).fetchone()
        return row is not None

    def move_source(
        self, source_id: str, desk: str, replacements: Mapping[str, tuple[str, int]]
    ) -> None:
        with self.db.connect() as conn:
            # The source's row locked first: a submission or a note waits for the move.
            if not conn.execute(
                "SELECT 1 FROM sources WHERE id = %s FOR UPDATE", (source_id,)
            ).fetchone():
                raise SourceNotFound(source_id)
            current = {
                str(r[0])
                for r in conn.execute(
                    "SELECT o.id FROM objects o JOIN submissions u ON u.id = o.submission_id"
                    " WHERE u.source_id = %(s)s"
                    " UNION ALL SELECT object_id FROM replies WHERE source_id = %(s)s"
                    " UNION ALL SELECT object_id FROM notes WHERE source_id = %(s)s",
                    {"s": source_id},
                ).fetchall()
            }
            if current != set(replacements):
                raise MoveConflict(source_id)
            with conn.cursor() as cur:
                for old, (new, size) in replacements.items():
                    cur.execute(
                        "UPDATE objects SET id = %s, size = %s WHERE id = %s", (new, size, old)
                    )
                    cur.execute(
                        "UPDATE replies SET object_id = %s WHERE object_id = %s", (new, old)
                    )
                    cur.execute("UPDATE notes SET object_id = %s WHERE object_id = %s", (new, old))
            conn.execute("UPDATE sources SET desk = %s WHERE id = %s", (desk, source_id))

    def source_of_object(self, object_id: str) -> tuple[str, str | None] | None:
        with self.db.connect() as conn:
            row = conn.execute(
                "SELECT s.id, s.desk FROM sources s WHERE s.id IN ("
                " SELECT u.source_id FROM objects o JOIN submissions u ON u.id = o.submission_id"
                "  WHERE o.id = %(o)s"
                " UNION ALL SELECT source_id FROM replies WHERE object_id = %(o)s"
                " UNION ALL SELECT source_id FROM notes WHERE object_id = %(o)s)",
                {"o": object_id},
            ).fetchone()
        return (str(row[0]), row[1]) if row else None

    def source_of_submission(self, submission_id: str) -> tuple[str, str | None] | None:
        with self.db.connect() as conn:
            row = conn.execute(
                "SELECT s.id, s.desk FROM submissions u JOIN sources s ON s.id = u.source_id"
                " WHERE u.id = %s",
                (submission_id,),
            ).fetchone()
        return (str(row[0]), row[1]) if row else None

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
        """The triage row is locked before its tags are read, so two journalists
        tagging at once (on two instances) both keep their tags."""
        with self.db.connect() as conn:
            conn.execute(
                "INSERT INTO triage(source_id) VALUES (%s) ON CONFLICT (source_id) DO NOTHING",
                (source_id,),
            )
            row = conn.execute(
                "SELECT tags FROM triage WHERE source_id = %s FOR UPDATE", (source_id,)
            ).fetchone()
            if tags is not None or add_tags or remove_tags:
                current = set(json.loads(row[0])) if row else set()
                new = set(tags) if tags is not None else current
                new = (new | set(add_tags or ())) - set(remove_tags or ())
                if len(new) > max_tags:
                    raise TriageRefused("tags")
                tags = sorted(new)
            assignee_id = None
            if assignee is not None:
                found = conn.execute(
                    "SELECT id FROM journalists WHERE name = %s", (assignee,)
                ).fetchone()
                if found is None:
                    raise TriageRefused("assignee")
                assignee_id = found[0]
            conn.execute(
                "UPDATE triage SET"
                " seen = coalesce(%(seen)s, seen),"
                " starred = coalesce(%(starred)s, starred),"
                " tags = coalesce(%(tags)s, tags),"
                " assignee = CASE WHEN %(set_assignee)s THEN %(assignee)s ELSE assignee END"
                " WHERE source_id = %(source)s",
                {
                    "seen": None if seen is None else int(seen),
                    "starred": None if starred is None else int(starred),
                    "tags": None if tags is None else json.dumps(tags),
                    "set_assignee": assignee is not None or clear_assignee,
                    "assignee": assignee_id,
                    "source": source_id,
                },
            )


if TYPE_CHECKING:
    from server.store.protocols import (
        DeskAdmin,
        DigestStore,
        JournalistStore,
        NewsroomStore,
        SourceStore,
    )

    def _are_the_protocols(
        db: PostgresDatabase,
    ) -> tuple[JournalistStore, SourceStore, NewsroomStore, DigestStore, DeskAdmin]:
        # mypy checks that each class has its Protocol's every method
        return (
            PostgresJournalistStore(db),
            PostgresSourceStore(db),
            PostgresNewsroomStore(db),
            PostgresJournalistStore(db),
            PostgresJournalistStore(db),
        )
