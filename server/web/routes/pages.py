"""Pages that only show things: home (landing) and the new codename."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from server.web.rendering import check_language, current_session, redirect, render, services

router = APIRouter()


@router.get("/")
async def root(request: Request) -> RedirectResponse:
    return redirect(f"/{services(request).settings.default_language}/")


@router.get("/{lang}/")
async def landing(request: Request, lang: str) -> HTMLResponse:
    check_language(lang)
    svc = services(request)
    keys = svc.journalist_keys()
    session = current_session(request, create=False)
    notice = svc.sessions.take_notice(session) if session is not None else None
    return render(
        request,
        lang,
        "landing.html",
        {
            "journalists": keys,
            "notice": notice,
            "newsroom": svc.newsroom_fingerprint(),
            "directory_pin": svc.directory_pin(),
        },
    )


@router.get("/{lang}/codename")
async def codename(request: Request, lang: str) -> Response:
    check_language(lang)
    session = current_session(request, create=False)
    if session is None or session.new_codename is None:
        return redirect(f"/{lang}/inbox" if session and session.source_id else f"/{lang}/")
    words = session.new_codename.split()
    return render(
        request, lang, "codename.html", {"codename": session.new_codename, "words": words}
    )
