"""State every instance shares for a short while: sessions, login throttles,
journalist tokens, spent challenges (docs/SERVER_LAYERS.md, "Several instances").

One SQLite file that all instances on one machine open (``DATA_DIR/ephemeral.sqlite``
by default). A row is ``(kind, key, value, tier, seq, until_day)``:

- ``key`` is a keyed hash the domain computed (never a session id, token or
  source id in the clear);
- ``value`` is opaque: the domain encrypts it under a key that only the
  browser's cookie or the journalist's token holds, so the file alone opens
  nothing, and times finer than the day stay inside that ciphertext;
- ``tier`` is a small number (anonymous or source session), ``seq`` an order of
  use (a counter, not a time) for eviction, ``until_day`` the UTC day after
  which ``sweep`` removes the row whatever it holds.

Writes are transactions (``BEGIN IMMEDIATE``), so a change made on one instance
is never lost to a concurrent one on another; deleted rows are zeroed
(``secure_delete``) and file times are days (server/store/file_times.py).
"""

from __future__ import annotations

import atexit
import contextlib
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path

from server.store import file_times

SCHEMA = """
CREATE TABLE IF NOT EXISTS ephemeral (
    kind TEXT NOT NULL,
    key BLOB NOT NULL,
    value BLOB NOT NULL,
    tier INTEGER NOT NULL DEFAULT 0,
    seq INTEGER NOT NULL,
    until_day TEXT NOT NULL,
    PRIMARY KEY (kind, key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS ephemeral_order ON ephemeral(kind, tier, seq);
"""


class SqliteEphemeralStore:
    """``server.store.protocols.EphemeralStore`` on one SQLite file. Blocking calls."""

    def __init__(self, path: Path, now: Callable[[], float] = time.time) -> None:
        self.path = path
        self._now = now
        self._lock = threading.Lock()  # one connection, one statement at a time
        self._held: sqlite3.Connection | None = None

    def prepare(self) -> None:
        with self._connect() as conn:
            conn.executescript(SCHEMA)
        self.path.chmod(0o600)
        self._stamp()

    def release(self) -> None:
        """Close the connection; the last close removes the WAL files: stamp again."""
        with self._lock:
            if self._held is not None:
                self._held.close()
                self._held = None
        self._stamp()

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            if self._held is None:
                conn = sqlite3.connect(
                    self.path, timeout=30, isolation_level=None, check_same_thread=False
                )
                conn.execute("PRAGMA secure_delete = ON")
                conn.execute("PRAGMA temp_store = MEMORY")
                conn.execute("PRAGMA journal_mode = WAL")
                self._held = conn
                # Closed before the interpreter goes, and the file times set back.
                atexit.register(_release_at_exit, weakref.ref(self))
            yield self._held

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                # SQLite may have rolled back already (a full disk): the first error counts.
                with contextlib.suppress(sqlite3.OperationalError):
                    conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        self._stamp()

    def _stamp(self) -> None:
        # Every write moves the file times to now: back to the day, each time.
        file_times.stamp_sqlite(self.path, now=self._now())

    def get(self, kind: str, key: bytes) -> bytes | None:
        with self._connect() as conn:
            row = conn.execute(
                "SELECT value FROM ephemeral WHERE kind = ? AND key = ?", (kind, key)
            ).fetchone()
        return None if row is None else bytes(row[0])

    def update(
        self,
        kind: str,
        key: bytes,
        change: Callable[[bytes | None], bytes | None],
        *,
        tier: int = 0,
        until_day: str,
    ) -> bytes | None:
        """Atomically replace the value by ``change(old)`` (None removes the row);
        the row becomes the most recently used of its kind."""
        with self._write() as conn:
            row = conn.execute(
                "SELECT value FROM ephemeral WHERE kind = ? AND key = ?", (kind, key)
            ).fetchone()
            new = change(None if row is None else bytes(row[0]))
            if new is None:
                conn.execute("DELETE FROM ephemeral WHERE kind = ? AND key = ?", (kind, key))
                return None
            conn.execute(
                "INSERT INTO ephemeral(kind, key, value, tier, seq, until_day) VALUES"
                " (?, ?, ?, ?, (SELECT coalesce(max(seq), 0) + 1 FROM ephemeral), ?)"
                " ON CONFLICT(kind, key) DO UPDATE SET value = excluded.value,"
                " tier = excluded.tier, seq = excluded.seq, until_day = excluded.until_day",
                (kind, key, new, tier, until_day),
            )
            return new

    def delete(self, kind: str, key: bytes) -> None:
        with self._write() as conn:
            conn.execute("DELETE FROM ephemeral WHERE kind = ? AND key = ?", (kind, key))

    def add_once(self, kind: str, key: bytes, *, until_day: str) -> bool:
        """Record ``key``; False if it was already there (a spent challenge)."""
        with self._write() as conn:
            cursor = conn.execute(
                "INSERT INTO ephemeral(kind, key, value, tier, seq, until_day) VALUES"
                " (?, ?, x'', 0, 0, ?) ON CONFLICT(kind, key) DO NOTHING",
                (kind, key, until_day),
            )
            return cursor.rowcount == 1

    def count(self, kind: str, tier: int) -> int:
        with self._connect() as conn:
            row = conn.execute(
                "SELECT count(*) FROM ephemeral WHERE kind = ? AND tier = ?", (kind, tier)
            ).fetchone()
        return int(row[0])

    def trim(self, kind: str, tier: int, keep: int) -> None:
        """Remove the least recently used rows of ``kind``/``tier`` beyond ``keep``."""
        with self._write() as conn:
            conn.execute(
                "DELETE FROM ephemeral WHERE kind = ? AND tier = ? AND key IN ("
                " SELECT key FROM ephemeral WHERE kind = ? AND tier = ?"
                " ORDER BY seq DESC LIMIT -1 OFFSET ?)",
                (kind, tier, kind, tier, keep),
            )

    def sweep(self, today: str) -> int:
        """Remove every row whose day has passed."""
        with self._write() as conn:
            return conn.execute("DELETE FROM ephemeral WHERE until_day < ?", (today,)).rowcount


def _release_at_exit(ref: weakref.ref[SqliteEphemeralStore]) -> None:
    store = ref()
    if store is not None:
        store.release()
