"""Clear error pages in the source's language, for every way a request can fail.

No traceback, exception text or piece of the request is ever shown or logged:
the page says what happened, that nothing was kept, and what to do next.
"""

# ruff: noqa: E501 -- user-facing sentences stay whole so translators see them whole.
from __future__ import annotations

import errno
import logging

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.types import Scope

from server.languages import LANGUAGES
from server.store.protocols import DATABASE_UNAVAILABLE, StoreFull, StoreUnavailable, database_full
from server.web.head_requests import allowed_methods
from server.web.rendering import render
from server.web.streaming_form import FormRejected, Reason

log = logging.getLogger("lanterne.server")


def N_(message: str) -> str:
    """Marks a string for extraction; it is translated when the page is rendered."""
    return message


NOTHING_KEPT = N_("Nothing you sent was kept.")
# A refused commit changes nothing: the page can fix what is wrong and try again.
NOT_SUBMITTED = N_(
    "Nothing was submitted. What your browser already uploaded stays on this server, encrypted, for a day, so that sending can continue."
)

# Why a commit of browser uploads was refused (server.store.uploads.CommitProblem.kind).
COMMIT_PROBLEMS: dict[str, tuple[int, str, str]] = {
    "missing": (
        400,
        N_("Part of the submission is missing"),
        N_(
            "Something your browser uploaded is no longer on this server: it was cancelled, or it expired after a day without activity. Please reload the page and send it again."
        ),
    ),
    "incomplete": (
        409,
        N_("The upload is not finished"),
        N_(
            "Part of the submission has not finished uploading. Keep the page open: sending continues where it stopped."
        ),
    ),
    "not_envelope": (
        400,
        N_("An upload was not encrypted"),
        N_(
            "Something your browser uploaded is not encrypted the way this site requires, so it cannot be given to the journalists. Please reload the page and try again."
        ),
    ),
    "duplicate": (
        400,
        N_("The submission could not be read"),
        N_(
            "The same upload was named twice in one submission. Please reload the page and try again."
        ),
    ),
    "busy": (
        409,
        N_("The upload is still in progress"),
        N_("Part of this submission is still being received. Please wait a moment and try again."),
    ),
}

REASONS: dict[Reason, tuple[str, str]] = {
    Reason.MALFORMED: (
        N_("The form could not be read"),
        N_("What your browser sent was not a complete, valid form. Please go back and try again."),
    ),
    Reason.TRUNCATED: (
        N_("The upload was interrupted"),
        N_("The connection ended before everything arrived. Please go back and send it again."),
    ),
    Reason.UNKNOWN_FIELD: (
        N_("The form could not be read"),
        N_(
            "The form contained a field this page does not have. Please reload the form and try again."
        ),
    ),
    Reason.TOO_MANY_PARTS: (
        N_("Too many fields"),
        N_(
            "The form had far more fields than this page has. Please reload the form and try again."
        ),
    ),
    Reason.BAD_FILENAME: (
        N_("A file name cannot be accepted"),
        N_(
            "A file name was empty, too long, or contained a slash, a backslash or a control character. Rename the file and try again."
        ),
    ),
    Reason.BAD_TEXT: (
        N_("The text could not be read"),
        N_(
            "A field contained characters that are not valid text. Please check what you typed and try again."
        ),
    ),
    Reason.EMPTY: (
        N_("Nothing to send"),
        N_("Please write a message or attach at least one file."),
    ),
    Reason.HONEYPOT: (
        N_("The form could not be accepted"),
        N_(
            "A field that must stay empty was filled in. If you did not do this, reload the form and try again."
        ),
    ),
    Reason.CSRF: (
        N_("This form has expired"),
        N_(
            "For your safety, each form works only for a limited time and only on this site. Reload the form and send it again."
        ),
    ),
    Reason.FIELD_TOO_LONG: (
        N_("An answer is too long"),
        N_("One of the answers is longer than this form accepts. Please shorten it and try again."),
    ),
    Reason.MESSAGE_TOO_LONG: (
        N_("The message is too long"),
        N_(
            "The message is longer than this form accepts. Please shorten it, or put the text in a file and attach it."
        ),
    ),
    Reason.FILE_TOO_LARGE: (
        N_("A file is too large"),
        N_(
            "One of the files is larger than this form accepts. Please split it into smaller files and send them in several submissions."
        ),
    ),
    Reason.TOO_MANY_FILES: (
        N_("Too many files"),
        N_(
            "You attached more files than one submission accepts. Please send the rest in a follow-up submission, or put them in a zip archive."
        ),
    ),
    Reason.BODY_TOO_LARGE: (
        N_("The submission is too large"),
        N_(
            "Everything together is larger than one submission accepts. Please send it in several parts."
        ),
    ),
    Reason.NO_ROOM: (
        N_("The server is full"),
        N_(
            "This server does not have room for your submission at the moment. Please try again later, or send fewer or smaller files."
        ),
    ),
    Reason.NO_DESK: (
        N_("Choose who should receive this"),
        N_(
            "Please choose one of the teams listed on the form, then send again. If none is listed, nobody can receive messages at the moment: please come back later."
        ),
    ),
    Reason.UNSUPPORTED_TYPE: (
        N_("The form could not be read"),
        N_(
            "Your browser sent the form in a way this page does not accept. Please reload the form and try again."
        ),
    ),
}

STATUS_PAGES: dict[int, tuple[str, str]] = {
    400: (N_("The request could not be read"), N_("Please go back and try again.")),
    403: (N_("Not allowed"), N_("This action is not allowed. Reload the page and try again.")),
    404: (
        N_("Page not found"),
        N_(
            "There is no page at this address. Check the address, or start again from the home page."
        ),
    ),
    405: (
        N_("Not allowed"),
        N_("This page cannot be used this way. Start again from the home page."),
    ),
    413: (N_("Too large"), N_("What you sent is larger than this site accepts.")),
    429: (
        N_("Too many attempts"),
        N_("There have been too many attempts. Please wait a few minutes and try again."),
    ),
    503: (
        N_("The server is busy"),
        N_("Many people are logging in at this moment. Please wait a minute and try again."),
    ),
    500: (
        N_("Something went wrong"),
        N_("The server could not finish this request. Please try again later."),
    ),
}


# The database or the disk cannot be used for a moment (docs/RELIABILITY.md).
UNAVAILABLE = (
    N_("The site cannot take requests for a moment"),
    N_("The server could not reach its storage just now. Please wait a few minutes and try again."),
)


def storage_failure(exc: BaseException) -> int | None:
    """507 for a full disk, 503 for a database or descriptors unavailable for a
    moment (locked past its wait, too many open files, an I/O error); None for
    anything else, which stays a 500."""
    if isinstance(exc, DATABASE_UNAVAILABLE):
        return 507 if database_full(exc) else 503
    if isinstance(exc, OSError):
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return 507
        if exc.errno in (errno.EMFILE, errno.ENFILE, errno.EIO):
            return 503
    return None


def log_storage_failure(exc: BaseException, status: int) -> None:
    """One warning line for ``storage_failure``'s answer, saying which store and
    why: a networked store's fixed message and its driver's error type (a pool
    timeout is not a refused connection), else the type and errno name; never
    another message, which may name a path."""
    if isinstance(exc, StoreUnavailable | StoreFull):
        cause = type(exc.__cause__).__name__ if exc.__cause__ else "-"
        what = f"{type(exc).__name__}: {exc.strerror}, {cause}"
    elif isinstance(exc, OSError) and exc.errno:
        what = f"{type(exc).__name__} {errno.errorcode.get(exc.errno, exc.errno)}"
    else:
        what = type(exc).__name__
    log.warning("storage unavailable (%s): answered %d", what, status)


def storage_page(
    request: Request, status: int, lang: str | None = None, note: str = ""
) -> HTMLResponse:
    """The page for ``storage_failure``'s answer: what happened, and that nothing
    was kept (or ``note``, a marked string, instead)."""
    title, text = REASONS[Reason.NO_ROOM] if status == 507 else UNAVAILABLE
    return error_page(request, status, title, text, nothing_kept=True, lang=lang, note=note)


def language_of(request: Request) -> str:
    lang = request.path_params.get("lang")
    if lang in LANGUAGES:
        return str(lang)
    first = request.url.path.strip("/").split("/", 1)[0]
    if first in LANGUAGES:
        return first
    default: str = request.app.state.services.settings.default_language
    return default


def error_page(
    request: Request,
    status: int,
    title: str,
    text: str,
    *,
    nothing_kept: bool = False,
    lang: str | None = None,
    note: str = "",
) -> HTMLResponse:
    """``note`` (a marked string) replaces the "nothing was kept" line when given."""
    lang = lang or language_of(request)
    return render(
        request,
        lang,
        "error.html",
        {
            "title": title,
            "text": text,
            "nothing_kept": note or (NOTHING_KEPT if nothing_kept else ""),
        },
        status_code=status,
    )


def rejected_page(
    request: Request, exc: FormRejected, lang: str | None = None, note: str = ""
) -> HTMLResponse:
    title, text = REASONS[exc.reason]
    return error_page(
        request, exc.reason.status, title, text, nothing_kept=True, lang=lang, note=note
    )


def commit_problem_page(request: Request, kind: str, lang: str) -> HTMLResponse:
    status, title, text = COMMIT_PROBLEMS[kind]
    return error_page(request, status, title, text, lang=lang, note=NOT_SUBMITTED)


def status_page(request: Request, status: int) -> HTMLResponse:
    title, text = STATUS_PAGES.get(status, STATUS_PAGES[400 if status < 500 else 500])
    return error_page(request, status, title, text)


def install(app: FastAPI) -> None:
    async def on_http_error(request: Request, exc: Exception) -> HTMLResponse:
        assert isinstance(exc, StarletteHTTPException)
        page = status_page(request, exc.status_code)
        if exc.status_code == 405:
            page.headers["Allow"] = allowed_methods(request.scope)
        return page

    async def on_validation_error(request: Request, exc: Exception) -> HTMLResponse:
        return status_page(request, 400)

    async def on_rejected(request: Request, exc: Exception) -> HTMLResponse:
        assert isinstance(exc, FormRejected)
        return rejected_page(request, exc)

    async def on_storage_error(request: Request, exc: Exception) -> HTMLResponse:
        status = storage_failure(exc)
        if status is None:
            # As server.contain_errors does: the type only, never the message.
            log.error("unexpected %s while answering a request", type(exc).__name__)
            return status_page(request, 500)
        log_storage_failure(exc, status)
        return storage_page(request, status)

    for unavailable in DATABASE_UNAVAILABLE:
        app.add_exception_handler(unavailable, on_storage_error)
    app.add_exception_handler(OSError, on_storage_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(HTTPException, on_http_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(FormRejected, on_rejected)


def server_error(scope: Scope) -> Response:
    """The 500 page, for ``server.web.contain_errors.ContainErrorsMiddleware``."""
    return status_page(Request(scope), 500)
