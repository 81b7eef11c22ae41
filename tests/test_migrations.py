"""Schema migrations: a first-release (v1) database upgraded keeps its data; newer refused."""

from __future__ import annotations

import sqlite3
import subprocess
from pathlib import Path

import pytest

from server.db import SCHEMA_VERSION, UPLOADS_SCHEMA, Database
from server.migrations import MIGRATIONS, Migration, MigrationError, current_version, prepare
from tests.server_process import ROOT, SERVER_CMD

# The schema exactly as the first release (fe4298a) created it: frozen here,
# because server.db.SCHEMA moves on.
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


def dump(path: Path, table: str) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall()
    finally:
        conn.close()


def test_v1_database_is_migrated_and_keeps_its_data(tmp_path: Path) -> None:
    path = v1_database(tmp_path / "lanterne.sqlite3")
    before = {t: dump(path, t) for t in ("journalists", "sources", "submissions", "objects")}
    before["replies"] = dump(path, "replies")
    applied = prepare(path)
    assert [m.to_version for m in applied] == list(range(2, SCHEMA_VERSION + 1))
    assert current_version(path) == SCHEMA_VERSION
    for table, rows in before.items():
        assert dump(path, table) == rows, table
    # The new tables work with the old rows, through the app's own code.
    db = Database(path)
    assert [j.name for j in db.journalists()] == ["alice"]
    with db.connect() as conn:
        conn.execute("INSERT INTO triage(source_id, starred) VALUES ('s1', 1)")
        conn.execute("INSERT INTO notes VALUES ('n1', 's1', 'o4', 1, '2026-01-06')")
    assert db.known_object_ids() == {"o1", "o2", "o3", "o4"}
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
