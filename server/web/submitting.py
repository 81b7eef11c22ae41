"""What both ways of submitting share (the no-JS form, server/web/routes/submit.py,
and the commit of resumable uploads, server/web/routes/commit.py): who the
submission is for, recording it, and the page that follows."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import anyio.to_thread
from fastapi.responses import Response

from server.domain.sessions import Session
from server.languages import FALLBACK
from server.store.protocols import DeskRow, ObjectRow, SourceRow
from server.web.error_pages import N_
from server.web.rendering import redirect
from server.web.services import Services
from server.web.streaming_form import DESK_FIELD, FormRejected, Reason

__all__ = [
    "DESK_FIELD",
    "Submitter",
    "Target",
    "desk_text",
    "find_submitter",
    "record_submission",
    "submitted",
    "target_of",
]

SENT_NOTICE = N_("Your submission was received and encrypted. Thank you.")


@dataclass(frozen=True)
class Target:
    """Which desk a submission goes to (docs/DESKS.md). A logged-in source's desk
    is the one their first submission chose (``bound``; None for a source of the
    whole newsroom, from before desks); a new source chooses among ``offered``
    (none: the instance has no desk, and everything goes to every journalist)."""

    bound: bool
    desk: str | None
    offered: list[DeskRow]
    has_desks: bool  # the instance has desks (some may have nobody to receive them)

    def choose(self, chosen: str | None) -> str | None:
        """The desk for what the form sent; ``FormRejected(NO_DESK)`` when a new
        source must choose and did not (or named a desk that is not offered)."""
        if self.bound:
            return self.desk
        if not self.has_desks:
            return None
        names = [d.name for d in self.offered]
        if chosen in names:
            return chosen
        if not chosen and len(names) == 1:
            return names[0]
        raise FormRejected(Reason.NO_DESK)

    def receivable(self, svc: Services) -> bool:
        """Whether anything sent now can be encrypted to someone."""
        if self.bound:
            return bool(svc.desk_keys(self.desk))
        if self.has_desks:
            return bool(self.offered)
        return bool(svc.journalist_keys())


def desk_text(desk: DeskRow, lang: str) -> dict[str, str]:
    """A desk as the submit page shows it, in ``lang`` (the first language for a
    desk added before ``lang`` existed)."""
    first = FALLBACK.code
    return {
        "name": desk.name,
        "title": desk.titles.get(lang) or desk.titles.get(first) or desk.name,
        "description": desk.descriptions.get(lang) or desk.descriptions.get(first) or "",
    }


def target_of(svc: Services, session: Session | None) -> Target:
    source_id = session.source_id if session is not None else None
    if source_id is not None and svc.sources.lifecycle.is_active(source_id):
        return Target(True, svc.sources.rows.desk_of(source_id), [], False)
    desks = svc.journalists.desks()
    return Target(False, None, svc.offered_desks() if desks else [], bool(desks))


@dataclass(frozen=True)
class Submitter:
    """Who a submission is recorded for: the logged-in source, or a new one."""

    day: str
    source_id: str
    new_source: tuple[str, SourceRow] | None  # (codename, row) for a first submission

    @property
    def follow_up(self) -> bool:
        return self.new_source is None


async def find_submitter(
    svc: Services, session: Session | None, lang: str, desk: str | None = None
) -> Submitter:
    """The session's source, or a fresh codename and source row (not yet stored)
    in ``desk``."""
    source_id = session.source_id if session is not None else None
    if source_id is not None and not svc.sources.lifecycle.is_active(source_id):
        source_id = None  # the account was deleted in another session
    if source_id is not None:
        return Submitter(svc.clock.today(), source_id, None)
    # In a thread: Argon2id must not stall other sources. It waits its turn
    # behind logins but is never refused: the submission has already arrived.
    async with svc.throttle.kdf.turn(may_refuse=False):
        codename, row = await anyio.to_thread.run_sync(svc.sources.new_codename, lang)
    row = dataclasses.replace(row, desk=desk)
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
