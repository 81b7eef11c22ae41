"""The upload store and the browser's upload cookie, as the routes reach them."""

from __future__ import annotations

from email.utils import formatdate

from fastapi import Request

from server.domain.uploads import OwnerKeys
from server.store.protocols import UploadStore

OWNER_COOKIE = "lanterne_uploads"


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
