"""One account of the disk for everything sources send: resumable uploads and
the no-JavaScript form alike (docs/THREAT_MODEL.md, "Floods").

Nothing is reserved for what has not arrived: only bytes on their way (a
PATCH being received, a no-JS body being read) hold a *claim*, in memory, for
as long as their request lasts. A request may go on only while the disk would
keep ``reserve`` bytes free after it and every other claim. The default reserve
scales with the disk: 5 % of the file system, at most 1 GiB.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

from server.store.protocols import NoRoom

__all__ = ["DiskReserve", "NoRoom", "default_reserve", "free_bytes"]

GiB = 1 << 30
DEFAULT_SHARE = 0.05


def free_bytes(path: Path) -> int:
    """What an unprivileged writer can still use (``f_bavail``, not ``f_bfree``)."""
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def default_reserve(path: Path) -> int:
    st = os.statvfs(path)
    return min(GiB, int(st.f_blocks * st.f_frsize * DEFAULT_SHARE))


class DiskReserve:
    def __init__(
        self, path: Path, reserve: int | None, free: Callable[[Path], int] = free_bytes
    ) -> None:
        self.path = path
        self.reserve = default_reserve(path) if reserve is None else reserve
        self._free = free
        self._claims: dict[object, int] = {}
        self._lock = threading.Lock()

    def room(self, nbytes: int, *, key: object = None) -> bool:
        """Whether ``nbytes`` more fit above the reserve, counting every claim but ``key``'s."""
        with self._lock:
            return self._room(nbytes, key)

    @contextlib.contextmanager
    def claim(self, key: object, nbytes: int) -> Iterator[None]:
        """Hold ``nbytes`` for ``key`` while the block runs; NoRoom if they do not fit."""
        with self._lock:
            if not self._room(nbytes, key):
                raise NoRoom()
            self._claims[key] = nbytes
        try:
            yield
        finally:
            with self._lock:
                self._claims.pop(key, None)

    def _room(self, nbytes: int, key: object) -> bool:
        others = sum(n for k, n in self._claims.items() if k is not key)
        return self._free(self.path) - others - nbytes >= self.reserve
