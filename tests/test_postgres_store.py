"""The PostgreSQL database of the store layer, against a real PostgreSQL
(Debian's, a throw-away cluster per pytest process: tests/pg_cluster.py).

The schema must say what the SQLite one says (same tables, same columns),
refuse any time finer than a day, hold no address, and be created and
upgraded by the one migration list, one transaction and one upgrader at a time.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from server.store.db import SCHEMA, SCHEMA_VERSION
from server.store.ephemeral import SCHEMA as EPHEMERAL_SCHEMA
from server.store.migrations import MIGRATIONS, Migration, MigrationError
from server.store.postgres import (
    POSTGRES_BASELINE,
    PostgresDatabase,
    check_database,
    prepare,
)
from tests.pg_cluster import running_cluster

# Real processes end to end: CI runs it, scripts/test.sh --fast does not (under two minutes).
pytestmark = pytest.mark.slow


@pytest.fixture
def db(pg_url: str) -> Iterator[PostgresDatabase]:
    with PostgresDatabase(pg_url, max_size=4) as database:
        yield database


def columns(conn: psycopg.Connection) -> dict[str, set[str]]:
    rows = conn.execute(
        "SELECT table_name, column_name FROM information_schema.columns"
        " WHERE table_schema = current_schema()"
    ).fetchall()
    found: dict[str, set[str]] = {}
    for table, column in rows:
        found.setdefault(table, set()).add(column)
    return found


def sqlite_columns(tmp_path: Path) -> dict[str, set[str]]:
    conn = sqlite3.connect(tmp_path / "ref.sqlite3")
    conn.executescript(SCHEMA)
    # SQLite keeps the short-lived state in a file of its own (ephemeral.sqlite),
    # PostgreSQL in the one database: the same table either way.
    conn.executescript(EPHEMERAL_SCHEMA)
    tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    found = {
        t: {r[1] for r in conn.execute(f"PRAGMA table_info({t})")}
        for t in tables
        if not t.startswith("sqlite_")
    }
    conn.close()
    return found


def test_a_new_database_gets_the_current_schema(db: PostgresDatabase) -> None:
    assert db.schema_version() is None
    # The baseline schema, then the steps written after it.
    assert db.prepare() == [m for m in MIGRATIONS if m.to_version > POSTGRES_BASELINE]
    assert db.schema_version() == SCHEMA_VERSION
    assert db.prepare() == []  # again: nothing to do
    assert db.schema_version() == SCHEMA_VERSION


def test_the_tables_and_columns_are_sqlites(db: PostgresDatabase, tmp_path: Path) -> None:
    db.prepare()
    expected = sqlite_columns(tmp_path)
    for table in ("submissions", "objects", "replies", "notes", "desks"):  # SQLite's rowid
        expected[table] = expected[table] | {"seq"}
    with db.connect() as conn:
        assert columns(conn) == expected


def test_the_shared_short_lived_state_is_an_unlogged_table_of_the_migration_list(
    db: PostgresDatabase,
) -> None:
    """Sessions, throttles and tokens: made by the one list like every other table
    (it used to be created at start, outside the list), UNLOGGED, days only."""
    db.prepare()
    with db.connect() as conn:
        rows = conn.execute(
            "SELECT relname, relpersistence FROM pg_class"
            " WHERE relnamespace = current_schema()::regnamespace"
            " AND relname IN ('ephemeral', 'ephemeral_seq')"
        ).fetchall()
        assert sorted(rows) == [("ephemeral", "u"), ("ephemeral_seq", "u")]
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute(
                "INSERT INTO ephemeral(kind, key, value, seq, until_day)"
                " VALUES ('k', 'k', 'v', 1, '2026-12-04 16:05')"
            )


def test_a_database_from_before_the_step_gets_the_table_made_again(
    db: PostgresDatabase,
) -> None:
    """A version-4 database, with the table its release created outside the list
    (TEXT days, a session in it): the step makes it again, empty, with days."""
    four = tuple(m for m in MIGRATIONS if m.to_version <= POSTGRES_BASELINE)
    with db.connect() as conn:
        prepare(conn, migrations=four, target=POSTGRES_BASELINE)
        conn.execute(
            "CREATE UNLOGGED TABLE ephemeral (kind TEXT NOT NULL, key BYTEA NOT NULL,"
            " value BYTEA NOT NULL, tier INTEGER NOT NULL DEFAULT 0, seq BIGINT NOT NULL,"
            " until_day TEXT NOT NULL, PRIMARY KEY (kind, key))"
        )
        conn.execute("CREATE UNLOGGED SEQUENCE ephemeral_seq")
        conn.execute("INSERT INTO ephemeral VALUES ('session', 'k', 'v', 0, 1, '2026-12-04')")
    assert [m.to_version for m in db.prepare()] == list(
        range(POSTGRES_BASELINE + 1, SCHEMA_VERSION + 1)
    )
    with db.connect() as conn:
        assert conn.execute("SELECT count(*) FROM ephemeral").fetchone() == (0,)
        domain = conn.execute(
            "SELECT domain_name FROM information_schema.columns"
            " WHERE table_schema = current_schema() AND table_name = 'ephemeral'"
            " AND column_name = 'until_day'"
        ).fetchone()
    assert domain == ("day",)


def test_no_column_holds_a_time_finer_than_a_day(db: PostgresDatabase) -> None:
    db.prepare()
    with db.connect() as conn:
        rows = conn.execute(
            "SELECT table_name, column_name, data_type, domain_name, column_default"
            " FROM information_schema.columns WHERE table_schema = current_schema()"
        ).fetchall()
    assert rows
    for table, column, data_type, domain, default in rows:
        assert not any(t in data_type for t in ("time", "interval", "date")), (table, column)
        assert default is None or not any(
            f in default.lower() for f in ("now", "current_", "clock", "statement_", "transaction_")
        ), (table, column, default)
        if column.endswith("_on"):
            assert domain == "day", (table, column)


@pytest.mark.parametrize(
    "when", ["2026-12-04 16:05", "2026-12-04T16:05:00Z", "2026-12-04 00:00:00", "1733328000", ""]
)
def test_a_finer_time_is_refused_by_the_schema(db: PostgresDatabase, when: str) -> None:
    db.prepare()
    with pytest.raises(psycopg.errors.CheckViolation), db.connect() as conn:
        conn.execute(
            "INSERT INTO sources(id, login_hash, reply_key, created_on, last_active_on)"
            " VALUES ('s1', 'h', 'k', %s, '2026-12-04')",
            (when,),
        )
    with db.connect() as conn:
        conn.execute(
            "INSERT INTO sources(id, login_hash, reply_key, created_on, last_active_on)"
            " VALUES ('s1', 'h', 'k', '2026-12-04', '2026-12-04')"
        )
        assert conn.execute("SELECT created_on FROM sources").fetchall() == [("2026-12-04",)]


def test_no_column_holds_an_address(db: PostgresDatabase) -> None:
    db.prepare()
    with db.connect() as conn:
        rows = conn.execute(
            "SELECT column_name, data_type FROM information_schema.columns"
            " WHERE table_schema = current_schema()"
        ).fetchall()
    for column, data_type in rows:
        assert data_type not in ("inet", "cidr", "macaddr", "macaddr8"), column
        assert not any(w in column for w in ("addr", "ip", "agent", "host")), column


def test_a_journalist_id_is_never_given_again(db: PostgresDatabase) -> None:
    db.prepare()
    insert = (
        "INSERT INTO journalists(name, encryption_key, signing_key, added_on)"
        " VALUES (%s, 'e', 's', '2026-12-04') RETURNING id"
    )
    with db.connect() as conn:
        first = conn.execute(insert, ("alice",)).fetchone()
        conn.execute("DELETE FROM journalists")
        second = conn.execute(insert, ("alice",)).fetchone()
    assert first and second and second[0] > first[0]
    with pytest.raises(psycopg.errors.GeneratedAlways), db.connect() as conn:
        conn.execute(
            "INSERT INTO journalists(id, name, encryption_key, signing_key, added_on)"
            " VALUES (%s, 'bruno', 'e', 's', '2026-12-04')",
            (first[0],),
        )


def test_a_connection_is_one_transaction(db: PostgresDatabase) -> None:
    db.prepare()
    with pytest.raises(RuntimeError), db.connect() as conn:
        conn.execute(
            "INSERT INTO sources(id, login_hash, reply_key, created_on, last_active_on)"
            " VALUES ('s1', 'h', 'k', '2026-12-04', '2026-12-04')"
        )
        raise RuntimeError("the request failed")
    with db.connect() as conn:
        assert conn.execute("SELECT count(*) FROM sources").fetchone() == (0,)


def test_a_newer_database_is_refused(db: PostgresDatabase) -> None:
    db.prepare()
    with db.connect() as conn:
        conn.execute("UPDATE meta SET value = %s", (str(SCHEMA_VERSION + 1),))
    with pytest.raises(MigrationError, match="newer than this release"):
        db.prepare()


def test_a_foreign_database_is_refused(db: PostgresDatabase) -> None:
    with db.connect() as conn:
        conn.execute("CREATE TABLE someone_elses (x INTEGER)")
    with pytest.raises(MigrationError, match="not Lanterne's"):
        db.prepare()


def _no_sqlite(conn: sqlite3.Connection) -> None:
    raise AssertionError("the SQLite step ran on PostgreSQL")


def test_later_steps_run_from_the_one_list_in_one_transaction(db: PostgresDatabase) -> None:
    target = SCHEMA_VERSION + 1
    good = Migration(target, "a test step", _no_sqlite, postgres="CREATE TABLE extra (x day);")
    with db.connect() as conn:
        applied = prepare(conn, migrations=(*MIGRATIONS, good), target=target)
    assert applied[-1] == good and all(m.to_version > POSTGRES_BASELINE for m in applied)
    assert db.schema_version() == target
    with db.connect() as conn:
        assert "extra" in columns(conn)


def test_a_failed_step_leaves_the_database_as_it_was(db: PostgresDatabase) -> None:
    db.prepare()
    target = SCHEMA_VERSION + 1
    bad = Migration(
        target, "fails halfway", _no_sqlite, postgres="CREATE TABLE extra (x INTEGER); SELECT 1/0;"
    )
    with pytest.raises(MigrationError, match="division by zero"), db.connect() as conn:
        prepare(conn, migrations=(*MIGRATIONS, bad), target=target)
    assert db.schema_version() == SCHEMA_VERSION
    with db.connect() as conn:
        assert "extra" not in columns(conn)


def test_a_step_without_its_postgres_sql_is_refused(db: PostgresDatabase) -> None:
    db.prepare()
    target = SCHEMA_VERSION + 1
    sqlite_only = Migration(target, "SQLite only", _no_sqlite)
    with pytest.raises(MigrationError, match="no PostgreSQL version"), db.connect() as conn:
        prepare(conn, migrations=(*MIGRATIONS, sqlite_only), target=target)
    assert db.schema_version() == SCHEMA_VERSION


def test_every_step_after_the_baseline_has_postgres_sql() -> None:
    for step in MIGRATIONS:
        assert (step.postgres is not None) == (step.to_version > POSTGRES_BASELINE), step


def test_instances_starting_together_prepare_once(pg_url: str) -> None:
    results: list[object] = []

    def start() -> None:
        try:
            with PostgresDatabase(pg_url, max_size=1) as database:
                results.append(database.prepare())
        except Exception as exc:
            results.append(exc)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    after_baseline = [m for m in MIGRATIONS if m.to_version > POSTGRES_BASELINE]
    assert sorted(results, key=len) == [[], [], [], after_baseline]  # one upgrader
    with PostgresDatabase(pg_url) as database:
        assert database.schema_version() == SCHEMA_VERSION


def test_check_database(db: PostgresDatabase, pg_url: str) -> None:
    found = {f.item: f for f in check_database(pg_url)}
    assert found["database"].ok
    assert not found["schema"].ok  # not prepared yet
    db.prepare()
    found = {f.item: f for f in check_database(pg_url)}
    assert all(f.ok for f in found.values()), found
    assert not found["statement logs"].warn
    assert found["commit times"].ok
    logging = pg_url + "%20-clog_statement%3Dall"  # as if the server's config said so
    found = {f.item: f for f in check_database(logging)}
    assert found["statement logs"].ok and found["statement logs"].warn


def test_check_database_fails_on_a_wrong_password(pg_url: str) -> None:
    wrong = pg_url.replace("@127.0.0.1", "x@127.0.0.1")
    found = check_database(wrong, timeout=5)
    assert [(f.item, f.ok) for f in found] == [("database", False)]
    assert "password authentication failed" in found[0].message


def test_the_pool_survives_a_restart_of_postgresql() -> None:
    """PostgreSQL restarted (an upgrade, a crash): the pool's connections are all
    dead, and the next request must still be answered, not fail on one."""
    with running_cluster() as cluster, PostgresDatabase(cluster.url(), max_size=3) as db:
        db.prepare()
        with db.connect() as a, db.connect() as b:  # two connections in the pool
            a.execute("SELECT 1")
            b.execute("SELECT 1")
        cluster.restart("fast")  # a clean stop: the test cluster does not sync commits
        for _ in range(4):
            assert db.schema_version() == SCHEMA_VERSION


def test_an_unreachable_database_is_a_503_not_a_500() -> None:
    """PostgreSQL down: a request waits at most the pool's ``wait`` for a
    connection, then gets StoreUnavailable, which the web layer answers with 503."""
    from server.store.protocols import StoreUnavailable
    from server.web.error_pages import storage_failure

    with running_cluster() as cluster:
        db = PostgresDatabase(cluster.url(), max_size=2, wait=2)
        db.open()
        db.prepare()
        cluster.stop("fast")
        with pytest.raises(StoreUnavailable) as caught:
            db.schema_version()
        assert storage_failure(caught.value) == 503
        db.close()
