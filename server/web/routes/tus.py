"""``/tus/``: resumable uploads of ciphertext, tus 1.0 core + creation, termination,
expiration (docs/UPLOADS.md). The bytes go from the request body to the
upload's file as they arrive (``BodyStream``: ``request.stream()`` that also
tells whether the body ended, so a refused body is drained only if needed);
the upload store (``server.store.protocols.UploadStore``) keeps the records.
"""

from __future__ import annotations

import errno
from collections.abc import Mapping

import anyio.to_thread
from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.requests import ClientDisconnect

from server.store.protocols import DATABASE_UNAVAILABLE, Upload, UploadError, UploadStore
from server.web.bodies import BodyStream, drain_body
from server.web.error_pages import storage_failure
from server.web.headers import decimal
from server.web.rendering import current_session
from server.web.uploads import (
    OWNER_COOKIE,
    http_date,
    in_thread,
    owner_hash,
    owner_keys,
    upload_store,
)

router = APIRouter()

TUS_VERSION = "1.0.0"
TUS_EXTENSIONS = "creation,termination,expiration"
PATCH_TYPE = "application/offset+octet-stream"
# Received bytes are handed to a worker thread about this much at a time: a
# bounded buffer, and few thread hops for a 4 MiB segment.
WRITE_BATCH = 1 << 20
# A writer's save failing on the database or the store: 503 or 507, never a 500.
SAVE_FAILURES: tuple[type[Exception], ...] = (*DATABASE_UNAVAILABLE, OSError)


def keep_session_alive(request: Request) -> None:
    """An upload is activity: a source who sends a large file for longer than the
    idle timeout must still find the session (and its codename) at commit time.
    The session cookie comes with every same-site request; nothing else changes."""
    current_session(request, create=False)


def _answer(status: int, headers: Mapping[str, str] | None = None) -> Response:
    return Response(status_code=status, headers={"Tus-Resumable": TUS_VERSION, **(headers or {})})


def _error(exc: UploadError) -> Response:
    # No page: tus clients read the status; the browser's page explains.
    headers = {"Tus-Version": TUS_VERSION} if exc.status == 412 else None
    return _answer(exc.status, headers)


def _number(value: str | None) -> int:
    number = decimal(value)
    if number is None:
        raise UploadError(400, "not a number")
    return number


def _check_version(request: Request) -> None:
    if request.headers.get("tus-resumable") != TUS_VERSION:
        raise UploadError(412, "Tus-Resumable must be 1.0.0")


def _state_headers(store: UploadStore, upload: Upload) -> dict[str, str]:
    return {
        "Upload-Offset": str(upload.received),
        "Upload-Expires": http_date(store.expires_at(upload)),
    }


@router.options("/tus/")
async def tus_options(request: Request) -> Response:
    return _answer(
        204,
        {
            "Tus-Version": TUS_VERSION,
            "Tus-Extension": TUS_EXTENSIONS,
            "Tus-Max-Size": str(upload_store(request).policy.max_length),
        },
    )


@router.post("/tus/")
async def tus_create(request: Request) -> Response:
    store = upload_store(request)
    try:
        _check_version(request)
        if "upload-defer-length" in request.headers:
            raise UploadError(400, "Upload-Defer-Length is not supported")
        # creation-with-upload is not offered: a body here is a client error.
        if request.headers.get("content-length", "0") != "0" or (
            "transfer-encoding" in request.headers
        ):
            raise UploadError(400, "no body expected")
        length = _number(request.headers.get("upload-length"))
        owner = owner_hash(request)
        new_cookie = None
        if owner is None:
            # No (valid) upload cookie yet: this request starts one. Without a
            # session at all this still works, so any tus client can upload;
            # committing needs the session and its CSRF token as well.
            new_cookie = owner_keys(request).issue()
            owner = owner_keys(request).owner_hash(new_cookie)
            assert owner is not None
        await anyio.to_thread.run_sync(store.sweep_if_due)
        upload = await anyio.to_thread.run_sync(store.create, owner, length)
    except UploadError as exc:
        return _error(exc)
    response = _answer(
        201,
        {"Location": f"/tus/{upload.id}", **_state_headers(store, upload)},
    )
    if new_cookie is not None:
        # Like the session cookie: HttpOnly, SameSite=Strict, gone with the browser.
        response.set_cookie(
            OWNER_COOKIE, new_cookie, httponly=True, samesite="strict", path="/", secure=False
        )
    return response


@router.head("/tus/{upload_id}")
async def tus_head(request: Request, upload_id: str) -> Response:
    store = upload_store(request)
    try:
        _check_version(request)
        upload = await anyio.to_thread.run_sync(store.get, upload_id, owner_hash(request))
    except UploadError as exc:
        return _error(exc)
    return _answer(200, {**_state_headers(store, upload), "Upload-Length": str(upload.length)})


@router.patch("/tus/{upload_id}")
async def tus_patch(request: Request, upload_id: str) -> Response:
    store = upload_store(request)
    max_patch = store.policy.max_patch
    declared = request.headers.get("content-length")
    body = BodyStream(request)
    try:
        _check_version(request)
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type != PATCH_TYPE:
            raise UploadError(415, "Content-Type must be " + PATCH_TYPE)
        offset = _number(request.headers.get("upload-offset"))
        upload = await anyio.to_thread.run_sync(store.get, upload_id, owner_hash(request))
        async with in_thread(store.hold([upload.id], patch=True)):
            if offset != upload.received:
                raise UploadError(409, "Upload-Offset is not the current offset")
            limit = min(max_patch, upload.length - upload.received)
            size = decimal(declared)
            if declared is not None and (size is None or size > limit):
                raise UploadError(413, "past Upload-Length or over 16 MiB")
            # Room is claimed for what this PATCH may bring, while it comes (507 if none).
            async with in_thread(store.receiving(upload, size if size is not None else limit)):
                upload = await _receive(body, store, upload, limit)
        keep_session_alive(request)
    except UploadError as exc:
        # Read (and drop) what is left of a segment of reasonable size, so the
        # client sees this answer rather than a reset connection; past that, reset.
        # Never after the end of the body: receive() would then wait for a disconnect.
        if not body.complete:
            await drain_body(request, 2 * max_patch)
        return _error(exc)
    except ClientDisconnect:
        return Response(status_code=400)  # nobody is left to read it
    return _answer(204, _state_headers(store, upload))


async def _receive(body: BodyStream, store: UploadStore, upload: Upload, limit: int) -> Upload:
    """Append the body at the upload's offset, make it durable, record the new offset.

    A body cut short keeps what arrived (saved and recorded: the client
    resumes from there); a body longer than ``limit`` is refused whole.
    """
    async with in_thread(store.append_to(upload)) as writer:
        written = 0
        pending = bytearray()
        cut_short = False
        full: OSError | None = None
        try:
            async for chunk in body:
                if written + len(pending) + len(chunk) > limit:
                    await anyio.to_thread.run_sync(writer.keep, 0)
                    raise UploadError(413, "past Upload-Length or over 16 MiB")
                pending += chunk
                if len(pending) >= WRITE_BATCH:
                    await anyio.to_thread.run_sync(writer.write, pending)
                    written += len(pending)
                    pending = bytearray()
        except ClientDisconnect:
            cut_short = True
        except OSError as exc:
            # The disk is full (the reserve was set to nothing, or the disk filled
            # from elsewhere): keep what was written whole, answer 507.
            full = exc
        if pending and full is None:
            try:
                await anyio.to_thread.run_sync(writer.write, pending)
                written += len(pending)
            except OSError as exc:
                full = exc
        if full is not None and full.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise full
        await anyio.to_thread.run_sync(writer.keep, written)
        try:
            recorded = await anyio.to_thread.run_sync(writer.save)
        except SAVE_FAILURES as exc:
            # Not recorded (a full disk has no room for the database either; the
            # shared stores out of reach): the offset stays where it was.
            status = storage_failure(exc)
            if status is None:
                raise
            raise UploadError(status, "offset not recorded") from None
    if full is not None:
        raise UploadError(507, "no room for this upload")
    if cut_short:
        raise ClientDisconnect()
    return recorded


@router.delete("/tus/{upload_id}")
async def tus_delete(request: Request, upload_id: str) -> Response:
    store = upload_store(request)
    try:
        _check_version(request)
        upload = await anyio.to_thread.run_sync(store.get, upload_id, owner_hash(request))
        async with in_thread(store.hold([upload.id])):
            await anyio.to_thread.run_sync(store.delete, upload.id)
    except UploadError as exc:
        return _error(exc)
    return _answer(204)
