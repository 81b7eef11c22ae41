"""``HEAD`` answers like ``GET``, without the body (RFC 9110 §9.3.2).

Monitoring tools probe pages with ``HEAD``; FastAPI routes declared with
``GET`` alone would answer 405. This plain ASGI middleware runs a ``HEAD``
request as a ``GET`` (same status, same headers, Content-Length included) and
sends no body bytes. A route that handles ``HEAD`` itself (the tus offset
query, static files) is left alone. ``allowed_methods`` says the same to a
405: the ``Allow`` header names HEAD wherever GET is answered.
"""

from __future__ import annotations

from starlette.routing import Match, Mount
from starlette.staticfiles import StaticFiles
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


# The methods a 405 may name, in the order ``Allow`` lists them.
_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def allowed_methods(scope: Scope) -> str:
    """The ``Allow`` header of a 405 for this request's path (RFC 9110 §15.5.6).

    Every method some route of the app fully matches on the path, asked of the
    routes themselves: Starlette's own header names the methods of the first
    route that matched the path only, and a path often has several routes (GET,
    PATCH and DELETE of one source). HEAD goes with GET (the middleware above);
    static files answer GET and HEAD.
    """
    routes = getattr(getattr(scope.get("app"), "router", None), "routes", ())
    # Inside a mount (static files) root_path names the mount: match from the app's root.
    root = scope.get("app_root_path", scope.get("root_path", ""))
    allowed: set[str] = set()
    for method in _METHODS:
        probe: Scope = {"type": "http", "method": method, "path": scope["path"], "root_path": root}
        for route in routes:
            match, _ = route.matches(probe)
            if isinstance(route, Mount) and isinstance(route.app, StaticFiles):
                match = match if method in ("GET", "HEAD") else Match.NONE
            if match is Match.FULL:
                allowed.add(method)
                break
    if "GET" in allowed:
        allowed.add("HEAD")
    return ", ".join(m for m in _METHODS if m in allowed)
