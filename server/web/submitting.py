"""What both ways of submitting share (the no-JS form, server/web/routes/submit.py,
and the commit of resumable uploads, server/web/routes/commit.py): who the
submission is for, recording it, and the page that follows."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import anyio.to_thread
from fastapi.responses import Response

from server.domain.sessions import Session
from server.store.protocols import ObjectRow, SourceRow
from server.web.error_pages import N_
from server.web.rendering import redirect
from server.web.services import Services

SENT_NOTICE = N_("Your submission was received and encrypted. Thank you.")


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
    finished_uploads: Sequence[str] = (),
) -> None:
    """Make a submission visible: its source (if new), its row and its objects,
    and the removal of the rows of the ``finished_uploads`` that became its
    objects, in ONE transaction. Every object must already be complete in the
    store; until this commits, none is listed anywhere."""

    def record() -> None:
        new_row = submitter.new_source[1] if submitter.new_source is not None else None
        svc.sources.lifecycle.record_submission(
            submitter.source_id, new_row, submitter.day, objects, finished_uploads
        )

    # In a thread: waiting for SQLite's write lock must not stall other sources.
    await anyio.to_thread.run_sync(record)


async def issue_receipt(
    svc: Services, submitter: Submitter, objects: Sequence[ObjectRow]
) -> str | None:
    """The signed receipt of a recorded submission (server/domain/receipts.py):
    its objects read back and hashed, in a thread. None if the instance has no
    certified receipt key."""
    ids = [obj.id for obj in objects]
    return await anyio.to_thread.run_sync(svc.make_receipt, submitter.source_id, submitter.day, ids)


def submitted(
    svc: Services,
    session: Session | None,
    lang: str,
    submitter: Submitter,
    receipt: str | None = None,
) -> Response:
    """The answer to a recorded submission: the codename page for a new source
    (with a new session id: no fixation), the inbox with a notice otherwise.
    The session is created here for a visitor who had none; it keeps the
    submission's receipt (replacing an earlier one) for the receipt page."""
    if submitter.new_source is not None:
        session = svc.sessions.sign_in(
            session, submitter.source_id, new_codename=submitter.new_source[0]
        )
        if receipt is not None:
            svc.sessions.set_receipt(session, receipt)
        return redirect(f"/{lang}/codename", session)
    assert session is not None  # a follow-up comes from a source's session
    svc.sessions.set_receipt(session, receipt)
    svc.sessions.set_notice(session, SENT_NOTICE)
    return redirect(f"/{lang}/inbox", session)
