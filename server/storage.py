"""The object store: envelope files named by random ids (DESIGN §6-7).

An object is written under a temporary name in the same directory, fsynced and
renamed when complete (``envelope.atomic_output``), so a reader never sees half
an object. Objects only become part of a submission when the database row that
lists them is committed; ``collect_garbage`` removes what a crash left behind.

The app uses this class only, so another backend (S3-style storage, DESIGN
§9) would be a second implementation of the same methods; none exists yet.
"""

from __future__ import annotations

import contextlib
import re
import secrets
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

import envelope

_ID = re.compile(r"[0-9a-f]{32}")


def new_id() -> str:
    """128 random bits: object, submission and source ids."""
    return secrets.token_hex(16)


class PendingObject:
    """An object being written; ``commit`` makes it appear, ``abort`` removes it."""

    def __init__(self, path: Path) -> None:
        self.id = path.name
        self.size = 0
        self._cm = envelope.atomic_output(path)
        self._file: BinaryIO | None = self._cm.__enter__()

    def write(self, data: bytes) -> None:
        assert self._file is not None
        self._file.write(data)
        self.size += len(data)

    def commit(self) -> None:
        if self._file is not None:
            self._file = None
            self._cm.__exit__(None, None, None)  # flush, fsync, rename

    def abort(self) -> None:
        if self._file is not None:
            self._file = None
            err = _Aborted()
            with contextlib.suppress(_Aborted):
                self._cm.__exit__(type(err), err, None)  # removes the temporary file


class _Aborted(Exception):
    pass


class ObjectStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def create_dirs(self) -> None:
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)

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
        return self.path(object_id).read_bytes()

    @contextlib.contextmanager
    def open(self, object_id: str) -> Iterator[BinaryIO]:
        with self.path(object_id).open("rb") as f:
            yield f

    def delete(self, object_id: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path(object_id).unlink()

    def ids(self) -> set[str]:
        return {p.name for p in self.root.iterdir() if _ID.fullmatch(p.name)}

    def collect_garbage(self, known: set[str]) -> int:
        """Remove temporary files and objects no database row refers to."""
        removed = 0
        for entry in self.root.iterdir():
            if entry.name.endswith(".part") or (
                _ID.fullmatch(entry.name) and entry.name not in known
            ):
                with contextlib.suppress(FileNotFoundError):
                    entry.unlink()
                    removed += 1
        return removed


class ObjectBatch:
    """Objects written for one request: all kept on ``keep()``, all removed otherwise."""

    def __init__(self, store: ObjectStore) -> None:
        self.store = store
        self._pending: list[PendingObject] = []
        self._done: list[str] = []
        self._kept = False

    def new_object(self) -> PendingObject:
        obj = self.store.new_object()
        self._pending.append(obj)
        return obj

    def committed(self, obj: PendingObject) -> None:
        self._pending.remove(obj)
        self._done.append(obj.id)

    def keep(self) -> None:
        self._kept = True

    def discard(self) -> None:
        for obj in self._pending:
            obj.abort()
        self._pending.clear()
        for object_id in self._done:
            self.store.delete(object_id)
        self._done.clear()

    def __enter__(self) -> ObjectBatch:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if not self._kept:
            self.discard()
