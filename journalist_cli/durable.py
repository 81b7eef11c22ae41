"""Durable writes without waiting on each one: fsync in a background thread.

`pull` and `decrypt` write many large files. Calling fsync on each before
starting the next leaves the CPU idle while the disk works; here one worker
thread takes each finished file, fsyncs it (and runs what must happen only
once it is on disk, such as a rename or an index update) while the caller
goes on with the next one. ``wait`` returns when everything handed over is
durable and raises the first error. The invariant does not change: a file
gets its final name, or its index entry, only after its bytes are on disk.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from types import TracebackType


def fsync_path(path: Path) -> None:
    """fsync a file or a directory (its entries) by path."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Flusher:
    """Run durability steps in order, in one thread, behind the caller's back.

    Use it as a context manager: leaving the block waits for every step
    handed over, raising the first error; when the block itself failed, the
    steps still run (what was finished lands) and the block's error is the one
    raised.
    """

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lanterne-fsync")
        self._pending: list[Future[None]] = []
        self._lock = threading.Lock()  # several download threads submit
        self._failed = False

    def submit(self, step: Callable[[], None]) -> None:
        if self._failed:  # a disk that fails (full, read-only) stops the caller early
            self.wait()
        future = self._pool.submit(step)
        future.add_done_callback(self._note_failure)
        with self._lock:
            self._pending.append(future)

    def _note_failure(self, future: Future[None]) -> None:
        if future.exception() is not None:
            self._failed = True

    def fsync(self, path: Path) -> None:
        self.submit(lambda: fsync_path(path))

    def wait(self) -> None:
        """Block until every step so far has run; raise the first error."""
        with self._lock:
            pending, self._pending = self._pending, []
        for future in pending:
            future.result()

    def __enter__(self) -> Flusher:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if exc_type is None:
                self.wait()
        finally:
            self._pool.shutdown(wait=True)
