"""Submissions: the objects one request writes, kept all together or not at all.

``ObjectBatch`` works on any ``server.store.protocols.ObjectStore``; the
submission itself becomes visible through ``SourceLifecycle.record_submission``
(server/domain/source_lifecycle.py).
"""

from __future__ import annotations

from types import TracebackType

import anyio
import anyio.to_thread

from server.store.protocols import ObjectStore, PendingObject


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

    async def __aenter__(self) -> ObjectBatch:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """As ``__exit__``, for a request: the removals run in a worker thread
        (on S3 each is a request to the bucket, which must not hold the event
        loop), shielded so that a client who went away does not cut them short."""
        if not self._kept:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(self.discard)
