"""The receipt of a source's last submission (envelope/SPEC.md §12): a page to
read, print or copy it, and the same text as a download. Only from the
source's own session, where it is kept sealed until logout or expiry."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from server.web.rendering import check_language, current_session, redirect, render, services

router = APIRouter()


@router.get("/{lang}/receipt")
async def receipt_page(request: Request, lang: str) -> Response:
    check_language(lang)
    session = current_session(request, create=False)
    if session is None or session.receipt is None:
        return redirect(f"/{lang}/inbox" if session and session.source_id else f"/{lang}/")
    svc = services(request)
    return render(
        request,
        lang,
        "receipt.html",
        {
            "receipt": session.receipt,
            "newsroom": svc.newsroom_fingerprint(),
            "back": "codename" if session.new_codename else "inbox",
        },
    )


@router.get("/{lang}/receipt.txt")
async def receipt_download(request: Request, lang: str) -> Response:
    check_language(lang)
    session = current_session(request, create=False)
    if session is None or session.receipt is None:
        return redirect(f"/{lang}/inbox" if session and session.source_id else f"/{lang}/")
    day = next((line[5:] for line in session.receipt.splitlines() if line.startswith("day: ")), "")
    return Response(
        session.receipt.encode("utf-8"),
        media_type="text/plain; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="lanterne-receipt-{day}.txt"'},
    )
