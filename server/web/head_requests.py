"""``HEAD`` answers like ``GET``, without the body (RFC 9110 §9.3.2).

Monitoring tools probe pages with ``HEAD``; FastAPI routes declared with
``GET`` alone would answer 405. This plain ASGI middleware runs a ``HEAD``
request as a ``GET`` (same status, same headers, Content-Length included) and
sends no body bytes. A route that handles ``HEAD`` itself (the tus offset
query, static files) is left alone.
"""

from __future__ import annotations

from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class HeadAsGetMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD" or _handles_head(scope):
            await self.app(scope, receive, send)
            return

        async def without_body(message: Message) -> None:
            if message["type"] == "http.response.body":
                if message.get("more_body", False):
                    return  # the GET body is produced, never sent
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, without_body)


def _handles_head(scope: Scope) -> bool:
    """Whether a route of the app answers HEAD for this path on its own."""
    app = scope.get("app")
    router = getattr(app, "router", None)
    for route in getattr(router, "routes", ()):
        match, _ = route.matches(scope)
        if match is Match.FULL:
            return True
    return False
