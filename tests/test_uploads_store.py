"""The upload store on its own, with a fake wall clock: expiry without waiting a day."""

from __future__ import annotations

import os
import sqlite3
from dataclasses import replace
from pathlib import Path

import pytest

from server.domain.uploads import OwnerKeys
from server.settings import GiB, MiB, Settings
from server.store.db import Database
from server.store.disk_reserve import DiskReserve
from server.store.uploads import Upload, UploadError, UploadPolicy, UploadStore
from tests.clocks import FakeClock

DAY = 24 * 3600


@pytest.fixture
def store(tmp_path: Path) -> tuple[UploadStore, FakeClock]:
    settings = Settings(data_dir=tmp_path)
    db = Database(settings.database_path)
    db.create()
    clock = FakeClock()
    uploads = UploadStore(db, settings.uploads_dir, UploadPolicy.from_settings(settings), clock)
    uploads.prepare()
    return uploads, clock


OWNER = b"o" * 32


def received(uploads: UploadStore, upload_id: str, data: bytes) -> Upload:
    uploads.path(upload_id).write_bytes(data)
    return uploads.progress(upload_id, len(data))


def test_expiry_follows_the_last_activity_in_memory(store) -> None:
    uploads, clock = store
    upload = uploads.create(OWNER, 100)
    assert uploads.expires_at(upload) == clock.now + 600  # nothing arrived yet
    clock.now += 599
    upload = received(uploads, upload.id, b"x" * 10)  # activity: a new day starts now
    assert uploads.expires_at(upload) == clock.now + DAY
    clock.now += DAY - 1
    assert uploads.get(upload.id, OWNER).received == 10
    clock.now += 1
    with pytest.raises(UploadError) as exc:
        uploads.get(upload.id, OWNER)
    assert exc.value.status == 410
    assert not uploads.path(upload.id).exists()
    with pytest.raises(UploadError) as exc:
        uploads.get(upload.id, OWNER)
    assert exc.value.status == 404


def test_an_empty_upload_expires_in_minutes_unless_its_browser_is_sending(store) -> None:
    """Item 8: empty creations cannot be kept for a day; a page that creates all
    its uploads first and sends them one by one keeps the waiting ones."""
    uploads, clock = store
    hoarded = uploads.create(b"h" * 32, 100)
    sending, waiting = uploads.create(OWNER, 100), uploads.create(OWNER, 100)
    for _ in range(3):
        clock.now += 300
        sending = received(uploads, sending.id, b"s" * (sending.received + 10))
    assert uploads.sweep() == 1  # 900 s: the hoarded one, nothing else
    assert uploads.get(waiting.id, OWNER).received == 0
    with pytest.raises(UploadError):
        uploads.get(hoarded.id, b"h" * 32)
    clock.now += DAY
    assert uploads.sweep() == 2


def test_sweep_removes_only_expired_uploads_and_not_ones_in_use(store) -> None:
    uploads, clock = store
    # One browser each: a browser's activity keeps all its uploads alive.
    old = received(uploads, uploads.create(b"1" * 32, 10).id, b"o")
    busy = received(uploads, uploads.create(b"2" * 32, 10).id, b"b")
    clock.now += DAY / 2
    young = received(uploads, uploads.create(b"3" * 32, 10).id, b"y")
    clock.now += DAY / 2
    with uploads.hold([busy.id]):
        assert uploads.sweep() == 1
    assert not uploads.path(old.id).exists()
    assert uploads.path(busy.id).exists() and uploads.path(young.id).exists()
    assert uploads.sweep() == 1  # busy, now free, goes too
    assert uploads.get(young.id, b"3" * 32).id == young.id
    # The start-up sweep also removes strays: files without rows, rows without files.
    stray = uploads.root / "stray.part"
    stray.write_bytes(b"?")
    uploads.path(young.id).unlink()  # a row without its file
    assert uploads.sweep(at_start=True) == 1
    assert not stray.exists()
    with pytest.raises(UploadError):
        uploads.get(young.id, b"3" * 32)


def test_the_table_holds_days_and_a_restart_gives_fresh_times(store, tmp_path: Path) -> None:
    uploads, clock = store
    upload = received(uploads, uploads.create(OWNER, 100).id, b"z" * 5)
    assert db_rows(uploads) == [(upload.id, OWNER, 100, 5, "2027-01-15")]
    clock.now += DAY - 10
    # A new process: the row's time starts afresh, in memory.
    later = UploadStore(uploads.db, uploads.root, uploads.policy, clock)
    later.prepare()
    clock.now += DAY - 10
    assert later.get(upload.id, OWNER).received == 5
    # But the day bounds it: restarts cannot keep a row alive for ever.
    clock.now += 2 * DAY
    again = UploadStore(uploads.db, uploads.root, uploads.policy, clock)
    assert again.sweep(at_start=True) == 1


def test_a_table_with_minutes_is_converted_to_days(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    Database(settings.database_path).create()
    conn = sqlite3.connect(settings.database_path)
    conn.executescript(
        """
        DROP TABLE uploads;
        CREATE TABLE uploads (
            id TEXT PRIMARY KEY, owner_hash BLOB NOT NULL, length INTEGER NOT NULL,
            received INTEGER NOT NULL DEFAULT 0, active_minute INTEGER NOT NULL
        );
        CREATE INDEX uploads_by_owner ON uploads(owner_hash);
        """
    )
    minute = 1_800_000_000 // 60 + 17  # 2027-01-15 08:17 UTC
    conn.execute("INSERT INTO uploads VALUES ('a' , x'01', 100, 5, ?)", (minute,))
    conn.commit()
    conn.close()
    db = Database(settings.database_path)
    db.create()
    uploads = UploadStore(db, settings.uploads_dir, UploadPolicy.from_settings(settings))
    uploads.prepare()
    uploads.prepare()  # and again at the next start: nothing to do
    assert db_rows(uploads) == [("a", b"\x01", 100, 5, "2027-01-15")]
    conn = sqlite3.connect(settings.database_path)
    columns = [r[1] for r in conn.execute("PRAGMA table_info(uploads)")]
    indexes = [r[1] for r in conn.execute("PRAGMA index_list(uploads)")]
    conn.close()
    assert columns[:5] == ["id", "owner_hash", "length", "received", "active_on"]
    assert "active_minute" not in columns
    assert "uploads_by_owner" in indexes
    # The minute is gone from the database's files too.
    files = [p for p in tmp_path.iterdir() if p.name.startswith(settings.database_path.name)]
    assert not any(minute.to_bytes(4, "big") in p.read_bytes() for p in files)


def test_empty_creations_reserve_almost_nothing(tmp_path: Path) -> None:
    """Item 8: thirty empty uploads declaring the largest length do not stop a new
    browser; the instance cap counts what arrived (1 MiB for an empty upload)."""
    settings = Settings(data_dir=tmp_path)
    settings = replace(settings, uploads=replace(settings.uploads, max_bytes_total=40 * MiB))
    db = Database(settings.database_path)
    db.create()
    free = [10 * GiB]
    policy = UploadPolicy.from_settings(settings)
    disk = DiskReserve(tmp_path, 1 * GiB, free=lambda _path: free[0])
    uploads = UploadStore(db, settings.uploads_dir, policy, disk=disk)
    uploads.prepare()
    for n in range(30):
        uploads.create(bytes([n]) * 32, policy.max_length)
    mine = uploads.create(OWNER, 5 * MiB)
    with uploads.receiving(mine, 5 * MiB):
        pass
    with pytest.raises(UploadError) as exc, uploads.receiving(mine, 11 * MiB):
        pass
    assert exc.value.status == 507  # 30 + 11 MiB > 40 MiB: the instance cap holds
    free[0] = 1 * GiB + 4 * MiB  # the disk nearly at its reserve
    with pytest.raises(UploadError) as exc, uploads.receiving(mine, 5 * MiB):
        pass
    assert exc.value.status == 507
    # Claims of requests in flight count for the others.
    free[0] = 1 * GiB + 8 * MiB
    with uploads.receiving(mine, 5 * MiB):
        assert not disk.room(5 * MiB)
    assert disk.room(5 * MiB)


def db_rows(uploads: UploadStore) -> list[tuple[object, ...]]:
    with uploads.db.connect() as conn:
        return list(conn.execute("SELECT id, owner_hash, length, received, active_on FROM uploads"))


def test_periodic_sweep_runs_at_most_once_per_interval(store) -> None:
    uploads, clock = store
    first = uploads.create(OWNER, 10)
    clock.now += DAY + 60
    assert uploads.sweep_if_due() == 1
    second = uploads.create(OWNER, 10)
    clock.now += DAY + 60
    assert uploads.sweep_if_due() == 1  # the interval (10 min) has passed
    assert not uploads.path(first.id).exists() and not uploads.path(second.id).exists()
    third = uploads.create(OWNER, 10)
    clock.now += DAY + 60
    uploads.policy = replace(uploads.policy, sweep_interval=2 * DAY)
    assert uploads.sweep_if_due() == 0  # too soon after the last one: left for later
    assert uploads.path(third.id).exists()


def test_a_busy_upload_cannot_be_held_twice(store) -> None:
    uploads, _clock = store
    upload = uploads.create(OWNER, 10)
    with uploads.hold([upload.id]):
        with pytest.raises(UploadError) as exc, uploads.hold([upload.id]):
            pass
        assert exc.value.status == 423
    with uploads.hold([upload.id]):
        pass


def test_owner_cookies_verify_and_forgeries_do_not() -> None:
    keys = OwnerKeys(os.urandom(32))
    cookie = keys.issue()
    owner = keys.owner_hash(cookie)
    assert owner is not None and len(owner) == 32
    assert keys.owner_hash(keys.issue()) != owner
    assert OwnerKeys(os.urandom(32)).owner_hash(cookie) is None  # another instance's
    flipped = cookie[:-1] + ("B" if cookie[-1] == "A" else "A")
    for bad in (None, "", cookie[:-1], flipped, "A" * 64, "é" * 64, cookie + "A" * 100):
        assert keys.owner_hash(bad) is None, bad
