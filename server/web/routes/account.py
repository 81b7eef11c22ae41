"""Coming back with a codename: log in, read replies, log out, delete the account."""

# ruff: noqa: E501 -- user-facing sentences stay whole so translators see them whole.
from __future__ import annotations

import anyio.to_thread
from fastapi import APIRouter, Request
from fastapi.responses import Response

from server.domain import codenames
from server.domain.channel import Channels
from server.domain.sessions import LoginBusy, Session
from server.web.error_pages import N_, error_page, rejected_page, status_page
from server.web.rendering import (
    check_language,
    clear_session_cookie,
    current_session,
    form_token_ok,
    redirect,
    render,
    services,
)
from server.web.streaming_form import (
    CSRF_FIELD,
    FormRejected,
    Reason,
    read_small_form,
)
from server.web.uploads import OWNER_COOKIE, owner_hash, upload_store

router = APIRouter()

LOGGED_OUT = N_("You are logged out. Close Tor Browser to clear everything from this visit.")
DELETED = N_(
    "Your account is deleted. Your codename no longer works and the replies to you are erased. What you sent stays with the journalists: they can still read it, but they can no longer reply to you."
)

CODENAME_ERRORS = {
    "count": N_("A codename has exactly nine words. Please check that you typed all of them."),
    "check": N_(
        "These nine words are not a codename from this site. One of them is probably mistyped or in the wrong order."
    ),
}


async def _checked_form(request: Request, session: Session | None) -> dict[str, str]:
    """The small urlencoded form, after checking its CSRF token."""
    fields = await read_small_form(request.stream(), request.headers.get("content-type"))
    if not form_token_ok(request, session, fields.get(CSRF_FIELD, "")):
        raise FormRejected(Reason.CSRF)
    return fields


@router.get("/{lang}/login")
async def login_form(request: Request, lang: str) -> Response:
    check_language(lang)
    return render(request, lang, "login.html", {"error": None})


@router.post("/{lang}/login")
async def login(request: Request, lang: str) -> Response:
    check_language(lang)
    svc = services(request)
    session = current_session(request, create=False)
    try:
        fields = await _checked_form(request, session)
    except FormRejected as exc:
        return rejected_page(request, exc, lang)
    # The first POST of a visitor makes a session: failures count against it.
    session = current_session(request, create=True)
    assert session is not None
    if not svc.throttle.allow(session):
        return status_page(request, 429)
    typed = fields.get("codename", "")
    try:
        async with svc.throttle.attempt(session):
            found = await anyio.to_thread.run_sync(svc.sources.login, typed)
    except LoginBusy:
        return status_page(request, 503)
    except codenames.CodenameError as exc:
        # A typo in the words is not a guess: it does not count as a failure.
        if exc.reason == "word":
            error = svc.pages.gettext(
                lang, N_("Word %(position)s is not in our word list. Please check its spelling.")
            ) % {"position": exc.position}
        else:
            error = svc.pages.gettext(lang, CODENAME_ERRORS[exc.reason])
        return render(request, lang, "login.html", {"error": error}, status_code=400)
    if found is None:
        svc.throttle.failed(session)
        error = svc.pages.gettext(
            lang, N_("No account has this codename. Please check the words and try again.")
        )
        return render(request, lang, "login.html", {"error": error}, status_code=403)
    row, identity = found
    replies = await anyio.to_thread.run_sync(svc.sources.read_replies, row.id, identity)
    del identity  # Python cannot wipe it; at least keep no reference (DESIGN §10)
    await anyio.to_thread.run_sync(svc.sources.lifecycle.logged_in, row.id, svc.clock.today())
    session = svc.sessions.sign_in(session, row.id, replies=replies)
    return redirect(f"/{lang}/inbox", session)


@router.get("/{lang}/inbox")
async def inbox(request: Request, lang: str) -> Response:
    check_language(lang)
    session = current_session(request, create=False)
    if session is None or session.source_id is None:
        return redirect(f"/{lang}/login")
    notice = services(request).sessions.take_notice(session)
    # How long what they sent is kept (docs/OFFICIAL_CHANNEL.md): the rule, not their day.
    svc = services(request)
    desk = await anyio.to_thread.run_sync(svc.sources.rows.desk_of, session.source_id)
    channel = Channels(svc.settings.channel, svc.journalists).lookup()(desk)
    retention = channel.retention_days
    return render(
        request,
        lang,
        "inbox.html",
        {"replies": session.replies, "notice": notice, "retention_days": retention},
    )


@router.post("/{lang}/logout")
async def logout(request: Request, lang: str) -> Response:
    check_language(lang)
    svc = services(request)
    session = current_session(request, create=False)
    try:
        await _checked_form(request, session)
    except FormRejected as exc:
        return rejected_page(request, exc, lang)
    if session is not None:
        svc.sessions.end(session)
    response = render(
        request, lang, "notice.html", {"title": N_("Logged out"), "text": LOGGED_OUT}, session=None
    )
    clear_session_cookie(response)
    await _forget_uploads(request, response)
    return response


@router.get("/{lang}/delete")
async def delete_form(request: Request, lang: str) -> Response:
    check_language(lang)
    session = current_session(request, create=False)
    if session is None or session.source_id is None:
        return redirect(f"/{lang}/login")
    return render(request, lang, "delete.html")


@router.post("/{lang}/delete")
async def delete(request: Request, lang: str) -> Response:
    check_language(lang)
    svc = services(request)
    session = current_session(request, create=False)
    try:
        fields = await _checked_form(request, session)
    except FormRejected as exc:
        return rejected_page(request, exc, lang)
    if session is None or session.source_id is None:
        return redirect(f"/{lang}/login")
    if fields.get("confirm") != "yes":
        return error_page(
            request,
            400,
            N_("Not deleted"),
            N_("Tick the box to confirm that you want to delete your account."),
        )
    # Ends every session of the source too (this one is ended again below,
    # which also clears what it held).
    await anyio.to_thread.run_sync(svc.sources.lifecycle.delete_by_source, session.source_id)
    svc.sessions.end(session)
    response = render(
        request, lang, "notice.html", {"title": N_("Account deleted"), "text": DELETED}
    )
    clear_session_cookie(response)
    await _forget_uploads(request, response)
    return response


async def _forget_uploads(request: Request, response: Response) -> None:
    """Logging out or deleting the account also deletes this browser's unfinished
    uploads and their cookie: a shared computer keeps nothing of the visit."""
    owner = owner_hash(request)
    if owner is not None:
        await anyio.to_thread.run_sync(upload_store(request).forget_owner, owner)
    response.delete_cookie(OWNER_COOKIE, path="/", httponly=True, samesite="strict")
