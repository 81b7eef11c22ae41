"""The submission form and its streaming, encrypting POST (DESIGN §6, JS off)."""

from __future__ import annotations

import contextlib
import json
import logging
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass

import anyio.to_thread
from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.requests import ClientDisconnect

import envelope
from server.domain.sessions import Session
from server.store.db import ObjectRow, SourceRow
from server.store.disk_reserve import DiskReserve, NoRoom
from server.store.objects import ObjectBatch
from server.web.error_pages import (
    N_,
    error_page,
    rejected_page,
    storage_failure,
    storage_page,
)
from server.web.headers import decimal
from server.web.rendering import (
    check_language,
    current_session,
    form_token_ok,
    redirect,
    render,
    services,
)
from server.web.services import Services
from server.web.streaming_form import (
    QUESTION_PREFIX,
    EncryptingFormParser,
    FormRejected,
    Reason,
    ReceivedForm,
    multipart_boundary,
    parse_streaming,
)

router = APIRouter()
log = logging.getLogger("lanterne.server")

MANIFEST_TYPE = "lanterne-manifest/v1"
SENT_NOTICE = N_("Your submission was received and encrypted. Thank you.")


@router.get("/{lang}/submit")
async def submit_form(request: Request, lang: str) -> Response:
    check_language(lang)
    svc = services(request)
    return render(
        request,
        lang,
        "submit.html",
        {
            "questions": svc.settings.questions,
            "limits": svc.settings.limits,
            "no_journalists": not svc.journalist_keys(),
        },
    )


@router.post("/{lang}/submit")
async def submit(request: Request, lang: str) -> Response:
    check_language(lang)
    svc = services(request)
    session = current_session(request, create=False)
    body = BodyStream(request)
    try:
        declared = decimal(request.headers.get("content-length"))
        if declared is not None and declared > svc.settings.limits.max_body_bytes:
            # Known too large before a byte is read: answer at once rather than
            # wait for gigabytes to arrive only to throw them away.
            body.complete = True
            raise FormRejected(Reason.BODY_TOO_LARGE)
        boundary = multipart_boundary(request.headers.get("content-type"))
        keys = svc.journalist_keys()
        if not keys:
            await drain_body(request, svc.settings.limits.max_drain_bytes)
            return error_page(
                request,
                503,
                N_("Submissions are closed"),
                N_("No journalist can receive submissions yet. Please come back later."),
                nothing_kept=True,
            )
        # Room above the disk reserve for the whole body, claimed while it is read,
        # and checked again as it arrives (others may fill the disk meanwhile).
        room = DiskWatch(svc.disk, declared or 0)
        with room.claimed(), ObjectBatch(svc.store) as batch:
            parser = EncryptingFormParser(
                boundary,
                recipients=[k.recipient for k in keys],
                batch=batch,
                limits=svc.settings.limits,
                question_ids=[q.id for q in svc.settings.questions],
                check_csrf=lambda value: form_token_ok(request, session, value),
            )
            form = await parse_streaming(room.watch(aiter(body)), parser)
            answers = _answers(svc, lang, form)
            if form.message_object is None and not form.files:
                raise FormRejected(Reason.EMPTY)
            submitter = await _commit(svc, session, lang, form, answers, keys, batch)
    except ClientDisconnect:
        # Nobody is left to read a page; the batch already removed every object.
        return Response(status_code=400)
    except FormRejected as exc:
        if not body.complete:
            await drain_body(request, svc.settings.limits.max_drain_bytes)
        return rejected_page(request, exc, lang)
    except (sqlite3.OperationalError, OSError) as exc:
        # The disk filled up, or the database could not be used: the batch removed
        # every object; the body is read to its end so that the browser shows the page.
        status = storage_failure(exc)
        if status is None:
            raise
        log.warning("storage unavailable (%s): answered %d", type(exc).__name__, status)
        if not body.complete:
            await drain_body(request, svc.settings.limits.max_drain_bytes)
        return storage_page(request, status, lang)
    return submitted(svc, session, lang, submitter)


def _answers(svc: Services, lang: str, form: ReceivedForm) -> list[dict[str, str]]:
    answers = []
    for q in svc.settings.questions:
        value = form.fields.get(QUESTION_PREFIX + q.id, "").strip()
        if len(value) > q.max_length:
            raise FormRejected(Reason.FIELD_TOO_LONG)
        if value:
            answers.append({"id": q.id, "question": q.label_for(lang), "answer": value})
    return answers


@dataclass(frozen=True)
class Submitter:
    """Who a submission is recorded for: the logged-in source, or a new one."""

    day: str
    source_id: str
    new_source: tuple[str, SourceRow] | None  # (codename, row) for a first submission

    @property
    def follow_up(self) -> bool:
        return self.new_source is None


async def find_submitter(svc: Services, session: Session | None, lang: str) -> Submitter:
    """The session's source, or a fresh codename and source row (not yet stored)."""
    source_id = session.source_id if session is not None else None
    if source_id is not None and not svc.sources.lifecycle.is_active(source_id):
        source_id = None  # the account was deleted in another session
    if source_id is not None:
        return Submitter(svc.clock.today(), source_id, None)
    # In a thread: Argon2id must not stall other sources. It waits its turn
    # behind logins but is never refused: the submission has already arrived.
    async with svc.throttle.kdf.turn(may_refuse=False):
        codename, row = await anyio.to_thread.run_sync(svc.sources.new_codename, lang)
    return Submitter(svc.clock.today(), row.id, (codename, row))


async def record_submission(
    svc: Services,
    submitter: Submitter,
    objects: Sequence[ObjectRow],
    also: Callable[[sqlite3.Connection], None] | None = None,
) -> None:
    """Make a submission visible: its source (if new), its row and its objects,
    plus whatever ``also`` writes, in ONE transaction. Every object must already
    be complete in the store; until this commits, none is listed anywhere."""

    def record() -> None:
        new_row = submitter.new_source[1] if submitter.new_source is not None else None
        svc.sources.lifecycle.record_submission(
            submitter.source_id, new_row, submitter.day, objects, also
        )

    # In a thread: waiting for SQLite's write lock must not stall other sources.
    await anyio.to_thread.run_sync(record)


def submitted(svc: Services, session: Session | None, lang: str, submitter: Submitter) -> Response:
    """The answer to a recorded submission: the codename page for a new source
    (with a new session id: no fixation), the inbox with a notice otherwise.
    The session is created here for a visitor who had none."""
    if submitter.new_source is not None:
        session = svc.sessions.sign_in(
            session, submitter.source_id, new_codename=submitter.new_source[0]
        )
        return redirect(f"/{lang}/codename", session)
    assert session is not None  # a follow-up comes from a source's session
    session.notice = SENT_NOTICE
    return redirect(f"/{lang}/inbox", session)


async def _commit(
    svc: Services,
    session: Session | None,
    lang: str,
    form: ReceivedForm,
    answers: list[dict[str, str]],
    keys: list[envelope.PublicKey],
    batch: ObjectBatch,
) -> Submitter:
    """Write the manifest, then make the submission visible in one transaction."""
    submitter = await find_submitter(svc, session, lang)
    manifest = {
        "type": MANIFEST_TYPE,
        "received_on": submitter.day,
        "language": lang,
        "follow_up": submitter.follow_up,
        "message": (
            {"object": form.message_object, "size": form.message_size}
            if form.message_object
            else None
        ),
        "files": [
            {"object": f.object_id, "name": f.name, "type": f.content_type, "size": f.size}
            for f in form.files
        ],
        "answers": answers,
    }
    sealed = envelope.encrypt_bytes(
        json.dumps(manifest, ensure_ascii=False).encode("utf-8"), [k.recipient for k in keys]
    )
    manifest_obj = batch.new_object()
    manifest_obj.write(sealed)
    await anyio.to_thread.run_sync(manifest_obj.commit)
    batch.committed(manifest_obj)

    objects = [ObjectRow(manifest_obj.id, "manifest", manifest_obj.size)]
    if form.message_object:
        objects.append(
            ObjectRow(form.message_object, "message", form.object_sizes[form.message_object])
        )
    objects += [ObjectRow(f.object_id, "file", form.object_sizes[f.object_id]) for f in form.files]
    await record_submission(svc, submitter, objects)
    batch.keep()
    return submitter


async def drain_body(request: Request, limit: int) -> None:
    """Read and drop what is left of a refused body, so the browser sees our page.

    Browsers often show "connection reset" instead of a response sent while
    they are still uploading. Past ``limit`` bytes we give up and let it reset.
    """
    received = 0
    receive = request.receive
    try:
        while received < limit:
            message = await receive()
            if message["type"] != "http.request":
                return
            received += len(message.get("body", b""))
            if not message.get("more_body", False):
                return
    except (ClientDisconnect, RuntimeError, OSError):
        return


class DiskWatch:
    """The no-JS body's share of the disk reserve (server/store/disk_reserve.py): a claim
    for its declared length, and a check before each MiB that it still fits.
    Either refusal is FormRejected(NO_ROOM): the batch then removes every object."""

    EVERY = 1 << 20

    def __init__(self, disk: DiskReserve, declared: int) -> None:
        self._disk = disk
        self._declared = declared

    @contextlib.contextmanager
    def claimed(self) -> Iterator[None]:
        try:
            with self._disk.claim(self, self._declared):
                yield
        except NoRoom:
            raise FormRejected(Reason.NO_ROOM) from None

    async def watch(self, chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        since_check = self.EVERY  # check before the first byte too
        async for chunk in chunks:
            if since_check >= self.EVERY:
                if not self._disk.room(max(self.EVERY, len(chunk)), key=self):
                    raise FormRejected(Reason.NO_ROOM)
                since_check = 0
            since_check += len(chunk)
            yield chunk


class BodyStream:
    """``request.stream()``, remembering whether the body was read to its end.

    ``complete`` turns true with the last chunk, before the reader sees it: a
    reader that refuses the body on its last chunk must not drain it, since
    ``receive()`` after the end of the body waits for the client to disconnect.
    """

    def __init__(self, request: Request) -> None:
        self._request = request
        self.complete = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while not self.complete:
            message = await self._request.receive()
            if message["type"] == "http.disconnect":
                raise ClientDisconnect()
            self.complete = not message.get("more_body", False)
            if chunk := message.get("body", b""):
                yield chunk
