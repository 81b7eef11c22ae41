"""The local vault: ciphertext objects named by their server ids, and an index.

    $LANTERNE_HOME/vault/
        index.sqlite3      sources, submissions, objects, replies/notes, triage, accepted keys
        objects/<id>       envelope bytes exactly as the server stored them
        objects/<id>.part  a download in progress (resumed with an HTTP Range)

Nothing in the vault is plaintext: objects are envelopes, and the index holds
what the server itself knows (ids, days, sizes, triage state). Objects appear
under their final name only when complete (fsync, then rename), so a crash
leaves either nothing or a ``.part`` file that the next pull resumes.

The index runs in WAL mode with ``synchronous=NORMAL``: a power cut may lose
its last transactions but never corrupts it, and everything in it can be
fetched again (objects whose file is missing are marked missing on the next
pull; triage state lives on the server).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from journalist_cli import designations, safe_text
from journalist_cli.records import (
    ID_PATTERN,
    ChannelDays,
    ChannelInfo,
    ItemInfo,
    JournalistInfo,
    ObjectInfo,
    SourceDetail,
    SourceInfo,
    SubmissionInfo,
)
from journalist_cli.workflow_errors import ServerError, UnknownSource, VaultError

MIN_PREFIX = 4
SCHEMA_VERSION = 3
# reply_key: what the server gives now (NULL once the source deleted their
# account); pinned_reply_key: the first one this vault saw, the only one
# replies are ever encrypted to (see ``store_summary``).
SCHEMA = """
CREATE TABLE IF NOT EXISTS sources (
    id               TEXT PRIMARY KEY,
    reply_key        TEXT,
    last_activity    TEXT NOT NULL,
    submissions      INTEGER NOT NULL,
    size             INTEGER NOT NULL,
    seen             INTEGER NOT NULL,
    starred          INTEGER NOT NULL,
    tags             TEXT NOT NULL,
    assignee         TEXT,
    notes            INTEGER NOT NULL,
    replies          INTEGER NOT NULL,
    detailed         INTEGER NOT NULL DEFAULT 0,
    account_deleted  INTEGER NOT NULL DEFAULT 0,
    pinned_reply_key TEXT,
    channel          TEXT,  -- an official channel's days (records.ChannelDays), JSON
    desk             TEXT
);
CREATE TABLE IF NOT EXISTS submissions (
    id          TEXT PRIMARY KEY,
    source_id   TEXT NOT NULL REFERENCES sources(id) ON DELETE CASCADE,
    received_on TEXT NOT NULL,
    position    INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS objects (
    id            TEXT PRIMARY KEY,
    source_id     TEXT NOT NULL REFERENCES sources(id) ON DELETE CASCADE,
    submission_id TEXT REFERENCES submissions(id) ON DELETE CASCADE,
    item_id       TEXT,
    kind          TEXT NOT NULL
                  CHECK (kind IN ('manifest', 'message', 'file', 'reply', 'note')),
    size          INTEGER NOT NULL,
    day           TEXT,
    journalist    TEXT,
    position      INTEGER NOT NULL,
    present       INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS objects_by_source ON objects(source_id);
CREATE TABLE IF NOT EXISTS channel_info (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS accepted_keys (
    name           TEXT PRIMARY KEY,
    encryption_key TEXT NOT NULL,
    signing_key    TEXT NOT NULL,
    fingerprint    TEXT NOT NULL
);
"""
# Version 0 to 1: reply_key may be NULL, account_deleted and pinned_reply_key
# appear. SQLite cannot relax NOT NULL in place, so the table is rebuilt the
# way SQLite's documentation prescribes (new table, copy, drop, rename, with
# foreign keys off); the key each source had then becomes its pinned key.
MIGRATE_0_TO_1 = (
    SCHEMA.split(";")[0].replace("IF NOT EXISTS sources", "sources_v1"),
    "INSERT INTO sources_v1(id, reply_key, last_activity, submissions, size, seen, starred,"
    " tags, assignee, notes, replies, detailed, pinned_reply_key)"
    " SELECT id, reply_key, last_activity, submissions, size, seen, starred, tags,"
    " assignee, notes, replies, detailed, reply_key FROM sources",
    "DROP TABLE sources",
    "ALTER TABLE sources_v1 RENAME TO sources",
)
MIGRATE_1_TO_2 = ("ALTER TABLE sources ADD COLUMN channel TEXT",)
# Version 2 to 3: the source's desk (docs/DESKS.md), NULL for the whole newsroom.
MIGRATE_2_TO_3 = ("ALTER TABLE sources ADD COLUMN desk TEXT",)


@dataclass(frozen=True)
class ObjectRecord:
    id: str
    source_id: str
    submission_id: str | None
    item_id: str | None
    kind: str
    size: int
    day: str | None
    journalist: str | None
    present: bool


@dataclass(frozen=True)
class SubmissionRecord:
    id: str
    source_id: str
    received_on: str
    objects: tuple[ObjectRecord, ...]

    def of_kind(self, kind: str) -> list[ObjectRecord]:
        return [o for o in self.objects if o.kind == kind]


@dataclass(frozen=True)
class SourceRecord:
    info: SourceInfo
    objects: int
    present: int
    stored_bytes: int
    pinned_reply_key: str | None = None
    label_en: str = ""  # the designation, with a short id when another source shares it
    label_fr: str = ""

    @property
    def id(self) -> str:
        return self.info.id

    @property
    def missing(self) -> int:
        return self.objects - self.present

    @property
    def reply_key_changed(self) -> bool:
        """The server now gives another reply key than the one pinned (see ``store_summary``)."""
        current = self.info.reply_key
        return None not in (current, self.pinned_reply_key) and current != self.pinned_reply_key

    @property
    def account_deleted(self) -> bool:
        return self.info.account_deleted

    def designation(self, language: designations.Language = "en") -> str:
        return designations.designation(self.info.id, language)

    def label(self, language: designations.Language = "en") -> str:
        """How listings name it: the designation, plus a short id if it is ambiguous."""
        return (self.label_fr if language == "fr" else self.label_en) or self.designation(language)


class Vault:
    """The vault under ``root``; ``Vault.open`` creates it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.objects_dir = root / "objects"
        self.index_path = root / "index.sqlite3"
        # One connection for the vault's life, shared by threads one transaction
        # at a time: closing the last connection to a WAL database checkpoints
        # it, which costs fsyncs that a connection per call would pay each time.
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    @classmethod
    def open(cls, home: Path) -> Vault:
        vault = cls(home / "vault")
        for d in (vault.root, vault.objects_dir):
            d.mkdir(mode=0o700, parents=True, exist_ok=True)
        # SQLite gives its -wal and -shm files the mode of the database file.
        os.close(os.open(vault.index_path, os.O_RDWR | os.O_CREAT, 0o600))
        vault.index_path.chmod(0o600)
        try:
            with contextlib.closing(
                sqlite3.connect(vault.index_path, timeout=30, isolation_level=None)
            ) as conn:
                conn.execute("PRAGMA journal_mode = WAL")
                _migrate(conn)  # foreign keys are off on this connection
        except sqlite3.Error as exc:
            raise VaultError(f"cannot open the vault index {vault.index_path}: {exc}") from exc
        with vault._connect() as conn:
            for statement in SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        return vault

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            conn = self._conn or self._open_index()
            try:
                conn.execute("BEGIN IMMEDIATE")
                yield conn
                conn.execute("COMMIT")
            except sqlite3.DatabaseError as exc:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
                raise VaultError(f"the vault index {self.index_path} is damaged: {exc}") from exc
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
                raise

    def _open_index(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(
                self.index_path, timeout=30, isolation_level=None, check_same_thread=False
            )
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA secure_delete = ON")  # deleted rows are zeroed, as on the server
        except sqlite3.Error as exc:
            raise VaultError(f"cannot open the vault index {self.index_path}: {exc}") from exc
        self._conn = conn
        return conn

    # Paths

    def object_path(self, object_id: str) -> Path:
        if not ID_PATTERN.fullmatch(object_id):
            raise VaultError(f"not an object id: {object_id[:80]!r}")
        return self.objects_dir / object_id

    def partial_path(self, object_id: str) -> Path:
        return self.object_path(object_id).with_name(object_id + ".part")

    # Writing what the server (or a bundle) says

    def store_summary(self, info: SourceInfo) -> bool:
        """Record a source's summary; True when its items may have changed since last time.

        A change also marks the source as needing its detail again, until
        ``store_detail`` records it: a pull cut between the two asks again.

        The first reply key seen for a source is pinned: a server that later
        gives another one (to read the replies, or to impersonate the source)
        is recorded, and ``SourceRecord.reply_key_changed`` makes every
        command warn and `reply` refuse. A key that becomes NULL is not a
        change: the source deleted their account, nothing can reach them.
        """
        with self._connect() as conn:
            row = conn.execute(
                "SELECT last_activity, submissions, notes, replies, detailed, desk FROM sources"
                " WHERE id = ?",
                (info.id,),
            ).fetchone()
            changed = row is None or tuple(row) != (
                info.last_activity,
                info.submissions,
                info.notes,
                info.replies,
                1,
                info.desk,  # a move re-encrypts everything under new object ids
            )
            conn.execute(
                "INSERT INTO sources(id, reply_key, last_activity, submissions, size, seen,"
                " starred, tags, assignee, notes, replies, account_deleted, channel, desk,"
                " pinned_reply_key) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
                " ON CONFLICT(id) DO UPDATE SET reply_key=excluded.reply_key,"
                " last_activity=excluded.last_activity, submissions=excluded.submissions,"
                " size=excluded.size, seen=excluded.seen, starred=excluded.starred,"
                " tags=excluded.tags, assignee=excluded.assignee, notes=excluded.notes,"
                " replies=excluded.replies, channel=excluded.channel, desk=excluded.desk,"
                # Once deleted, always deleted: a server cannot bring the account back.
                " account_deleted=max(account_deleted, excluded.account_deleted),"
                " pinned_reply_key=coalesce(pinned_reply_key, excluded.reply_key)",
                (*_summary_row(info), info.reply_key),
            )
            if changed:
                conn.execute("UPDATE sources SET detailed = 0 WHERE id = ?", (info.id,))
        return changed

    def store_detail(self, detail: SourceDetail) -> list[str]:
        """Record a source's items; returns ids of objects the server no longer lists."""
        self.store_summary(detail.source)
        sid = detail.source.id
        listed: list[tuple[ObjectInfo | ItemInfo, str | None, str]] = []
        for sub in detail.submissions:
            listed += [(o, sub.id, o.kind) for o in sub.objects]
        listed += [(r, None, "reply") for r in detail.replies]
        listed += [(n, None, "note") for n in detail.notes]
        keep = {_object_id(x) for x, _, _ in listed}
        with self._connect() as conn:
            gone = [
                r[0]
                for r in conn.execute("SELECT id FROM objects WHERE source_id = ?", (sid,))
                if r[0] not in keep
            ]
            conn.executemany("DELETE FROM objects WHERE id = ?", [(g,) for g in gone])
            subs = {s.id for s in detail.submissions}
            conn.executemany(
                "DELETE FROM submissions WHERE id = ?",
                [
                    (r[0],)
                    for r in conn.execute("SELECT id FROM submissions WHERE source_id = ?", (sid,))
                    if r[0] not in subs
                ],
            )
            for pos, sub in enumerate(detail.submissions):
                _upsert_submission(conn, sid, sub, pos)
            for pos, (thing, sub_id, kind) in enumerate(listed):
                _upsert_object(conn, sid, thing, sub_id, kind, pos)
            conn.execute("UPDATE sources SET detailed = 1 WHERE id = ?", (sid,))
        self._remove_files(gone)
        return gone

    def keep_only_sources(self, ids: Iterable[str]) -> list[str]:
        """Remove every source not in ``ids`` (deleted on the server); returns their ids."""
        wanted = set(ids)
        removed = [s for s in self.source_ids() if s not in wanted]
        for sid in removed:
            self.delete_source(sid)
        return removed

    def delete_source(self, source_id: str) -> None:
        with self._connect() as conn:
            objs = [
                r[0]
                for r in conn.execute("SELECT id FROM objects WHERE source_id = ?", (source_id,))
            ]
            conn.execute("DELETE FROM sources WHERE id = ?", (source_id,))
        self._remove_files(objs)

    def delete_submission(self, submission_id: str) -> None:
        """Forget a submission deleted on the server, and take it out of its
        source's counts and size as the server does: listings stay true
        without waiting for the next pull."""
        with self._connect() as conn:
            owner = conn.execute(
                "SELECT source_id FROM submissions WHERE id = ?", (submission_id,)
            ).fetchone()
            rows = conn.execute(
                "SELECT id, size FROM objects WHERE submission_id = ?", (submission_id,)
            ).fetchall()
            conn.execute("DELETE FROM submissions WHERE id = ?", (submission_id,))
            if owner is not None:
                conn.execute(
                    "UPDATE sources SET submissions = max(submissions - 1, 0),"
                    " size = max(size - ?, 0) WHERE id = ?",
                    (sum(max(r[1], 0) for r in rows), owner[0]),
                )
        self._remove_files(r[0] for r in rows)

    def _remove_files(self, object_ids: Iterable[str]) -> None:
        for oid in object_ids:
            for path in (self.object_path(oid), self.partial_path(oid)):
                path.unlink(missing_ok=True)

    def update_triage(self, info: SourceInfo) -> None:
        """Triage changed on the server: keep the items, update the summary."""
        with self._connect() as conn:
            conn.execute(
                "UPDATE sources SET seen=?, starred=?, tags=?, assignee=? WHERE id=?",
                (
                    int(info.seen),
                    int(info.starred),
                    json.dumps(list(info.tags)),
                    info.assignee,
                    info.id,
                ),
            )

    def add_item(
        self,
        source_id: str,
        kind: str,
        item_id: str,
        object_id: str,
        day: str,
        journalist: str | None,
        sealed: bytes,
    ) -> None:
        """A note or reply we just posted: its envelope goes straight into the vault."""
        self.write_object(object_id, sealed)
        with self._connect() as conn:
            pos = conn.execute(
                "SELECT coalesce(max(position), -1) + 1 FROM objects WHERE source_id = ?",
                (source_id,),
            ).fetchone()[0]
            conn.execute(
                "INSERT OR REPLACE INTO objects(id, source_id, item_id, kind, size, day,"
                " journalist, position, present) VALUES (?,?,?,?,?,?,?,?,1)",
                (object_id, source_id, item_id, kind, len(sealed), day, journalist, pos),
            )
            column = "notes" if kind == "note" else "replies"
            # Column names are the two literals above.
            conn.execute(
                f"UPDATE sources SET {column} = {column} + 1 WHERE id = ?",  # noqa: S608
                (source_id,),
            )

    # Objects

    def write_object(self, object_id: str, data: bytes) -> None:
        final = self.object_path(object_id)
        part = self.partial_path(object_id)
        with part.open("wb") as out:
            out.write(data)
        self.complete_object(object_id)
        assert final.exists()

    def complete_object(self, object_id: str) -> None:
        """fsync the ``.part`` file, rename it into place and mark the object present.

        Replies and notes are listed without a size: the file gives it.
        """
        part = self.partial_path(object_id)
        size = part.stat().st_size
        fd = os.open(part, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        part.chmod(0o600)
        part.replace(self.object_path(object_id))
        dir_fd = os.open(self.objects_dir, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        with self._connect() as conn:
            conn.execute(
                "UPDATE objects SET present = 1, size = CASE WHEN size < 0 THEN ? ELSE size END"
                " WHERE id = ?",
                (size, object_id),
            )

    def missing_objects(self) -> list[ObjectRecord]:
        """Objects listed in the index whose file is not complete yet, in listing order."""
        with self._connect() as conn:
            rows = conn.execute(
                "SELECT o.* FROM objects o JOIN sources s ON s.id = o.source_id"
                " WHERE o.present = 0 ORDER BY s.last_activity DESC, s.id, o.position"
            ).fetchall()
        return [_object(r) for r in rows]

    def check_present(self) -> int:
        """Mark objects whose file disappeared as missing again; returns how many."""
        with self._connect() as conn:
            ids = [r[0] for r in conn.execute("SELECT id FROM objects WHERE present = 1")]
            lost = [i for i in ids if not self.object_path(i).is_file()]
            conn.executemany("UPDATE objects SET present = 0 WHERE id = ?", [(i,) for i in lost])
        return len(lost)

    # Reading

    def source_ids(self) -> list[str]:
        with self._connect() as conn:
            return [r[0] for r in conn.execute("SELECT id FROM sources ORDER BY id")]

    def sources(self) -> list[SourceRecord]:
        with self._connect() as conn:
            rows = conn.execute(
                "SELECT s.*,"
                " (SELECT count(*) FROM objects WHERE source_id = s.id) AS n_objects,"
                " (SELECT count(*) FROM objects WHERE source_id = s.id AND present = 1)"
                "   AS n_present,"
                " (SELECT coalesce(sum(size), 0) FROM objects"
                "   WHERE source_id = s.id AND present = 1) AS stored"
                " FROM sources s ORDER BY s.last_activity DESC, s.id"
            ).fetchall()
        ids = [r["id"] for r in rows]
        labels = {lang: designations.labels(ids, lang) for lang in designations.LANGUAGES}
        return [
            SourceRecord(
                info=_summary(r),
                objects=r["n_objects"],
                present=r["n_present"],
                stored_bytes=r["stored"],
                pinned_reply_key=r["pinned_reply_key"],
                label_en=labels["en"][r["id"]],
                label_fr=labels["fr"][r["id"]],
            )
            for r in rows
        ]

    def source(self, source_id: str) -> SourceRecord:
        for record in self.sources():
            if record.id == source_id:
                return record
        raise UnknownSource(f"no source {source_id!r} in the vault")

    def submissions(self, source_id: str) -> list[SubmissionRecord]:
        with self._connect() as conn:
            subs = conn.execute(
                "SELECT id, received_on FROM submissions WHERE source_id = ? ORDER BY position",
                (source_id,),
            ).fetchall()
            objs = [
                _object(r)
                for r in conn.execute(
                    "SELECT o.* FROM objects o WHERE o.source_id = ? ORDER BY o.position",
                    (source_id,),
                )
            ]
        return [
            SubmissionRecord(sid, source_id, day, tuple(o for o in objs if o.submission_id == sid))
            for sid, day in subs
        ]

    def items(self, source_id: str, kind: str) -> list[ObjectRecord]:
        """Replies (``kind="reply"``) or notes (``"note"``) of a source, oldest first."""
        with self._connect() as conn:
            return [
                _object(r)
                for r in conn.execute(
                    "SELECT o.* FROM objects o WHERE o.source_id = ?"
                    " AND o.kind = ? ORDER BY o.position",
                    (source_id, kind),
                )
            ]

    def all_objects(self) -> list[ObjectRecord]:
        with self._connect() as conn:
            return [_object(r) for r in conn.execute("SELECT o.* FROM objects o ORDER BY o.id")]

    def detail(self, source_id: str) -> SourceDetail:
        """What the server said about a source, as recorded (for bundles)."""
        record = self.source(source_id)
        subs = tuple(
            SubmissionInfo(
                s.id,
                s.received_on,
                tuple(ObjectInfo(o.id, o.kind, o.size) for o in s.objects),
            )
            for s in self.submissions(source_id)
        )

        def items(kind: str) -> tuple[ItemInfo, ...]:
            return tuple(
                ItemInfo(o.item_id or o.id, o.id, o.day or "", o.journalist, max(o.size, 0))
                for o in self.items(source_id, kind)
            )

        return SourceDetail(record.info, subs, items("reply"), items("note"))

    def resolve(self, typed: str) -> str:
        """A source id from an id, a unique id prefix, a designation (any language) or
        the beginning of one ("nimble" for "nimble ibex").

        A whole designation wins over prefixes; anything that fits several
        sources is refused with the candidates, never guessed.
        """
        typed = typed.strip()
        ids = self.source_ids()
        if typed in ids:
            return typed
        found = [i for i in ids if designations.matches(i, typed)]
        if not found:
            by_prefix = (
                [i for i in ids if i.startswith(typed.lower())] if len(typed) >= MIN_PREFIX else []
            )
            found = [i for i in ids if designations.matches_prefix(i, typed)]
            found += [i for i in by_prefix if i not in found]
        if len(found) == 1:
            return found[0]
        if not found:
            raise UnknownSource(
                f"no source matches {safe_text.terminal(typed, one_line=True)!r} in the vault"
                " (try `lanterne list`, or pull first)"
            )
        short = designations.short_ids(ids)
        options = ", ".join(f"{designations.designation(i)} ({short[i]})" for i in found[:8])
        more = f" and {len(found) - 8} more" if len(found) > 8 else ""
        shown = safe_text.terminal(typed, one_line=True)
        raise UnknownSource(
            f"{shown!r} matches several sources: {options}{more}; give more of the name or the id"
        )

    def label(self, source_id: str, language: designations.Language = "en") -> str:
        """The designation of ``source_id``, with a short id if another source shares it."""
        return designations.labels(self.source_ids(), language).get(
            source_id, designations.designation(source_id, language)
        )

    # Accepted journalist keys (see workflow_errors.UnverifiedKeys)

    def accepted_keys(self) -> dict[str, tuple[str, str, str]]:
        """Name -> (X25519 key, signing key, fingerprint over every key) as accepted."""
        with self._connect() as conn:
            return {
                r[0]: (r[1], r[2], r[3])
                for r in conn.execute(
                    "SELECT name, encryption_key, signing_key, fingerprint FROM accepted_keys"
                )
            }

    def store_channel(self, info: ChannelInfo) -> None:
        """What the server said of its channel at the last pull (its day included)."""
        doc = dataclasses.asdict(info)
        with self._connect() as conn:
            conn.execute(
                "INSERT INTO channel_info(key, value) VALUES ('channel', ?)"
                " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (json.dumps(doc),),
            )

    def channel(self) -> ChannelInfo | None:
        """The channel as the server described it at the last pull (None: never)."""
        with self._connect() as conn:
            row = conn.execute("SELECT value FROM channel_info WHERE key = 'channel'").fetchone()
        if row is None:
            return None
        try:
            return ChannelInfo.parse(json.loads(row[0]))
        except (ValueError, ServerError) as exc:
            raise VaultError(f"the vault index holds a bad channel description: {exc}") from exc

    def accept_keys(self, keys: Iterable[JournalistInfo]) -> None:
        with self._connect() as conn:
            conn.execute("DELETE FROM accepted_keys")
            conn.executemany(
                "INSERT INTO accepted_keys VALUES (?,?,?,?)",
                [(k.name, k.encryption_key, k.signing_key, k.fingerprint) for k in keys],
            )


def _migrate(conn: sqlite3.Connection) -> None:
    """Bring an index written by an older `lanterne` to ``SCHEMA_VERSION``."""
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise VaultError(
            "this vault was written by a newer lanterne (index version"
            f" {version}); upgrade lanterne to use it"
        )
    exists = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sources'"
    ).fetchone()
    steps = {
        0: MIGRATE_0_TO_1,  # rebuilds the table with today's columns
        1: MIGRATE_1_TO_2 + MIGRATE_2_TO_3,
        2: MIGRATE_2_TO_3,
    }.get(version)
    if steps is not None and exists:
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in steps:
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise


def _object(r: sqlite3.Row) -> ObjectRecord:
    return ObjectRecord(
        id=r["id"],
        source_id=r["source_id"],
        submission_id=r["submission_id"],
        item_id=r["item_id"],
        kind=r["kind"],
        size=int(r["size"]),
        day=r["day"],
        journalist=r["journalist"],
        present=bool(r["present"]),
    )


def _summary_row(info: SourceInfo) -> tuple[object, ...]:
    return (
        info.id,
        info.reply_key,
        info.last_activity,
        info.submissions,
        info.size,
        int(info.seen),
        int(info.starred),
        json.dumps(list(info.tags)),
        info.assignee,
        info.notes,
        info.replies,
        int(info.account_deleted or info.reply_key is None),
        json.dumps(info.channel.to_api()),
        info.desk,
    )


def _summary(r: sqlite3.Row) -> SourceInfo:
    return SourceInfo(
        id=r["id"],
        reply_key=r["reply_key"],
        last_activity=r["last_activity"],
        submissions=int(r["submissions"]),
        size=int(r["size"]),
        seen=bool(r["seen"]),
        starred=bool(r["starred"]),
        tags=tuple(str(t) for t in json.loads(r["tags"])),
        assignee=r["assignee"],
        notes=int(r["notes"]),
        replies=int(r["replies"]),
        account_deleted=bool(r["account_deleted"]),
        channel=_channel_days(r["channel"]),
        desk=r["desk"],
    )


def _channel_days(text: str | None) -> ChannelDays:
    if not text:
        return ChannelDays()
    try:
        return ChannelDays.parse(json.loads(text))
    except (ValueError, ServerError) as exc:
        raise VaultError(f"the vault index holds bad channel days: {exc}") from exc


def _object_id(thing: ObjectInfo | ItemInfo) -> str:
    return thing.object_id if isinstance(thing, ItemInfo) else thing.id


def _upsert_submission(conn: sqlite3.Connection, sid: str, sub: SubmissionInfo, pos: int) -> None:
    owner = conn.execute("SELECT source_id FROM submissions WHERE id = ?", (sub.id,)).fetchone()
    if owner is not None and owner[0] != sid:
        raise VaultError(f"submission {sub.id} is listed under two sources")
    conn.execute(
        "INSERT INTO submissions(id, source_id, received_on, position) VALUES (?,?,?,?)"
        " ON CONFLICT(id) DO UPDATE SET received_on=excluded.received_on,"
        " position=excluded.position",
        (sub.id, sid, sub.received_on, pos),
    )


def _upsert_object(
    conn: sqlite3.Connection,
    sid: str,
    thing: ObjectInfo | ItemInfo,
    sub_id: str | None,
    kind: str,
    pos: int,
) -> None:
    oid = _object_id(thing)
    row = conn.execute(
        "SELECT source_id, kind, size, present FROM objects WHERE id = ?", (oid,)
    ).fetchone()
    if isinstance(thing, ItemInfo):
        size, day, who, item = thing.size, thing.day, thing.journalist, thing.id
    else:
        size, day, who, item = thing.size, None, None, None
    if row is not None and (row[0] != sid or row[1] != kind):
        raise VaultError(f"object {oid} changed owner or kind on the server; refusing it")
    if row is None:
        conn.execute(
            "INSERT INTO objects(id, source_id, submission_id, item_id, kind, size, day,"
            " journalist, position) VALUES (?,?,?,?,?,?,?,?,?)",
            (oid, sid, sub_id, item, kind, -1 if size is None else size, day, who, pos),
        )
    else:
        conn.execute(
            "UPDATE objects SET submission_id=?, item_id=?, day=?, journalist=?, position=?"
            " WHERE id=?",
            (sub_id, item, day, who, pos, oid),
        )
        if size is not None and row[3] == 0 and row[2] != size:
            conn.execute("UPDATE objects SET size=? WHERE id=?", (size, oid))
