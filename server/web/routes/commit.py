"""The JavaScript path around tus: the keys to encrypt to, and the commit that
turns finished uploads into a submission (docs/UPLOADS.md).
"""

from __future__ import annotations

import json
import logging
from urllib.parse import parse_qsl

import anyio.to_thread
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from python_multipart.multipart import parse_options_header
from starlette.requests import ClientDisconnect

from server.store.protocols import DATABASE_UNAVAILABLE, CommitProblem, ObjectRow, UploadError
from server.web.error_pages import (
    N_,
    NOT_SUBMITTED,
    commit_problem_page,
    error_page,
    log_storage_failure,
    rejected_page,
    storage_failure,
    storage_page,
)
from server.web.rendering import check_language, current_session, form_token_ok, services
from server.web.streaming_form import (
    CSRF_FIELD,
    HONEYPOT_FIELD,
    FormRejected,
    Reason,
)
from server.web.submitting import (
    DESK_FIELD,
    find_submitter,
    issue_receipt,
    record_submission,
    submitted,
    target_of,
)
from server.web.uploads import in_thread, owner_hash, upload_store

router = APIRouter()
log = logging.getLogger("lanterne.server")
# The database or the disk failing (server/web/error_pages.py, storage_failure).
STORAGE_ERRORS: tuple[type[Exception], ...] = (*DATABASE_UNAVAILABLE, OSError)

MANIFEST_FIELD = "manifest"
MESSAGE_FIELD = "message"
FILE_FIELD = "file"
_FIELDS = {CSRF_FIELD, HONEYPOT_FIELD, MANIFEST_FIELD, MESSAGE_FIELD, FILE_FIELD, DESK_FIELD}
_FIELD_BYTES = 128  # an upload id is 32 characters, a CSRF token 43


@router.get("/{lang}/recipients.json")
async def recipients(request: Request, lang: str) -> JSONResponse:
    """The journalists' keys, as on the home page: the browser encrypts to them.

    Each entry has ``keys``, the typed keys of the journalist's ``.pub`` file
    (envelope/SPEC.md §2.2): the browser writes one X-Wing stanza (0x0002) to
    the ``xwing`` key when there is one, else one X25519 stanza (0x0001) to
    the ``x25519`` key, in the order of this list. ``encryption_key`` (the
    X25519 key) is listed only for journalists without a hybrid key.

    ``?desk=NAME`` lists that desk's recipients only (docs/DESKS.md). With a
    signed directory the page does not rely on this list: it computes the
    desk's recipients from the directory itself (envelope/SPEC.md §11.1).
    """
    check_language(lang)
    svc = services(request)
    desk = request.query_params.get("desk")
    keys = svc.desk_keys(desk) if desk else svc.journalist_keys()
    signed = svc.signed_directory()
    entries = []
    for k in keys:
        entry: dict[str, object] = {
            "name": k.name,
            "fingerprint": k.fingerprint,
            "keys": k.typed_keys(),
        }
        if k.hybrid is None:
            entry["encryption_key"] = k.x25519.to_text()
        entries.append(entry)
    return JSONResponse(
        {
            # The signed directory, as signed: the page verifies it with the
            # newsroom key it names (data-newsroom-key) and encrypts to its keys.
            "directory": json.loads(signed) if signed is not None and keys else None,
            "recipients": entries,
        },
        headers={"Cache-Control": "no-store"},
    )


@router.post("/{lang}/submit/commit")
async def commit(request: Request, lang: str) -> Response:
    check_language(lang)
    svc = services(request)
    store = upload_store(request)
    session = current_session(request, create=False)
    max_files = svc.settings.limits.max_files
    try:
        fields = await _read_form(request, max_files)
        token = fields.get(CSRF_FIELD, [])
        if len(token) != 1 or not form_token_ok(request, session, token[0]):
            raise FormRejected(Reason.CSRF)
        if any(fields.get(HONEYPOT_FIELD, [])):
            raise FormRejected(Reason.HONEYPOT)
        manifest = fields.get(MANIFEST_FIELD, [])
        message = fields.get(MESSAGE_FIELD, [])
        files = fields.get(FILE_FIELD, [])
        if len(manifest) != 1 or len(message) > 1 or len(fields.get(DESK_FIELD, [])) > 1:
            raise FormRejected(Reason.MALFORMED)
        target = target_of(svc, session)
        given = fields.get(DESK_FIELD, [])
        desk = target.choose(given[0] if given else None)
        if len(files) > max_files:
            raise FormRejected(Reason.TOO_MANY_FILES)
        if not message and not files:
            raise FormRejected(Reason.EMPTY)
    except FormRejected as exc:
        return rejected_page(request, exc, lang, note=NOT_SUBMITTED)
    except ClientDisconnect:
        return Response(status_code=400)
    if not target.receivable(svc) or not svc.desk_keys(desk):
        return error_page(
            request,
            503,
            N_("Submissions are closed"),
            N_("No journalist can receive submissions yet. Please come back later."),
            lang=lang,
            note=NOT_SUBMITTED,
        )
    kinds = [("manifest", manifest[0])] + [("message", m) for m in message]
    kinds += [("file", f) for f in files]
    ids = [upload_id for _, upload_id in kinds]
    owner = owner_hash(request)
    try:
        # Held from the checks to the commit: no PATCH, DELETE or sweep in between.
        async with in_thread(store.hold(ids)):
            uploads = await anyio.to_thread.run_sync(store.check_for_commit, ids, owner)
            submitter = await find_submitter(svc, session, lang, desk)
            await anyio.to_thread.run_sync(store.move_to_store, uploads, svc.store)
            objects = [
                ObjectRow(upload.id, kind, upload.length)
                for (kind, _), upload in zip(kinds, uploads, strict=True)
            ]
            try:
                await record_submission(svc, submitter, objects, finished_uploads=ids)
            except BaseException:
                # Moved but not recorded: back among the uploads (their rows are
                # intact), so nothing half-visible remains and the page can send
                # the same commit again. Synchronous: this must also run when the
                # request is cancelled. If even that fails, they are removed.
                try:
                    store.take_back(ids, svc.store)
                except Exception:
                    for upload_id in ids:
                        svc.store.delete(upload_id)
                        store.delete(upload_id)
                raise
            # Recorded: what remains of the uploads (copies sent to a bucket, rows
            # in the data directory when the records are in PostgreSQL) goes.
            # Failing here loses nothing: expiry removes them later.
            try:
                await anyio.to_thread.run_sync(store.finish, ids)
            except STORAGE_ERRORS as exc:
                log.warning("uploads left after a commit (%s)", type(exc).__name__)
            receipt = await issue_receipt(svc, submitter, objects)
    except UploadError:
        return commit_problem_page(request, "busy", lang)
    except CommitProblem as exc:
        return commit_problem_page(request, exc.kind, lang)
    except STORAGE_ERRORS as exc:
        status = storage_failure(exc)
        if status is None:
            raise
        log_storage_failure(exc, status)
        return storage_page(request, status, lang, note=NOT_SUBMITTED)
    return submitted(svc, session, lang, submitter, receipt)


async def _read_form(request: Request, max_files: int) -> dict[str, list[str]]:
    """The small urlencoded commit form, in memory: a few ids and the token."""
    ctype, _ = parse_options_header(request.headers.get("content-type"))
    if ctype != b"application/x-www-form-urlencoded":
        raise FormRejected(Reason.UNSUPPORTED_TYPE)
    max_fields = max_files + 4
    limit = max_fields * (_FIELD_BYTES + 16)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise FormRejected(Reason.TOO_MANY_PARTS)
    try:
        pairs = parse_qsl(
            body.decode("ascii"),
            keep_blank_values=True,
            strict_parsing=False,
            max_num_fields=max_fields,
            errors="strict",
        )
    except (UnicodeDecodeError, ValueError):
        raise FormRejected(Reason.MALFORMED) from None
    fields: dict[str, list[str]] = {}
    for key, value in pairs:
        if key not in _FIELDS:
            raise FormRejected(Reason.UNKNOWN_FIELD)
        if len(value) > _FIELD_BYTES or "\x00" in value:
            raise FormRejected(Reason.MALFORMED)
        fields.setdefault(key, []).append(value)
    return fields
