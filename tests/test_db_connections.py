"""The database's connections (server/store/db.py): reads on a full disk, reads
that never wait for a writer, and a WAL emptied once writes are done.

Real SQLite on a real tmpfs (tests run as root).
"""

from __future__ import annotations

import contextlib
import sqlite3
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from server.store.db import Database
from tests.test_full_disk import fill

SECRET = "a value that must not stay in the WAL"


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    where = tmp_path / "disk"
    where.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(where)], check=True)
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=True)


def test_reads_work_on_a_full_disk_while_a_connection_is_held(tiny_disk: Path) -> None:
    db = Database(tiny_disk / "lanterne.sqlite3")
    db.create()
    db.set_meta_value("k", "v")
    db.hold_open()
    filler = fill(tiny_disk)
    assert db.meta_value("k") == "v"
    assert db.journalists() == []
    assert db.submissions() == []
    with pytest.raises(sqlite3.OperationalError):  # a write has no room, and says so
        db.set_meta_value("k", "w")
    # Why a connection is held: without one, the shared-memory file that the
    # last close deleted must be made again, and a full disk has no room for it.
    db.release()  # the last close: the files are deleted, their room is free again
    fill(tiny_disk)
    with pytest.raises(sqlite3.OperationalError) as refused:
        db.meta_value("k")
    assert refused.value.sqlite_errorname == "SQLITE_IOERR_SHMSIZE"
    filler.unlink()
    assert db.meta_value("k") == "v"


def test_the_wal_is_emptied_once_no_other_connection_is_open(tmp_path: Path) -> None:
    db = Database(tmp_path / "lanterne.sqlite3")
    db.create()
    db.hold_open()
    wal = tmp_path / "lanterne.sqlite3-wal"
    db.set_meta_value("secret", SECRET)
    assert wal.stat().st_size == 0
    # While another connection of the process is open, the writer leaves the WAL...
    with db.read():
        db.set_meta_value("secret", "replaced")
        assert b"replaced" in wal.read_bytes()
    # ...and the next write made alone empties it.
    db.set_meta_value("other", "x")
    assert wal.stat().st_size == 0
    db.release()


def test_a_read_does_not_wait_for_a_writer(tmp_path: Path) -> None:
    db = Database(tmp_path / "lanterne.sqlite3")
    db.create()
    db.set_meta_value("k", "v")
    writer = sqlite3.connect(tmp_path / "lanterne.sqlite3", isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("INSERT INTO meta(key, value) VALUES ('w', 'x')")
    got: list[str | None] = []
    reader = threading.Thread(target=lambda: got.append(db.meta_value("k")), daemon=True)
    try:
        reader.start()
        reader.join(20)  # a read that waited for the write lock would still be waiting
        assert got == ["v"]
    finally:
        with contextlib.suppress(sqlite3.Error):
            writer.execute("COMMIT")
        writer.close()
