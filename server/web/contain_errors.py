"""Containing errors: no traceback, exception text or request value leaves the process.

Both apps (source interface and journalist API) wrap their routes in
``ContainErrorsMiddleware``: an unexpected exception becomes the app's own
500 answer, and the log gets one line naming the exception's type, nothing
from the request. Starlette's last-resort handler would re-raise so that the
server prints a traceback, and a traceback's message can quote what a client
sent (``int('²')`` quotes the header). ``RedactTracebacks`` is the same rule
for log records from libraries (uvicorn's "Exception in ASGI application"):
the exception's type stays, its message and traceback go.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("lanterne.server")


class ContainErrorsMiddleware:
    """Turns any unexpected exception into ``respond(scope)``, logging only its type."""

    def __init__(self, app: ASGIApp, respond: Callable[[Scope], Response]) -> None:
        self.app = app
        self.respond = respond

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            # The type only: not the message, not the method or path (request values).
            log.error("unexpected %s while answering a request", type(exc).__name__)
            if not started:
                await self.respond(scope)(scope, receive, send)


class RedactTracebacks(logging.Filter):
    """Keeps a record's own message, replaces its exception by the exception's type."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info:
            kind = record.exc_info[0].__name__ if record.exc_info[0] else "exception"
            record.msg = f"{record.msg} [{kind}]"
            record.exc_info = None
            record.exc_text = None
        record.stack_info = None
        return True
