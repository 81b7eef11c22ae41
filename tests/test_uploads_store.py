"""The upload store on its own, with a fake wall clock: expiry without waiting a day."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pytest

from server.db import Database
from server.resumable import OwnerKeys, UploadError, UploadPolicy, UploadStore
from server.settings import Settings

DAY = 24 * 3600


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0  # 2027-01-15, on a minute boundary

    def __call__(self) -> float:
        return self.now


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


def test_expiry_follows_the_last_activity_to_the_minute(store) -> None:
    uploads, clock = store
    upload = uploads.create(OWNER, 100)
    assert uploads.expires_at(upload) == clock.now + DAY
    clock.now += DAY - 61
    uploads.path(upload.id).write_bytes(b"x" * 10)
    upload = uploads.progress(upload.id, 10)  # activity: a new day starts now
    clock.now += DAY - 60
    assert uploads.get(upload.id, OWNER).received == 10
    clock.now += 60
    with pytest.raises(UploadError) as exc:
        uploads.get(upload.id, OWNER)
    assert exc.value.status == 410
    assert not uploads.path(upload.id).exists()
    with pytest.raises(UploadError) as exc:
        uploads.get(upload.id, OWNER)
    assert exc.value.status == 404


def test_sweep_removes_only_expired_uploads_and_not_ones_in_use(store) -> None:
    uploads, clock = store
    old, busy = uploads.create(OWNER, 10), uploads.create(OWNER, 10)
    clock.now += DAY / 2
    young = uploads.create(OWNER, 10)
    clock.now += DAY / 2
    with uploads.hold([busy.id]):
        assert uploads.sweep() == 1
    assert not uploads.path(old.id).exists()
    assert uploads.path(busy.id).exists() and uploads.path(young.id).exists()
    assert uploads.sweep() == 1  # busy, now free, goes too
    assert uploads.get(young.id, OWNER).id == young.id
    # The start-up sweep also removes strays: files without rows, rows without files.
    stray = uploads.root / "stray.part"
    stray.write_bytes(b"?")
    uploads.path(young.id).unlink()  # a row without its file
    assert uploads.sweep(at_start=True) == 1
    assert not stray.exists()
    with pytest.raises(UploadError):
        uploads.get(young.id, OWNER)


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
