"""File times are days: the one home for what the server's files say about *when*.

The database keeps days only (DESIGN §7); a file's times must not say more.
Left alone, the modification time of an object, an upload or the database's
WAL would give each submission's and each login's time to the nanosecond. So
every writer in the storage layer calls ``stamp`` after it writes, renames or
deletes (a directory's mtime changes with each entry created, renamed or
removed): the file and its directory get 00:00:00 UTC of the current day as
access and modification time. ``floor_tree`` heals what a crash between a write
and its stamp left behind, or an instance written by an older release: each
time goes down to the midnight of its own day, never forward.

Reads would set a precise access time too (``relatime`` updates it whenever it
is not later than the modification time, which a stamp makes it): files are
read through ``open_noatime`` (``O_NOATIME``: the owner or root only), and
SQLite's reads are covered by the stamp after every connection.

What user space cannot set, the inode's change time (ctime, set by the stamp
itself) and birth time, is stated in docs/THREAT_MODEL.md with its mitigation.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

DAY = 86400
# The files SQLite keeps next to a database (WAL mode, or a rollback journal).
SQLITE_SUFFIXES = ("", "-wal", "-shm", "-journal")

log = logging.getLogger("lanterne")
Clock = Callable[[], float]


def midnight(now: float) -> int:
    """00:00:00 UTC of the day ``now`` (seconds since the epoch) falls in."""
    return int(now // DAY) * DAY


def is_day(seconds: float) -> bool:
    return seconds == midnight(seconds)


def stamp(*targets: Path | int, now: float | None = None) -> None:
    """Set access and modification times of each path (or open descriptor) to
    midnight UTC of today (of ``now`` if given). A path that is gone is skipped;
    links are stamped themselves, never followed."""
    day = midnight(time.time() if now is None else now)
    for target in targets:
        try:
            if isinstance(target, int):
                os.utime(target, (day, day))
            else:
                os.utime(target, (day, day), follow_symlinks=False)
        except FileNotFoundError:
            pass
        except OSError as exc:  # not ours to change: `check` reports what stays fine
            _warn(target, exc)


def stamp_sqlite(db_path: Path, now: float | None = None) -> None:
    """The database, its WAL, shared-memory and journal files, and their directory."""
    stamp(*(db_path.with_name(db_path.name + s) for s in SQLITE_SUFFIXES), db_path.parent, now=now)


def floor(path: Path) -> bool:
    """Bring ``path``'s times down to the midnight of their own day; True if changed."""
    try:
        st = path.lstat()
    except FileNotFoundError:
        return False
    if is_day(st.st_atime) and is_day(st.st_mtime):
        return False
    try:
        os.utime(path, (midnight(st.st_atime), midnight(st.st_mtime)), follow_symlinks=False)
    except FileNotFoundError:
        return False
    except OSError as exc:
        _warn(path, exc)
        return False
    return True


def _warn(target: Path | int, exc: OSError) -> None:
    # The directory only: a file's name is an upload or object id, which
    # requests carry, and no request value goes into a log line.
    where = "an open file" if isinstance(target, int) else f"an entry of {target.parent}"
    log.warning("cannot set the file times of %s to the day: %s", where, exc.strerror)


def _list_dir(path: Path) -> list[str]:
    """A directory's entries, listed without updating its access time where allowed."""
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
    try:
        fd = os.open(path, flags | getattr(os, "O_NOATIME", 0))
    except PermissionError:
        fd = os.open(path, flags)
    try:
        return sorted(os.listdir(fd))  # noqa: PTH208 (a descriptor opened with O_NOATIME)
    finally:
        os.close(fd)


def walk(root: Path) -> Iterator[Path]:
    """``root`` and everything under it, without following links nor touching access times."""
    yield root
    try:
        names = _list_dir(root)
    except OSError:  # not a directory (or a link to one), gone, or unreadable
        return
    for name in names:
        yield from walk(root / name)


def floor_tree(root: Path) -> int:
    """Floor the times of ``root`` and of everything under it; how many changed.

    Directories last: listing a directory sets its access time.
    """
    paths = list(walk(root))
    files = [p for p in paths if not p.is_dir() or p.is_symlink()]
    dirs = [p for p in paths if p.is_dir() and not p.is_symlink()]
    return sum(floor(p) for p in (*files, *reversed(dirs)))


def fine_times(root: Path) -> list[Path]:
    """Everything under ``root`` (itself included) whose atime or mtime is finer than a day."""
    out = []
    for path in walk(root):
        with contextlib.suppress(FileNotFoundError):
            st = path.lstat()
            if not (is_day(st.st_atime) and is_day(st.st_mtime)):
                out.append(path)
    return out


def open_noatime(path: Path) -> BinaryIO:
    """Open ``path`` to read without updating its access time where the kernel
    allows it (``O_NOATIME``: the file's owner, or root); else open it plainly."""
    flags = os.O_RDONLY | getattr(os, "O_NOATIME", 0)
    try:
        fd = os.open(path, flags)
    except PermissionError:
        fd = os.open(path, os.O_RDONLY)
    return os.fdopen(fd, "rb")


def read_bytes(path: Path) -> bytes:
    """A whole (small) file, read without updating its access time where allowed."""
    with open_noatime(path) as f:
        return f.read()
