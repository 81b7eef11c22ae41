"""Turning a template into a response: language, session cookie, common context."""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from typing import Any

from fastapi import HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from server.domain.sessions import COOKIE_NAME, VISIT_COOKIE, FormTokens, Session
from server.languages import LANGUAGES
from server.web.services import Services


def services(request: Request) -> Services:
    svc: Services = request.app.state.services
    return svc


def check_language(lang: str) -> str:
    if lang not in LANGUAGES:
        raise HTTPException(status_code=404)
    return lang


def current_session(request: Request, *, create: bool) -> Session | None:
    """The request's session; ``create`` makes an anonymous one (POSTs only: a
    page load must cost the server nothing, server/domain/sessions.py)."""
    svc = services(request)
    session = getattr(request.state, "set_session", None) or svc.sessions.get(
        request.cookies.get(COOKIE_NAME)
    )
    if session is None and create:
        session = svc.sessions.create()
        request.state.set_session = session
    return session


def form_token(request: Request, session: Session | None) -> str:
    """The CSRF token for this page's forms: the session's for a source, else a
    stateless token bound to the visit cookie (set with the response if new)."""
    if session is not None and session.holds_source:
        return session.csrf_token
    visit = getattr(request.state, "set_visit", None) or request.cookies.get(VISIT_COOKIE)
    if not FormTokens.is_visit(visit):
        visit = FormTokens.new_visit()
        request.state.set_visit = visit
    assert visit is not None
    return services(request).form_tokens.issue(visit)


def form_token_ok(request: Request, session: Session | None, token: str) -> bool:
    """Whether a posted token is the session's, or a stateless one of this browser."""
    if session is not None and hmac.compare_digest(
        token.encode("utf-8"), session.csrf_token.encode("utf-8")
    ):
        return True
    return services(request).form_tokens.check(request.cookies.get(VISIT_COOKIE), token)


def set_session_cookie(response: Response, session: Session) -> None:
    # No Secure flag: onion services are plain http (Tor encrypts the circuit),
    # and a Secure cookie would never come back. No Max-Age: gone with the browser.
    response.set_cookie(
        COOKIE_NAME, session.id, httponly=True, samesite="strict", path="/", secure=False
    )


def clear_session_cookie(response: Response) -> None:
    response.delete_cookie(COOKIE_NAME, path="/", httponly=True, samesite="strict")
    response.delete_cookie(VISIT_COOKIE, path="/", httponly=True, samesite="strict")


def other_language_paths(request: Request, lang: str) -> dict[str, str]:
    """For each language, the same page in it (GET pages) or its home page."""
    path = request.url.path
    rest = path[len(lang) + 2 :] if path.startswith(f"/{lang}/") else ""
    if request.method != "GET":
        rest = ""
    return {other: f"/{other}/{rest}" for other in LANGUAGES}


def render(
    request: Request,
    lang: str,
    template: str,
    context: Mapping[str, Any] | None = None,
    *,
    status_code: int = 200,
    session: Session | None = None,
) -> HTMLResponse:
    svc = services(request)
    if session is None:
        session = getattr(request.state, "set_session", None) or current_session(
            request, create=False
        )
    ctx: dict[str, Any] = {
        "organisation": svc.settings.organisation,
        "language_paths": other_language_paths(request, lang),
        "csrf_token": form_token(request, session),
        "logged_in": bool(session and session.source_id),
        "has_receipt": bool(session and session.receipt),
        **(context or {}),
    }
    body = svc.pages.render(lang, template, ctx)
    response = HTMLResponse(body, status_code=status_code)
    new_session = getattr(request.state, "set_session", None)
    if new_session is not None:
        set_session_cookie(response, new_session)
    visit = getattr(request.state, "set_visit", None)
    if visit is not None:
        # Like the session cookie: HttpOnly, SameSite=Strict, gone with the browser.
        response.set_cookie(
            VISIT_COOKIE, visit, httponly=True, samesite="strict", path="/", secure=False
        )
    return response


def redirect(path: str, session: Session | None = None) -> RedirectResponse:
    response = RedirectResponse(path, status_code=303)
    if session is not None:
        set_session_cookie(response, session)
    return response
