"""``create_app(settings)``: the source interface as a FastAPI app.

Everything the routes use (the stores, clock, sessions) is built here from
``settings`` or passed in, and hung on ``app.state``: nothing lives
at module level, so tests, and the journalist API's app on its own port
(``server.web.journalist_api``), build their own.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from server.domain.clock import Clock, SystemClock
from server.domain.sessions import FormTokens, KdfQueue, LoginThrottle, SessionStore
from server.domain.source_lifecycle import SourceLifecycle
from server.domain.sources import InstanceSecrets, KeyDeriver, SourceService
from server.domain.uploads import OwnerKeys
from server.settings import Settings
from server.store.wiring import Stores, configured_stores, ephemeral_store
from server.web import error_pages
from server.web.assets import Assets
from server.web.contain_errors import ContainErrorsMiddleware
from server.web.head_requests import HeadAsGetMiddleware
from server.web.i18n import Pages
from server.web.routes import account, assets, commit, pages, receipt, submit, tus
from server.web.security_headers import SecurityHeadersMiddleware
from server.web.services import Services

STATIC_DIR = Path(__file__).parents[1] / "static"  # resources stay at server/
SILENT = logging.CRITICAL + 10


def quiet_logging() -> None:
    """No log line may carry a request body, an address or a user agent.

    python-multipart logs parse errors quoting the offending body bytes, so its
    logger is switched off; uvicorn's access log is off where uvicorn is started.
    """
    for name in ("python_multipart", "python_multipart.multipart", "multipart"):
        logger = logging.getLogger(name)
        # A level above CRITICAL, not just ``disabled``: logging.config.dictConfig
        # (which uvicorn calls after this) re-enables existing loggers.
        logger.setLevel(SILENT)
        logger.propagate = False
        logger.disabled = True


def create_app(
    settings: Settings,
    *,
    clock: Clock | None = None,
    wall_clock: Callable[[], float] | None = None,
    stores: Stores | None = None,
) -> FastAPI:
    """``stores`` are what the app keeps (``configured_stores(settings)``, the
    backend config.toml names, if none are given); ``clock`` drives
    sessions and dates; ``wall_clock`` (seconds since the epoch) the form
    tokens and, for the default stores, the expiry of uploads in progress.
    All three are seams for tests and for another backend."""
    quiet_logging()
    clock = clock or SystemClock()
    if stores is None:
        stores = configured_stores(settings, wall_clock=wall_clock)
    secrets = InstanceSecrets.from_json(stores.instance_secrets, str(settings.secrets_path))
    deriver = KeyDeriver(
        secrets, settings.argon2_opslimit, settings.argon2_memlimit, settings.max_parallel_kdf
    )
    # Sessions live where every instance finds them (docs/SERVER_LAYERS.md).
    ephemeral = stores.ephemeral or ephemeral_store(settings, wall_clock=wall_clock)
    sessions = SessionStore(
        clock,
        settings.session_idle_seconds,
        settings.max_sessions,
        shared=ephemeral,
        instance_key=secrets.login_key,
        now=wall_clock or time.time,
    )
    sessions.sweep()
    lifecycle = SourceLifecycle(stores.sources, stores.objects, end_sessions=sessions.end_source)
    services = Services(
        settings=settings,
        journalists=stores.journalists,
        store=stores.objects,
        sources=SourceService(stores.sources, stores.objects, deriver, lifecycle),
        sessions=sessions,
        throttle=LoginThrottle(
            clock,
            settings.login_failures_per_session,
            KdfQueue(settings.max_parallel_kdf, settings.max_waiting_logins),
            sessions,
        ),
        form_tokens=FormTokens(secrets.login_key, wall_clock or time.time),
        pages=Pages(),
        clock=clock,
        # One reserve for both paths: the no-JS form and resumable uploads.
        disk=stores.disk,
        receipt_secret=secrets.login_key,
    )
    uploads = stores.uploads
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    app.state.services = services
    app.state.uploads = uploads
    app.state.upload_owners = OwnerKeys(secrets.login_key)
    app.include_router(pages.router)
    app.include_router(submit.router)
    app.include_router(account.router)
    app.include_router(commit.router)
    app.include_router(receipt.router)
    app.include_router(tus.router)
    assets.install(app, services.pages, Assets(STATIC_DIR))
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    error_pages.install(app)
    app.add_middleware(HeadAsGetMiddleware)
    # Added last, so outermost: headers go on every response, error pages included.
    app.add_middleware(ContainErrorsMiddleware, respond=error_pages.server_error)
    if settings.onion_location:
        from server.web.onion_location import OnionLocationMiddleware

        app.add_middleware(OnionLocationMiddleware, location=settings.onion_location)
    app.add_middleware(SecurityHeadersMiddleware)
    return app
