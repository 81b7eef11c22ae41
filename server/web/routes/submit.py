"""The submission form and its streaming, encrypting POST (DESIGN §6, JS off)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence

import anyio.to_thread
from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.requests import ClientDisconnect

import envelope
from server.domain.sessions import Session
from server.domain.submissions import ObjectBatch
from server.store.protocols import DATABASE_UNAVAILABLE, DiskSpace, NoRoom, ObjectRow
from server.web.bodies import BodyStream, drain_body
from server.web.error_pages import (
    N_,
    error_page,
    log_storage_failure,
    rejected_page,
    storage_failure,
    storage_page,
)
from server.web.headers import decimal
from server.web.rendering import (
    check_language,
    current_session,
    form_token_ok,
    render,
    services,
)
from server.web.services import Services
from server.web.streaming_form import (
    DESK_FIELD,
    QUESTION_PREFIX,
    EncryptingFormParser,
    FormRejected,
    Reason,
    ReceivedForm,
    multipart_boundary,
    parse_streaming,
)
from server.web.submitting import (
    Submitter,
    desk_text,
    find_submitter,
    issue_receipt,
    record_submission,
    submitted,
    target_of,
)

# The question config.toml asks by default (settings.DEFAULT_CONFIG), marked so
# that every catalogue translates it: on a page in a language the admin wrote no
# text in, templates/submit.html shows the catalogue's translation of the English.
DEFAULT_QUESTION_TEXTS = (
    N_("Which administration or organisation is concerned?"),
    N_("When did it happen?"),
    N_("Dates or periods, as precisely as you can."),
    N_("How do you know about it?"),
    N_("For example: you saw it, you were told, you have documents."),
)

router = APIRouter()
# The disk or the database failing for a moment (server/web/error_pages.py).
STORAGE_ERRORS: tuple[type[Exception], ...] = (*DATABASE_UNAVAILABLE, OSError)

MANIFEST_TYPE = "lanterne-manifest/v1"


@router.get("/{lang}/submit")
async def submit_form(request: Request, lang: str) -> Response:
    check_language(lang)
    svc = services(request)
    target = target_of(svc, current_session(request, create=False))
    return render(
        request,
        lang,
        "submit.html",
        {
            "questions": svc.settings.questions,
            "limits": svc.settings.limits,
            "no_journalists": not target.receivable(svc),
            "directory_pin": svc.directory_pin(),
            # A logged-in source's desk (chosen by their first submission), else
            # the desks offered: none shown for one, a choice for several.
            "desk": target.desk if target.bound else None,
            "desks": [] if target.bound else [desk_text(d, lang) for d in target.offered],
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
        target = target_of(svc, session)
        if not target.receivable(svc):
            await drain_body(request, svc.settings.limits.max_drain_bytes)
            return error_page(
                request,
                503,
                N_("Submissions are closed"),
                N_("No journalist can receive submissions yet. Please come back later."),
                nothing_kept=True,
            )
        # Room above the disk reserve for what the body holds of this disk (all of
        # it with files, a part's spool with a bucket), claimed while it is read,
        # and checked again as it arrives (others may fill the disk meanwhile).
        room = DiskWatch(svc.disk, svc.store.local_bytes(declared or 0))
        chosen: dict[str, str | None] = {}

        def recipients_for(fields: Mapping[str, str]) -> list[envelope.Recipient]:
            # Everything is encrypted to the desk's keys only (docs/DESKS.md).
            desk = chosen["desk"] = target.choose(fields.get(DESK_FIELD) or None)
            found = svc.desk_keys(desk)
            if not found:  # its journalists were removed meanwhile
                raise FormRejected(Reason.NO_DESK)
            return [k.recipient for k in found]

        with room.claimed():
            async with ObjectBatch(svc.store) as batch:
                parser = EncryptingFormParser(
                    boundary,
                    recipients=recipients_for,
                    batch=batch,
                    limits=svc.settings.limits,
                    question_ids=[q.id for q in svc.settings.questions],
                    check_csrf=lambda value: form_token_ok(request, session, value),
                )
                form = await parse_streaming(room.watch(aiter(body)), parser)
                answers = _answers(svc, lang, form)
                if form.message_object is None and not form.files:
                    raise FormRejected(Reason.EMPTY)
                recipients = parser.recipients()
                if not target.bound and (form.fields.get(DESK_FIELD) or None) not in (
                    None,
                    chosen["desk"],
                ):
                    raise FormRejected(Reason.MALFORMED)  # a second desk after the files
                submitter, receipt = await _commit(
                    svc, session, lang, form, answers, recipients, chosen["desk"], batch
                )
    except ClientDisconnect:
        # Nobody is left to read a page; the batch already removed every object.
        return Response(status_code=400)
    except FormRejected as exc:
        if not body.complete:
            await drain_body(request, svc.settings.limits.max_drain_bytes)
        return rejected_page(request, exc, lang)
    except STORAGE_ERRORS as exc:
        # The disk filled up, or the database could not be used: the batch removed
        # every object; the body is read to its end so that the browser shows the page.
        status = storage_failure(exc)
        if status is None:
            raise
        log_storage_failure(exc, status)
        if not body.complete:
            await drain_body(request, svc.settings.limits.max_drain_bytes)
        return storage_page(request, status, lang)
    return submitted(svc, session, lang, submitter, receipt)


def _answers(svc: Services, lang: str, form: ReceivedForm) -> list[dict[str, str]]:
    answers = []
    for q in svc.settings.questions:
        value = form.fields.get(QUESTION_PREFIX + q.id, "").strip()
        if len(value) > q.max_length:
            raise FormRejected(Reason.FIELD_TOO_LONG)
        if value:
            answers.append({"id": q.id, "question": q.label_for(lang), "answer": value})
    return answers


async def _commit(
    svc: Services,
    session: Session | None,
    lang: str,
    form: ReceivedForm,
    answers: list[dict[str, str]],
    recipients: Sequence[envelope.Recipient],
    desk: str | None,
    batch: ObjectBatch,
) -> tuple[Submitter, str | None]:
    """Write the manifest, then make the submission visible in one transaction;
    the submitter, and the submission's receipt."""
    submitter = await find_submitter(svc, session, lang, desk)
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
        json.dumps(manifest, ensure_ascii=False).encode("utf-8"), recipients
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
    return submitter, await issue_receipt(svc, submitter, objects)


class DiskWatch:
    """The no-JS body's share of the disk reserve (``Services.disk``): a claim
    for what it holds of the disk (``ObjectStore.local_bytes`` of its declared
    length), and a check before each MiB that it still fits.
    Either refusal is FormRejected(NO_ROOM): the batch then removes every object."""

    EVERY = 1 << 20

    def __init__(self, disk: DiskSpace, declared: int) -> None:
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
