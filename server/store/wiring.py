"""The default stores: SQLite and files under the data directory, built from the
settings. The app factories (``server.web.app.create_app``,
``server.web.journalist_api.create_journalist_app``) call ``sqlite_stores`` and
``sqlite_api_stores`` when they are given no stores; tests and a second backend pass their own.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from server.settings import Settings
from server.store import file_times
from server.store.db import Database
from server.store.disk_reserve import DiskReserve
from server.store.ephemeral import SqliteEphemeralStore
from server.store.newsroom import SqliteNewsroomStore
from server.store.objects import ObjectStore
from server.store.protocols import (
    DiskSpace,
    EphemeralStore,
    JournalistStore,
    NewsroomStore,
    SourceStore,
    UploadStore,
)
from server.store.protocols import ObjectStore as ObjectStoreProtocol
from server.store.sources import SqliteSourceStore
from server.store.uploads import UploadPolicy
from server.store.uploads import UploadStore as FileUploadStore

if TYPE_CHECKING:
    from server.store.s3_objects import S3ObjectStore

    def _s3_objects_are_an_object_store(store: S3ObjectStore) -> ObjectStoreProtocol:
        """mypy checks here that the S3 store keeps to the Protocol (not wired yet)."""
        return store


@dataclass
class ApiStores:
    """What the journalist API keeps, each behind its Protocol (server/store/protocols.py)."""

    journalists: JournalistStore
    sources: SourceStore
    newsroom: NewsroomStore
    objects: ObjectStoreProtocol
    # Sessions, throttles, tokens: shared by every instance (None: the data
    # directory's, ``ephemeral_store``).
    ephemeral: EphemeralStore | None = field(default=None, kw_only=True)


@dataclass
class Stores(ApiStores):
    """What the source interface keeps: the API's stores, uploads in progress,
    the disk reserve and the instance's secrets."""

    uploads: UploadStore
    disk: DiskSpace
    instance_secrets: bytes  # the JSON ``lanterne-server init`` wrote (domain: InstanceSecrets)


EPHEMERAL_FILE = "ephemeral.sqlite"


def ephemeral_store(
    settings: Settings, *, wall_clock: Callable[[], float] | None = None
) -> EphemeralStore:
    """The short-lived state every instance on this machine shares: one SQLite
    file in the data directory (server/store/ephemeral.py)."""
    store = SqliteEphemeralStore(settings.data_dir / EPHEMERAL_FILE, wall_clock or time.time)
    store.prepare()
    return store


def sqlite_api_stores(settings: Settings) -> ApiStores:
    """The data directory's database and object files, for the journalist API."""
    db = Database(settings.database_path)
    db.hold_open()  # reads go on when the disk is full (server/store/db.py)
    return ApiStores(
        journalists=db,
        sources=SqliteSourceStore(db),
        newsroom=SqliteNewsroomStore(db),
        objects=ObjectStore(settings.objects_dir),
    )


def sqlite_stores(settings: Settings, *, wall_clock: Callable[[], float] | None = None) -> Stores:
    """The data directory's database and files. ``wall_clock`` (seconds since the
    epoch) drives the expiry of uploads in progress; tests pass their own."""
    db = Database(settings.database_path)
    db.hold_open()  # reads go on when the disk is full (server/store/db.py)
    secrets = file_times.read_bytes(settings.secrets_path)
    # One reserve for both paths: the no-JS form and resumable uploads.
    disk = DiskReserve(settings.data_dir, settings.uploads.disk_reserve_bytes)
    # What instances on this machine share: sessions, tokens, upload activity.
    ephemeral = ephemeral_store(settings, wall_clock=wall_clock)
    uploads = FileUploadStore(
        db,
        settings.uploads_dir,
        UploadPolicy.from_settings(settings),
        wall_clock or time.time,
        disk=disk,
        activity=ephemeral,
    )
    uploads.prepare()
    return Stores(
        journalists=db,
        sources=SqliteSourceStore(db),
        newsroom=SqliteNewsroomStore(db),
        objects=ObjectStore(settings.objects_dir),
        uploads=uploads,
        disk=disk,
        instance_secrets=secrets,
        ephemeral=ephemeral,
    )
