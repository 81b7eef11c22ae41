"""`lanterne pull`: bring the vault up to date with the server, incrementally.

1. ``GET /sources``: sources gone from the server are removed from the vault
   (a colleague deleted them; keeping them would keep what the source asked
   to erase).
2. ``GET /sources/{id}`` only for sources whose counts or last activity
   changed since the last pull, several at once.
3. Download every object the index lists and the disk lacks, resuming
   ``.part`` files with ``Range``. Objects are immutable, so what is
   complete is never fetched again. ``CONNECTIONS`` objects download at
   once: over Tor a request costs a round trip of a second or so, and on a
   fast link the client and the server each keep a core busy. Each finished
   object is fsynced, renamed and marked present by a background thread
   (``durable.Flusher``) while others download; `pull` returns once all of
   them are. On the first failure (or Ctrl-C) the other downloads stop where
   they are, leaving ``.part`` files for the next pull, what finished stays
   in the vault, and the error is raised.

No private key is needed beyond the signing key used to log in: nothing is
decrypted here, so this runs on the online machine of an air-gapped setup.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Protocol

from journalist_cli.api_client import ApiClient
from journalist_cli.durable import Flusher
from journalist_cli.vault import ObjectRecord, Vault
from journalist_cli.workflow_errors import ServerError

ENVELOPE_MAGIC = b"LANTERNE"
CONNECTIONS = 4


class PullProgress(Protocol):
    """What the command shows while objects arrive (rich bars, or nothing in tests).

    Called from download threads: implementations must be thread-safe.
    """

    def start(self, objects: list[ObjectRecord], total_bytes: int) -> None: ...
    def object_started(self, obj: ObjectRecord, already: int) -> None: ...
    def advance(self, obj: ObjectRecord, n: int) -> None: ...
    def object_done(self, obj: ObjectRecord) -> None: ...


class QuietProgress:
    def start(self, objects: list[ObjectRecord], total_bytes: int) -> None:
        pass

    def object_started(self, obj: ObjectRecord, already: int) -> None:
        pass

    def advance(self, obj: ObjectRecord, n: int) -> None:
        pass

    def object_done(self, obj: ObjectRecord) -> None:
        pass


@dataclass
class PullResult:
    sources: int = 0
    refreshed: int = 0
    downloaded: list[str] = field(default_factory=list)
    resumed: int = 0
    bytes: int = 0
    removed_sources: list[str] = field(default_factory=list)
    removed_objects: list[str] = field(default_factory=list)


def pull(
    client: ApiClient,
    vault: Vault,
    progress: PullProgress | None = None,
    stopping: threading.Event | None = None,
) -> PullResult:
    """Update the index from the server and download what is missing.

    ``stopping`` is set at the first failure (or Ctrl-C); downloads still in
    flight then stop where they are. A caller may pass its own to watch it.
    """
    progress = progress or QuietProgress()
    result = PullResult()
    vault.check_present()
    infos = client.sources()
    result.sources = len(infos)
    result.removed_sources = vault.keep_only_sources(i.id for i in infos)
    changed = [info.id for info in infos if vault.store_summary(info)]
    channel = client.channel()  # its deadlines and day (docs/OFFICIAL_CHANNEL.md)
    if channel is not None:
        vault.store_channel(channel)
    with ThreadPoolExecutor(CONNECTIONS, "lanterne-detail") as pool:
        # Fetched CONNECTIONS at a time (a round trip each over Tor), stored in order.
        for detail in pool.map(client.source, changed):
            result.removed_objects += vault.store_detail(detail)
            result.refreshed += 1
    missing = vault.missing_objects()
    progress.start(missing, sum(max(o.size, 0) for o in missing))
    stopping = stopping or threading.Event()
    with Flusher() as flusher, ThreadPoolExecutor(CONNECTIONS, "lanterne-pull") as pool:

        def fetch(obj: ObjectRecord) -> tuple[int, bool]:
            def advance(n: int) -> None:
                if stopping.is_set():
                    raise _Stopped
                progress.advance(obj, n)

            fetched = _fetch(client, vault, obj, progress, advance)
            flusher.submit(functools.partial(vault.complete_object, obj.id))
            progress.object_done(obj)
            return fetched

        futures = [pool.submit(fetch, obj) for obj in missing]
        try:
            wait(futures, return_when=FIRST_EXCEPTION)
            for future in futures:  # the first failure, whatever its place in the list
                if future.done() and (error := future.exception()) is not None:
                    raise error
            for obj, future in zip(missing, futures, strict=True):
                fetched, resumed = future.result()
                result.bytes += fetched
                result.resumed += resumed
                result.downloaded.append(obj.id)
        except BaseException:
            stopping.set()
            for future in futures:
                future.cancel()
            raise
    return result


class _Stopped(Exception):
    """Raised in a download thread once another one has failed."""


def _fetch(
    client: ApiClient,
    vault: Vault,
    obj: ObjectRecord,
    progress: PullProgress,
    advance: Callable[[int], None],
) -> tuple[int, bool]:
    """Download ``obj`` into its ``.part`` file: (bytes fetched now, whether it resumed)."""
    part = vault.partial_path(obj.id)
    fd = os.open(part, os.O_RDWR | os.O_CREAT, 0o600)
    with os.fdopen(fd, "r+b") as out:
        offset = out.seek(0, os.SEEK_END)
        if obj.size >= 0 and offset > obj.size:
            out.seek(0)
            out.truncate()
            offset = 0
        progress.object_started(obj, offset)
        expected = obj.size if obj.size >= 0 else None
        if offset and offset == expected:
            size = offset  # complete but not renamed (crash between the two)
        else:
            out.seek(offset)
            size = client.download(obj.id, out, offset, expected, advance)
        out.flush()
        out.seek(0)
        if out.read(len(ENVELOPE_MAGIC)) != ENVELOPE_MAGIC:
            out.close()
            part.unlink(missing_ok=True)
            raise ServerError(f"object {obj.id} from the server is not a Lanterne envelope")
    return size - offset, offset > 0
