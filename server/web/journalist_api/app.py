"""Building the journalist API app: services, error handling, headers."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.body_limit import MAX_BODY_SIZE_SCOPE_KEY
from starlette.routing import Match
from starlette.types import ASGIApp, Receive, Scope, Send

from server.domain.clock import Clock, SystemClock
from server.domain.newsroom import Newsroom
from server.domain.source_lifecycle import SourceLifecycle
from server.settings import Settings
from server.store.protocols import DATABASE_UNAVAILABLE
from server.store.wiring import ApiStores, configured_api_stores, ephemeral_store
from server.web.app import quiet_logging
from server.web.contain_errors import ContainErrorsMiddleware
from server.web.error_pages import log_storage_failure, storage_failure
from server.web.head_requests import HeadAsGetMiddleware, allowed_methods
from server.web.journalist_api import routes
from server.web.journalist_api.auth import Authenticator, ServedHosts
from server.web.security_headers import SecurityHeadersMiddleware

log = logging.getLogger("lanterne.server")

API_PREFIX = "/api/v1"
_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "bad_request",
    409: "conflict",
    413: "too_large",
    415: "bad_request",
    416: "bad_request",
    503: "unavailable",
    507: "no_room",
}
# A storage failure (error_pages.storage_failure) as the API says it.
_STORAGE = {
    503: "the server could not reach its storage just now: try again in a minute",
    507: "the server's disk is full: nothing was kept; the admin must make room",
}
RETRY_SECONDS = 60
CHALLENGE = 'Bearer realm="lanterne"'


def error(status: int, message: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    code = _CODES.get(status, "bad_request")
    return JSONResponse({"error": code, "message": message}, status, headers=headers)


def internal_error(scope: Scope) -> JSONResponse:
    return JSONResponse({"error": "internal", "message": "internal error"}, 500)


# What the listener answers to a connection over its cap (server/ops/serving.py,
# BUSY_RESPONSE), before any route sees the request: true of every operation.
# Routes that use the storage list a JSON 503 too (``storage_error``).
_BUSY = "too many connections to the API at once (text): try again after Retry-After"
_BUSY_OR_STORAGE = (
    "too many connections to the API at once (text), or its storage cannot be reached"
    " for a moment (JSON): try again after Retry-After"
)
_BUSY_TEXT = {"text/plain": {"schema": {"type": "string"}}}
_RETRY_AFTER = {"required": True, "schema": {"type": "string", "pattern": "^[0-9]+$"}}
_WWW_AUTHENTICATE = {"required": True, "schema": {"type": "string", "const": CHALLENGE}}


def _body_limit(scope: Scope) -> int | None:
    """The ``max_body_size`` of the operation that ``scope`` reaches (routes.py
    sets it on those that take JSON), or None."""
    path = scope.get("path", "")
    if not path.startswith(API_PREFIX + "/"):
        return None
    unprefixed = {**scope, "path": path.removeprefix(API_PREFIX)}
    for route in routes.router.routes:
        if isinstance(route, APIRoute) and route.matches(unprefixed)[0] is Match.FULL:
            return route.max_body_size
    return None


class DeclaredBodyLimit:
    """A body whose Content-Length is over its route's ``max_body_size`` gets the
    API's JSON 413 before a byte of it is read. A body that only grows past the
    limit is cut off by Starlette's limiter, which the route carries, and its 413
    comes through ``http_error``; the declared case it would answer in plain text."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            declared = Headers(scope=scope).get("content-length", "")
            limit = _body_limit(scope) if declared.isdigit() else None
            if limit is not None and int(declared) > limit:
                await error(413, f"the body is over {limit} bytes")(scope, receive, send)
                return
        await self.app(scope, receive, send)


def contract(app: FastAPI) -> dict[str, Any]:
    """The OpenAPI document (docs/JOURNALIST_API.md): FastAPI's, made to say what
    this server does. FastAPI lists a 422 on every operation with a parameter or a
    body; here such a request gets 400 (``invalid``), which the routes list with
    every other status they answer. Built once, like FastAPI's own."""
    if app.openapi_schema is None:
        doc = FastAPI.openapi(app)  # FastAPI's own, which it keeps in app.openapi_schema
        for operations in doc["paths"].values():
            for operation in operations.values():
                responses = operation["responses"]
                responses.pop("422", None)
                busy = responses.setdefault("503", {})
                storage = "application/json" in busy.get("content", {})
                busy["description"] = _BUSY_OR_STORAGE if storage else _BUSY
                busy.setdefault("content", {}).update(_BUSY_TEXT)
                busy["headers"] = {"Retry-After": _RETRY_AFTER}
                if "401" in responses:
                    responses["401"]["headers"] = {"WWW-Authenticate": _WWW_AUTHENTICATE}
        schemas = doc.get("components", {}).get("schemas", {})
        for unused in ("HTTPValidationError", "ValidationError"):
            schemas.pop(unused, None)
        app.openapi_schema = doc
    return app.openapi_schema


def create_journalist_app(
    settings: Settings,
    *,
    clock: Clock | None = None,
    listen: str | None = None,
    stores: ApiStores | None = None,
) -> FastAPI:
    """``listen``: the ``host:port`` the API is served on, which login signatures
    may name while no journalist onion is known (auth.ServedHosts). ``stores``:
    what the API reads and changes (the data directory's database and files if
    none are given); ``clock``: sessions, tokens and dates. Seams for tests and
    for another backend."""
    quiet_logging()
    if stores is None:
        stores = configured_api_stores(settings)
    newsroom = Newsroom(
        stores.newsroom,
        stores.objects,
        SourceLifecycle(stores.sources, stores.objects),
        settings.channel,
        stores.journalists,
    )
    app = FastAPI(
        title="Lanterne journalist API",
        version="1",
        docs_url=None,
        redoc_url=None,
        openapi_url=f"{API_PREFIX}/openapi.json",
    )
    app.state.api = routes.ApiServices(
        db=stores.journalists,
        newsroom=newsroom,
        # Tokens that any instance honours (docs/SERVER_LAYERS.md, "Several instances").
        auth=Authenticator(
            clock or SystemClock(),
            shared=stores.ephemeral or ephemeral_store(settings),
            now=clock.monotonic if clock is not None else time.time,
        ),
        clock=clock or SystemClock(),
        hosts=ServedHosts(settings.journalist_hosts, listen),
        default_language=settings.default_language,
    )
    app.include_router(routes.router, prefix=API_PREFIX)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            headers["Allow"] = allowed_methods(request.scope)
        if exc.status_code == 401:
            headers["WWW-Authenticate"] = CHALLENGE  # RFC 9110 §15.5.2: a 401 names its scheme
        limit = request.scope.get(MAX_BODY_SIZE_SCOPE_KEY)
        if exc.status_code == 413 and not isinstance(exc, HTTPException) and limit is not None:
            # Starlette's own, from a route's max_body_size: say the limit.
            exc = HTTPException(413, f"the body is over {limit} bytes")
        response = error(exc.status_code, str(exc.detail), headers)
        if isinstance(exc, routes.Unauthorized):
            # Why a login or token was refused, for the CLI's message (auth.Refusal).
            response = JSONResponse(
                {"error": "unauthorized", "reason": exc.reason, "message": str(exc.detail)},
                401,
                headers=headers,
            )
        return response

    async def storage_error(request: Request, exc: Exception) -> JSONResponse:
        status = storage_failure(exc)
        if status is None:
            # As ContainErrorsMiddleware does: the type only, never the message.
            log.error("unexpected %s while answering a request", type(exc).__name__)
            return internal_error(request.scope)
        log_storage_failure(exc, status)
        headers = {"Retry-After": str(RETRY_SECONDS)} if status == 503 else None
        return error(status, _STORAGE[status], headers)

    for unavailable in DATABASE_UNAVAILABLE:
        app.add_exception_handler(unavailable, storage_error)
    app.add_exception_handler(OSError, storage_error)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        # Where, and pydantic's rule ("String should have at least 1 character"), for
        # the first few problems; never the submitted values (the errors' "input").
        # A name in "where" can be a key the client sent (an unknown field): cut short.
        problems = "; ".join(
            ".".join(str(p)[:40] for p in e.get("loc", ())) + f" ({e.get('msg', 'invalid')})"
            for e in exc.errors()[:5]
        )
        return error(400, f"invalid request: {problems}")

    app.openapi = lambda: contract(app)  # type: ignore[method-assign]

    app.add_middleware(DeclaredBodyLimit)
    # Inside Starlette's last-resort handler, which would re-raise for a traceback.
    app.add_middleware(ContainErrorsMiddleware, respond=internal_error)
    app.add_middleware(HeadAsGetMiddleware)
    app.add_middleware(SecurityHeadersMiddleware)
    return app
