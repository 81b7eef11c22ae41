"""The object store: envelope files named by random ids (DESIGN §6-7).

An object is written under a temporary name in the same directory, fsynced and
renamed when complete (``envelope.atomic_output``), so a reader never sees half
an object. Every change is followed by ``file_times.stamp`` (the object and
the directory, whose mtime moves with each entry), and objects are read
without touching their access time: file times say the day, no finer.

Objects only become part of a submission when the database row that lists
them is committed; ``collect_garbage`` removes what a crash left behind.

The app uses this class only, so another backend (S3-style storage, DESIGN
§9) would be a second implementation of the same methods; none exists yet.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import envelope
from server.store import file_times
from server.store.protocols import new_id

__all__ = ["ObjectStore", "PendingObject", "new_id"]

_ID = re.compile(r"[0-9a-f]{32}")


class PendingObject:
    """An object being written; ``commit`` makes it appear, ``abort`` removes it."""

    def __init__(self, path: Path) -> None:
        self.id = path.name
        self._path = path
        self.size = 0
        self._cm = envelope.atomic_output(path)
        self._file: BinaryIO | None = self._cm.__enter__()

    def write(self, data: bytes | memoryview) -> None:
        assert self._file is not None
        self._file.write(data)
        self.size += len(data)

    def commit(self) -> None:
        if self._file is not None:
            self._file = None
            self._cm.__exit__(None, None, None)  # flush, fsync, rename
            file_times.stamp(self._path, self._path.parent)

    def abort(self) -> None:
        if self._file is not None:
            self._file = None
            err = _Aborted()
            with contextlib.suppress(_Aborted):
                self._cm.__exit__(type(err), err, None)  # removes the temporary file
            file_times.stamp(self._path.parent)


class _Aborted(Exception):
    pass


class ObjectStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def create_dirs(self) -> None:
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        file_times.stamp(self.root, self.root.parent)

    def path(self, object_id: str) -> Path:
        if not _ID.fullmatch(object_id):
            raise ValueError("not an object id")
        return self.root / object_id

    def new_object(self) -> PendingObject:
        return PendingObject(self.path(new_id()))

    def write_bytes(self, data: bytes) -> str:
        obj = self.new_object()
        try:
            obj.write(data)
            obj.commit()
        except BaseException:
            obj.abort()
            raise
        return obj.id

    def read_bytes(self, object_id: str) -> bytes:
        with self.open(object_id) as f:
            return f.read()

    @contextlib.contextmanager
    def open(self, object_id: str, start: int = 0) -> Iterator[BinaryIO]:
        """Read an object from byte ``start`` on without updating its access time
        (``O_NOATIME``); FileNotFoundError if there is none."""
        with file_times.open_noatime(self.path(object_id)) as f:
            f.seek(start)
            yield f

    def size(self, object_id: str) -> int:
        """The object's length in bytes; FileNotFoundError if there is none."""
        return self.path(object_id).stat().st_size

    def delete(self, object_id: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path(object_id).unlink()
        file_times.stamp(self.root)

    def local_bytes(self, nbytes: int) -> int:
        """All of it: the object is a file on this disk."""
        return nbytes

    def ids(self) -> set[str]:
        found = {p.name for p in self.root.iterdir() if _ID.fullmatch(p.name)}
        file_times.floor(self.root)  # listing sets the directory's access time
        return found

    def collect_garbage(self, known: set[str]) -> int:
        """Remove temporary files and objects no database row refers to (at start)."""
        removed = 0
        for entry in self.root.iterdir():
            if entry.name.endswith(".part") or (
                _ID.fullmatch(entry.name) and entry.name not in known
            ):
                with contextlib.suppress(FileNotFoundError):
                    entry.unlink()
                    removed += 1
        file_times.floor(self.root)  # listed, and perhaps changed
        return removed
