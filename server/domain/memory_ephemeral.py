"""An ``EphemeralStore`` (server/store/protocols.py) in this process's memory.

For unit tests and for one instance run by code that passes no shared store;
``create_app`` and ``create_journalist_app`` always pass the shared one
(server/store/ephemeral.py), so that any instance can answer any request.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable


class MemoryEphemeralStore:
    def __init__(self) -> None:
        # (kind, key) -> (value, tier, seq, until_day)
        self._rows: dict[tuple[str, bytes], tuple[bytes, int, int, str]] = {}
        self._seq = itertools.count(1)
        self._lock = threading.RLock()

    def get(self, kind: str, key: bytes) -> bytes | None:
        with self._lock:
            row = self._rows.get((kind, key))
        return None if row is None else row[0]

    def update(
        self,
        kind: str,
        key: bytes,
        change: Callable[[bytes | None], bytes | None],
        *,
        tier: int = 0,
        until_day: str,
    ) -> bytes | None:
        with self._lock:
            row = self._rows.get((kind, key))
            new = change(None if row is None else row[0])
            if new is None:
                self._rows.pop((kind, key), None)
            else:
                self._rows[(kind, key)] = (new, tier, next(self._seq), until_day)
            return new

    def delete(self, kind: str, key: bytes) -> None:
        with self._lock:
            self._rows.pop((kind, key), None)

    def add_once(self, kind: str, key: bytes, *, until_day: str) -> bool:
        with self._lock:
            if (kind, key) in self._rows:
                return False
            self._rows[(kind, key)] = (b"", 0, 0, until_day)
            return True

    def count(self, kind: str, tier: int) -> int:
        with self._lock:
            return sum(1 for (k, _), row in self._rows.items() if k == kind and row[1] == tier)

    def trim(self, kind: str, tier: int, keep: int) -> None:
        with self._lock:
            mine = sorted(
                (row[2], key)
                for (k, key), row in self._rows.items()
                if k == kind and row[1] == tier
            )
            for _, key in mine[: max(0, len(mine) - keep)]:
                del self._rows[(kind, key)]

    def sweep(self, today: str) -> int:
        with self._lock:
            old = [k for k, row in self._rows.items() if row[3] < today]
            for k in old:
                del self._rows[k]
        return len(old)
