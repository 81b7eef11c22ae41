"""Schema migrations: a first-release (v1) database upgraded keeps its data; newer refused."""

from __future__ import annotations

import sqlite3
import subprocess
from pathlib import Path

import pytest

from server.domain.newsroom import Newsroom
from server.domain.source_lifecycle import SourceLifecycle
from server.store.db import SCHEMA_VERSION, UPLOADS_SCHEMA, Database
from server.store.migrations import MIGRATIONS, Migration, MigrationError, current_version, prepare
from server.store.newsroom import SqliteNewsroomStore
from server.store.objects import ObjectStore
from server.store.sources import SqliteSourceStore
from tests.server_process import ROOT, SERVER_CMD

# The schema exactly as the first release (fe4298a) created it: frozen here,
# because server.store.db.SCHEMA moves on.
SCHEMA_V1 = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE journalists (
    id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, encryption_key BLOB NOT NULL,
    signing_key BLOB NOT NULL,
    role TEXT NOT NULL DEFAULT 'journalist' CHECK (role IN ('journalist', 'admin')),
    added_on TEXT NOT NULL);
CREATE TABLE sources (
    id TEXT PRIMARY KEY, login_hash BLOB NOT NULL UNIQUE, reply_key BLOB NOT NULL,
    created_on TEXT NOT NULL, last_active_on TEXT NOT NULL);
CREATE TABLE submissions (
    id TEXT PRIMARY KEY, source_id TEXT REFERENCES sources(id) ON DELETE SET NULL,
    received_on TEXT NOT NULL);
CREATE TABLE objects (
    id TEXT PRIMARY KEY,
    submission_id TEXT NOT NULL REFERENCES submissions(id) ON DELETE CASCADE,
    kind TEXT NOT NULL CHECK (kind IN ('manifest', 'message', 'file')),
    size INTEGER NOT NULL);
CREATE INDEX objects_by_submission ON objects(submission_id);
CREATE TABLE replies (
    id TEXT PRIMARY KEY, source_id TEXT NOT NULL REFERENCES sources(id) ON DELETE CASCADE,
    object_id TEXT NOT NULL, journalist_id INTEGER REFERENCES journalists(id) ON DELETE SET NULL,
    sent_on TEXT NOT NULL);
CREATE INDEX replies_by_source ON replies(source_id);
INSERT INTO meta VALUES ('schema_version', '1');
INSERT INTO journalists VALUES (1, 'alice', x'01', x'02', 'journalist', '2026-01-02');
INSERT INTO sources VALUES ('s1', x'aa', x'bb', '2026-01-03', '2026-01-04');
INSERT INTO submissions VALUES ('sub1', 's1', '2026-01-03');
INSERT INTO objects VALUES ('o1', 'sub1', 'manifest', 4096), ('o2', 'sub1', 'file', 8192);
INSERT INTO replies VALUES ('r1', 's1', 'o3', 1, '2026-01-05');
"""


def v1_database(path: Path) -> Path:
    conn = sqlite3.connect(path)
    conn.executescript(SCHEMA_V1)
    conn.close()
    return path


def dump(path: Path, table: str, columns: str = "*") -> list[tuple[object, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(f"SELECT {columns} FROM {table} ORDER BY 1").fetchall()
    finally:
        conn.close()


V1_SOURCE_COLUMNS = "id, login_hash, reply_key, created_on, last_active_on"
V1_JOURNALIST_COLUMNS = "id, name, encryption_key, signing_key, role, added_on"


def test_v1_database_is_migrated_and_keeps_its_data(tmp_path: Path) -> None:
    path = v1_database(tmp_path / "lanterne.sqlite3")
    before = {t: dump(path, t) for t in ("submissions", "objects", "replies")}
    sources = dump(path, "sources")
    journalists = dump(path, "journalists")
    applied = prepare(path)
    assert [m.to_version for m in applied] == list(range(2, SCHEMA_VERSION + 1))
    assert current_version(path) == SCHEMA_VERSION
    for table, rows in before.items():
        assert dump(path, table) == rows, table
    assert dump(path, "sources", V1_SOURCE_COLUMNS) == sources
    assert dump(path, "sources", "deleted_by_source") == [(0,)]
    assert dump(path, "journalists", V1_JOURNALIST_COLUMNS) == journalists
    # Version 4: keys registered before hybrid keys existed are X25519-only.
    assert dump(path, "journalists", "hybrid_key") == [(None,)]
    # Version 7: sources from before desks stay with the whole newsroom.
    assert dump(path, "sources", "desk") == [(None,)]
    assert dump(path, "journalists", "all_desks") == [(0,)]
    assert Database(path).desks() == []
    # The new tables work with the old rows, through the app's own code.
    db = Database(path)
    assert [j.name for j in db.journalists()] == ["alice"]
    with db.connect() as conn:
        conn.execute("INSERT INTO triage(source_id, starred) VALUES ('s1', 1)")
        conn.execute("INSERT INTO notes VALUES ('n1', 's1', 'o4', 1, '2026-01-06')")
    assert db.known_object_ids() == {"o1", "o2", "o3", "o4"}
    # Version 6: the daily digest's addresses, none yet.
    assert db.digest_subscriptions() == []
    assert db.set_digest_address("alice", "alice@example.org")
    assert [s.address for s in db.digest_subscriptions()] == ["alice@example.org"]
    # Idempotent: nothing more to do the second time.
    assert prepare(path) == []
    assert dump(path, "notes") == [("n1", "s1", "o4", 1, "2026-01-06")]


def test_migrated_schema_matches_a_fresh_one(tmp_path: Path) -> None:
    old = v1_database(tmp_path / "old.sqlite3")
    prepare(old)
    # Transient upload state is not migrated: UploadStore.prepare creates it at start.
    conn = sqlite3.connect(old)
    conn.executescript(UPLOADS_SCHEMA)
    conn.close()
    fresh = tmp_path / "fresh.sqlite3"
    Database(fresh).create()

    def shape(path: Path) -> dict[str, list[tuple[object, ...]]]:
        conn = sqlite3.connect(path)
        try:
            rows = conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
            tables = [r[0] for r in rows]
            return {t: conn.execute(f"PRAGMA table_info({t})").fetchall() for t in sorted(tables)}
        finally:
            conn.close()

    assert shape(old) == shape(fresh)


def test_newer_database_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "lanterne.sqlite3"
    Database(path).create()
    conn = sqlite3.connect(path)
    conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (SCHEMA_VERSION + 1,))
    conn.commit()
    conn.close()
    with pytest.raises(MigrationError, match="newer than this release"):
        prepare(path)
    assert current_version(path) == SCHEMA_VERSION + 1


def test_failed_step_rolls_back_everything(tmp_path: Path) -> None:
    path = v1_database(tmp_path / "lanterne.sqlite3")

    def broken(conn: sqlite3.Connection) -> None:
        conn.execute("CREATE TABLE half_done (x INTEGER)")
        raise RuntimeError("disk on fire")

    steps = (*MIGRATIONS, Migration(SCHEMA_VERSION + 1, "broken", broken))
    with pytest.raises(RuntimeError, match="disk on fire"):
        prepare(path, migrations=steps, target=SCHEMA_VERSION + 1)
    # Not even step 2 stayed: one transaction for the whole upgrade.
    assert current_version(path) == 1
    conn = sqlite3.connect(path)
    names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    conn.close()
    assert "half_done" not in names and "triage" not in names


def test_unversioned_foreign_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.sqlite3"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE something (x)")
    conn.commit()
    conn.close()
    with pytest.raises(MigrationError, match="no schema version"):
        prepare(path)


def test_run_refuses_a_newer_database_with_a_clear_message(tmp_path: Path) -> None:
    data = tmp_path / "data"
    subprocess.run(
        [*SERVER_CMD, "init", "--data-dir", str(data)], cwd=ROOT, check=True, capture_output=True
    )
    conn = sqlite3.connect(data / "lanterne.sqlite3")
    conn.execute("UPDATE meta SET value = '999' WHERE key = 'schema_version'")
    conn.commit()
    conn.close()
    done = subprocess.run(
        [*SERVER_CMD, "run", "--data-dir", str(data), "--port", "1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert "newer than this release" in done.stderr and "Traceback" not in done.stderr


def test_init_upgrades_a_v1_instance(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    v1_database(data / "lanterne.sqlite3")
    done = subprocess.run(
        [*SERVER_CMD, "init", "--data-dir", str(data)], cwd=ROOT, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert "schema version 1 -> " in done.stdout
    assert current_version(data / "lanterne.sqlite3") == SCHEMA_VERSION
    assert [r[1] for r in dump(data / "lanterne.sqlite3", "journalists")] == ["alice"]


def test_submissions_unlinked_by_older_releases_are_listed_and_deletable(tmp_path: Path) -> None:
    """Before issue 11 a source deleting their account left submissions with no
    source: listed nowhere, deletable by nobody. The migration gives each one a
    source of its own, marked deleted by the source, so journalists see it."""
    path = v1_database(tmp_path / "lanterne.sqlite3")
    conn = sqlite3.connect(path)
    conn.executescript(
        """
        INSERT INTO submissions VALUES ('sub2', NULL, '2026-02-01'), ('sub3', NULL, '2026-02-03');
        INSERT INTO objects VALUES ('o5', 'sub2', 'manifest', 4096), ('o6', 'sub3', 'file', 1);
        """
    )
    conn.close()
    prepare(path)
    linked = dump(path, "submissions", "source_id")
    assert len(linked) == 3 and None not in {row[0] for row in linked}
    db = Database(path)
    objects = tmp_path / "objects"
    objects.mkdir()
    for name in ("o1", "o2", "o5", "o6"):
        (objects / name).write_bytes(b"x")
    store = ObjectStore(objects)
    room = Newsroom(SqliteNewsroomStore(db), store, SourceLifecycle(SqliteSourceStore(db), store))
    listed = {s.id: s for s in room.sources()}
    assert len(listed) == 3
    orphans = [s for s in listed.values() if s.account_deleted]
    assert sorted(s.last_activity for s in orphans) == ["2026-02-01", "2026-02-03"]
    assert all(s.submissions == 1 and s.reply_key is None for s in orphans)
    assert not listed["s1"].account_deleted
    # The schema now forbids a submission without its source.
    with pytest.raises(sqlite3.IntegrityError), db.connect() as conn:
        conn.execute("INSERT INTO submissions VALUES ('sub4', NULL, '2026-02-04')")


def test_journalist_ids_are_never_reused_after_migrating(tmp_path: Path) -> None:
    path = v1_database(tmp_path / "lanterne.sqlite3")
    prepare(path)
    db = Database(path)
    db.add_journalist("bruno", b"\x03", b"\x04", "journalist", "2026-01-02")
    [bruno] = [j.id for j in db.journalists() if j.name == "bruno"]
    assert db.remove_journalist("bruno")
    db.add_journalist("chloe", b"\x05", b"\x06", "journalist", "2026-01-03")
    [chloe] = [j.id for j in db.journalists() if j.name == "chloe"]
    assert chloe > bruno
