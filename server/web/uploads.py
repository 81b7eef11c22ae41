"""The upload store and the browser's upload cookie, as the routes reach them."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from contextlib import AbstractContextManager
from email.utils import formatdate
from typing import TypeVar

import anyio
import anyio.to_thread
from fastapi import Request

from server.domain.uploads import OwnerKeys
from server.store.protocols import UploadStore

OWNER_COOKIE = "lanterne_uploads"
T = TypeVar("T")


def upload_store(request: Request) -> UploadStore:
    store: UploadStore = request.app.state.uploads
    return store


def owner_keys(request: Request) -> OwnerKeys:
    keys: OwnerKeys = request.app.state.upload_owners
    return keys


def owner_hash(request: Request) -> bytes | None:
    return owner_keys(request).owner_hash(request.cookies.get(OWNER_COOKIE))


def http_date(seconds: float) -> str:
    return formatdate(seconds, usegmt=True)


@contextlib.asynccontextmanager
async def in_thread(manager: AbstractContextManager[T]) -> AsyncIterator[T]:
    """One of the upload store's context managers (``hold``, ``receiving``,
    ``append_to``), entered and left in a worker thread: with several instances
    they wait on PostgreSQL and the bucket, which the event loop must not. It
    is left even when the request is cancelled (a hold, a claim of disk room
    and a spool file must never outlive their request)."""
    value = await anyio.to_thread.run_sync(manager.__enter__)
    try:
        yield value
    except BaseException as exc:
        with anyio.CancelScope(shield=True):
            swallowed = await anyio.to_thread.run_sync(
                manager.__exit__, type(exc), exc, exc.__traceback__
            )
        if not swallowed:
            raise
    else:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(manager.__exit__, None, None, None)
