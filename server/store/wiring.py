"""The default stores, built from the settings. The app factories
(``server.web.app.create_app``, ``server.web.journalist_api.create_journalist_app``)
call ``configured_stores`` and ``configured_api_stores`` when they are given no
stores; tests pass their own.

Without ``[database]``/``[objects]`` in config.toml: SQLite and files under the
data directory (``sqlite_stores``). With ``[database]``, the journalists',
sources' and newsroom's rows are in PostgreSQL; with ``[objects]``, the
ciphertext is in the S3-compatible bucket (docs/SCALE_OUT.md); with both,
uploads in progress are rows and S3 parts too (``shared_upload_store``). The
instance's secrets stay in the data directory.
psycopg and boto3 are imported only when config.toml names them.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, TypeVar

from server.settings import Settings
from server.store import file_times
from server.store.db import Database
from server.store.disk_reserve import DiskReserve
from server.store.ephemeral import SqliteEphemeralStore
from server.store.newsroom import SqliteNewsroomStore
from server.store.objects import ObjectStore
from server.store.protocols import (
    DeskAdmin,
    DigestStore,
    DiskSpace,
    EphemeralStore,
    JournalistStore,
    NewsroomStore,
    ObjectRow,
    SourceStore,
    UploadStore,
)
from server.store.protocols import ObjectStore as ObjectStoreProtocol
from server.store.sources import SqliteSourceStore
from server.store.uploads import UploadPolicy
from server.store.uploads import UploadStore as FileUploadStore

if TYPE_CHECKING:
    from server.store.postgres import PostgresDatabase
    from server.store.shared_uploads import SharedUploadStore


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


ApiStoresT = TypeVar("ApiStoresT", bound=ApiStores)

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


SPOOL_DIR = "spool"  # the S3 store's unnamed part files (server/store/s3_objects.py)

# One pool per process and database URL: the source interface and the journalist
# API served by one process share it.
_pools: dict[str, PostgresDatabase] = {}


def postgres_database(settings: Settings) -> PostgresDatabase | None:
    """The open pool to ``[database]``, or None without it. The password comes
    from libpq (``PGPASSWORD``, the password file), never from config.toml."""
    if settings.database is None:
        return None
    from server.store.postgres import PostgresDatabase

    pg = _pools.get(settings.database.url)
    if pg is None:
        pg = PostgresDatabase(settings.database.url, max_size=settings.database.pool_size)
        pg.open()
        _pools[settings.database.url] = pg
    return pg


class CollectedObjectStore(ObjectStoreProtocol, Protocol):
    """An object store whose leftovers ``lanterne-server run`` removes at start."""

    def collect_garbage(self, known: set[str]) -> int: ...


def object_store(
    settings: Settings, environ: Mapping[str, str] | None = None
) -> CollectedObjectStore:
    """The bucket of ``[objects]`` (credentials from ``environ``, the process's
    environment by default), else the data directory's objects."""
    if settings.objects is None:
        return ObjectStore(settings.objects_dir)
    from server.store.s3_objects import S3ObjectStore, connect

    location = settings.objects.location(os.environ if environ is None else environ)
    store = S3ObjectStore(connect(location), location.bucket, settings.data_dir / SPOOL_DIR)
    store.create_dirs()
    return store


class AdminJournalistStore(JournalistStore, DigestStore, DeskAdmin, Protocol):
    """What the admin commands change besides what the web layer reads: both the
    SQLite ``Database`` and ``PostgresJournalistStore`` are one."""

    def add_journalist(
        self,
        name: str,
        encryption_key: bytes,
        signing_key: bytes,
        role: str,
        day: str,
        *,
        hybrid_key: bytes | None = None,
    ) -> None: ...

    def remove_journalist(self, name: str) -> bool: ...

    def set_meta_value(self, key: str, value: str) -> None: ...

    def known_object_ids(self) -> set[str]: ...


def configured_journalists(settings: Settings) -> AdminJournalistStore:
    """The journalists and instance values (the key directory, onions) where
    config.toml puts the rows: for the admin commands."""
    pg = postgres_database(settings)
    if pg is None:
        return Database(settings.database_path)
    from server.store.postgres_stores import PostgresJournalistStore

    return PostgresJournalistStore(pg)


def configured_submissions(settings: Settings) -> list[tuple[str, str, list[ObjectRow]]]:
    """Every complete submission (id, day received, objects) where config.toml
    puts the rows: for ``lanterne-server list``."""
    pg = postgres_database(settings)
    if pg is None:
        return Database(settings.database_path).submissions()
    from server.store.postgres_stores import PostgresNewsroomStore

    newsroom = PostgresNewsroomStore(pg)
    return [
        submission
        for summary in newsroom.source_summaries()
        for submission in newsroom.items_of(summary.id).submissions
    ]


def _on_configured_backend(stores: ApiStoresT, settings: Settings) -> ApiStoresT:
    pg = postgres_database(settings)
    changes: dict[str, object] = {}
    if pg is not None:
        from server.store.postgres_ephemeral import PostgresEphemeralStore
        from server.store.postgres_stores import (
            PostgresJournalistStore,
            PostgresNewsroomStore,
            PostgresSourceStore,
        )

        # Sessions, throttles and tokens where every machine finds them (UNLOGGED).
        ephemeral = PostgresEphemeralStore(pg)
        ephemeral.prepare()
        changes.update(
            journalists=PostgresJournalistStore(pg),
            sources=PostgresSourceStore(pg),
            newsroom=PostgresNewsroomStore(pg),
            ephemeral=ephemeral,
        )
    if settings.objects is not None:
        changes["objects"] = object_store(settings)
    return dataclasses.replace(stores, **changes) if changes else stores  # type: ignore[arg-type]


def configured_api_stores(settings: Settings) -> ApiStores:
    """The journalist API's stores on the backend config.toml names."""
    return _on_configured_backend(sqlite_api_stores(settings), settings)


def configured_stores(
    settings: Settings, *, wall_clock: Callable[[], float] | None = None
) -> Stores:
    """The source interface's stores on the backend config.toml names: with both
    ``[database]`` and ``[objects]``, uploads in progress are shared too."""
    stores = _on_configured_backend(sqlite_stores(settings, wall_clock=wall_clock), settings)
    shared = shared_upload_store(
        settings, stores.objects, stores.ephemeral, disk=stores.disk, wall_clock=wall_clock
    )
    return stores if shared is None else dataclasses.replace(stores, uploads=shared)


def shared_upload_store(
    settings: Settings,
    objects: ObjectStoreProtocol | None = None,
    activity: EphemeralStore | None = None,
    *,
    disk: DiskSpace | None = None,
    wall_clock: Callable[[], float] | None = None,
) -> SharedUploadStore | None:
    """Uploads in progress as PostgreSQL rows and S3 parts, when config.toml names
    both ``[database]`` and ``[objects]`` (server/store/shared_uploads.py); else None:
    the data directory's files."""
    if settings.database is None or settings.objects is None:
        return None
    pg = postgres_database(settings)
    assert pg is not None
    from server.store.s3_objects import S3ObjectStore
    from server.store.shared_uploads import SharedUploadStore

    bucket = objects if objects is not None else object_store(settings)
    assert isinstance(bucket, S3ObjectStore)
    store = SharedUploadStore(
        pg,
        bucket,
        UploadPolicy.from_settings(settings),
        wall_clock or time.time,
        disk=disk or DiskReserve(settings.data_dir, settings.uploads.disk_reserve_bytes),
        activity=activity,
    )
    store.prepare()
    return store
