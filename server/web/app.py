"""``create_app(settings)``: the source interface as a FastAPI app.

Everything the routes use (database, object store, clock, sessions) is built
here from ``settings`` or passed in, and hung on ``app.state``: nothing lives
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

from server.domain.sessions import FormTokens, KdfQueue, LoginThrottle, SessionStore
from server.domain.source_lifecycle import SourceLifecycle
from server.domain.sources import Clock, InstanceSecrets, KeyDeriver, SourceService, SystemClock
from server.settings import Settings
from server.store.db import Database
from server.store.disk_reserve import DiskReserve
from server.store.objects import ObjectStore
from server.store.uploads import OwnerKeys, UploadPolicy, UploadStore
from server.web import error_pages
from server.web.assets import Assets
from server.web.contain_errors import ContainErrorsMiddleware
from server.web.head_requests import HeadAsGetMiddleware
from server.web.i18n import Pages
from server.web.routes import account, assets, commit, pages, submit, tus
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
) -> FastAPI:
    """``clock`` drives sessions and dates; ``wall_clock`` (seconds since the
    epoch) the expiry of uploads in progress. Both are seams for tests."""
    quiet_logging()
    clock = clock or SystemClock()
    db = Database(settings.database_path)
    db.hold_open()  # reads go on when the disk is full (server/db.py)
    store = ObjectStore(settings.objects_dir)
    secrets = InstanceSecrets.load(settings.secrets_path)
    deriver = KeyDeriver(
        secrets, settings.argon2_opslimit, settings.argon2_memlimit, settings.max_parallel_kdf
    )
    sessions = SessionStore(clock, settings.session_idle_seconds, settings.max_sessions)
    lifecycle = SourceLifecycle(db, store, end_sessions=sessions.end_source)
    services = Services(
        settings=settings,
        db=db,
        store=store,
        sources=SourceService(db, store, deriver, lifecycle),
        sessions=sessions,
        throttle=LoginThrottle(
            clock,
            settings.login_failures_per_session,
            KdfQueue(settings.max_parallel_kdf, settings.max_waiting_logins),
        ),
        form_tokens=FormTokens(secrets.login_key, wall_clock or time.time),
        pages=Pages(),
        clock=clock,
        # One reserve for both paths: the no-JS form and resumable uploads.
        disk=DiskReserve(settings.data_dir, settings.uploads.disk_reserve_bytes),
    )
    uploads = UploadStore(
        db,
        settings.uploads_dir,
        UploadPolicy.from_settings(settings),
        wall_clock or time.time,
        disk=services.disk,
    )
    uploads.prepare()
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    app.state.services = services
    app.state.uploads = uploads
    app.state.upload_owners = OwnerKeys(secrets.login_key)
    app.include_router(pages.router)
    app.include_router(submit.router)
    app.include_router(account.router)
    app.include_router(commit.router)
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
