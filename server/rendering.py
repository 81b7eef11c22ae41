"""Turning a template into a response: language, session cookie, common context."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from server.services import Services
from server.sessions import COOKIE_NAME, Session
from server.settings import LANGUAGES


def services(request: Request) -> Services:
    svc: Services = request.app.state.services
    return svc


def check_language(lang: str) -> str:
    if lang not in LANGUAGES:
        raise HTTPException(status_code=404)
    return lang


def current_session(request: Request, *, create: bool) -> Session | None:
    svc = services(request)
    session = svc.sessions.get(request.cookies.get(COOKIE_NAME))
    if session is None and create:
        session = svc.sessions.create()
        request.state.set_session = session
    return session


def set_session_cookie(response: Response, session: Session) -> None:
    # No Secure flag: onion services are plain http (Tor encrypts the circuit),
    # and a Secure cookie would never come back. No Max-Age: gone with the browser.
    response.set_cookie(
        COOKIE_NAME, session.id, httponly=True, samesite="strict", path="/", secure=False
    )


def clear_session_cookie(response: Response) -> None:
    response.delete_cookie(COOKIE_NAME, path="/", httponly=True, samesite="strict")


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
        "csrf_token": session.csrf_token if session else "",
        "logged_in": bool(session and session.source_id),
        **(context or {}),
    }
    body = svc.pages.render(lang, template, ctx)
    response = HTMLResponse(body, status_code=status_code)
    new_session = getattr(request.state, "set_session", None)
    if new_session is not None:
        set_session_cookie(response, new_session)
    return response


def redirect(path: str, session: Session | None = None) -> RedirectResponse:
    response = RedirectResponse(path, status_code=303)
    if session is not None:
        set_session_cookie(response, session)
    return response
