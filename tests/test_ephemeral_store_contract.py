"""One contract for every ``EphemeralStore``: this process's memory, the SQLite file
that instances on one machine share, and PostgreSQL's UNLOGGED table for
instances on several machines (tests/pg_cluster.py: a real cluster)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from server.domain.memory_ephemeral import MemoryEphemeralStore
from server.domain.sessions import SessionStore
from server.store.ephemeral import SqliteEphemeralStore
from server.store.postgres import PostgresDatabase
from server.store.postgres_ephemeral import PostgresEphemeralStore
from server.store.protocols import EphemeralStore
from tests.clocks import FakeClock

DAY = "2027-01-15"


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[EphemeralStore]:
    if request.param == "memory":
        yield MemoryEphemeralStore()
    elif request.param == "sqlite":
        sqlite = SqliteEphemeralStore(tmp_path / "ephemeral.sqlite")
        sqlite.prepare()
        yield sqlite
        sqlite.release()
    else:
        with PostgresDatabase(request.getfixturevalue("pg_url"), max_size=8) as pg:
            postgres = PostgresEphemeralStore(pg)
            postgres.prepare()
            postgres.prepare()  # safe to run at every start
            yield postgres


def test_values_are_replaced_removed_and_swept(store: EphemeralStore) -> None:
    assert store.get("k", b"a") is None
    assert store.update("k", b"a", lambda old: (old or b"") + b"1", until_day=DAY) == b"1"
    assert store.update("k", b"a", lambda old: (old or b"") + b"2", until_day=DAY) == b"12"
    assert store.get("k", b"a") == b"12" and store.get("other", b"a") is None
    assert store.update("k", b"a", lambda old: None, until_day=DAY) is None
    assert store.get("k", b"a") is None
    store.update("k", b"old", lambda _: b"x", until_day="2027-01-14")
    store.update("k", b"new", lambda _: b"y", until_day=DAY)
    store.delete("k", b"gone")  # nothing to delete: no error
    assert store.sweep(DAY) == 1
    assert store.get("k", b"old") is None and store.get("k", b"new") == b"y"


def test_add_once_refuses_the_second(store: EphemeralStore) -> None:
    assert store.add_once("spent", b"c", until_day=DAY)
    assert not store.add_once("spent", b"c", until_day=DAY)
    assert store.add_once("spent", b"d", until_day=DAY)


def test_trim_keeps_the_most_recently_used_of_a_tier(store: EphemeralStore) -> None:
    for name in (b"a", b"b", b"c", b"d"):
        store.update("s", name, lambda _: b"v", tier=0, until_day=DAY)
    store.update("s", b"source", lambda _: b"v", tier=1, until_day=DAY)
    store.update("s", b"a", lambda old: old, tier=0, until_day=DAY)  # used again: now newest
    store.trim("s", 0, 2)
    assert [store.get("s", n) is not None for n in (b"a", b"b", b"c", b"d")] == [
        True, False, False, True,
    ]  # fmt: skip
    assert store.count("s", 0) == 2 and store.count("s", 1) == 1


def test_concurrent_changes_are_never_lost(store: EphemeralStore) -> None:
    """What two instances racing on one session (login failures) rely on."""

    def add(n: int) -> None:
        for _ in range(n):
            store.update("n", b"x", lambda old: str(int(old or b"0") + 1).encode(), until_day=DAY)

    threads = [threading.Thread(target=add, args=(25,)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert store.get("n", b"x") == b"100"


def test_sessions_on_the_store_hold_no_id_codename_or_time(store: EphemeralStore) -> None:
    """What a seizure of the shared store finds: keyed hashes and sealed values."""
    clock = FakeClock()
    sessions = SessionStore(clock, 3600, 100, shared=store, instance_key=b"k" * 32, now=clock)
    session = sessions.sign_in(sessions.create(), "source-id-1", new_codename="alpha bravo")
    raw = store.get("session", sessions._row_key(session.id))
    assert raw is not None
    for secret in (session.id, session.csrf_token, "source-id-1", "alpha bravo", "1800000000"):
        assert secret.encode() not in raw
    other = SessionStore(clock, 3600, 100, shared=store, instance_key=b"k" * 32, now=clock)
    found = other.get(session.id)  # another instance, same store and instance key
    assert found is not None and found.new_codename == "alpha bravo"
    other.end_source("source-id-1")
    assert sessions.get(session.id) is None


def test_instances_on_postgresql_share_sessions_through_it(pg_url: str, tmp_path: Path) -> None:
    """With [database] in config.toml the shared state goes to PostgreSQL, not to a
    file of one machine's data directory: a session made through one machine's
    stores is found through another's (each with its own data directory)."""
    import dataclasses

    from server.settings import DatabaseConfig, Settings
    from server.store.wiring import configured_api_stores

    stores = []
    for name in ("one", "two"):
        data = tmp_path / name
        data.mkdir()
        settings = dataclasses.replace(
            Settings(data_dir=data), database=DatabaseConfig(pg_url, pool_size=2)
        )
        stores.append(configured_api_stores(settings))
    assert all(isinstance(s.ephemeral, PostgresEphemeralStore) for s in stores)
    clock = FakeClock()
    one, two = (
        SessionStore(clock, 3600, 100, shared=s.ephemeral, instance_key=b"k" * 32, now=clock)
        for s in stores
    )
    session = one.sign_in(one.create(), "source-id-2")
    found = two.get(session.id)
    assert found is not None and found.source_id == "source-id-2"
