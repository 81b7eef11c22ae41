"""Building the journalist API app: services, error handling, headers."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.types import Scope

from server.domain.clock import Clock, SystemClock
from server.domain.newsroom import Newsroom
from server.domain.source_lifecycle import SourceLifecycle
from server.settings import Settings
from server.store.wiring import ApiStores, sqlite_api_stores
from server.web.app import quiet_logging
from server.web.contain_errors import ContainErrorsMiddleware
from server.web.head_requests import HeadAsGetMiddleware
from server.web.journalist_api import routes
from server.web.journalist_api.auth import Authenticator, ServedHosts
from server.web.security_headers import SecurityHeadersMiddleware

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
    422: "bad_request",
}


def error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": _CODES.get(status, "bad_request"), "message": message}, status)


def internal_error(scope: Scope) -> Response:
    return JSONResponse({"error": "internal", "message": "internal error"}, 500)


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
        stores = sqlite_api_stores(settings)
    newsroom = Newsroom(
        stores.newsroom, stores.objects, SourceLifecycle(stores.sources, stores.objects)
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
        auth=Authenticator(clock or SystemClock()),
        clock=clock or SystemClock(),
        hosts=ServedHosts(settings.journalist_hosts, listen),
    )
    app.include_router(routes.router, prefix=API_PREFIX)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        response = error(exc.status_code, str(exc.detail))
        if isinstance(exc, routes.Unauthorized):
            # Why a login or token was refused, for the CLI's message (auth.Refusal).
            response = JSONResponse(
                {"error": "unauthorized", "reason": exc.reason, "message": str(exc.detail)}, 401
            )
        return response

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        # Field names only: never echo the submitted values back.
        where = ", ".join(".".join(str(p) for p in e.get("loc", ())) for e in exc.errors())
        return error(400, f"invalid request: {where}")

    # Inside Starlette's last-resort handler, which would re-raise for a traceback.
    app.add_middleware(ContainErrorsMiddleware, respond=internal_error)
    app.add_middleware(HeadAsGetMiddleware)
    app.add_middleware(SecurityHeadersMiddleware)
    return app
