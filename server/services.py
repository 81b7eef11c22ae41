"""What the routes need, built once by ``create_app`` and passed by dependency."""

from __future__ import annotations

from dataclasses import dataclass

import envelope
from server.db import Database
from server.disk_reserve import DiskReserve
from server.i18n import Pages
from server.sessions import FormTokens, LoginThrottle, SessionStore
from server.settings import Settings
from server.sources import Clock, SourceService
from server.storage import ObjectStore


@dataclass
class Services:
    settings: Settings
    db: Database
    store: ObjectStore
    sources: SourceService
    sessions: SessionStore
    throttle: LoginThrottle
    form_tokens: FormTokens
    pages: Pages
    clock: Clock
    disk: DiskReserve

    def journalist_keys(self) -> list[envelope.PublicKey]:
        """Read each time, so keys an admin adds take effect without a restart."""
        return [
            envelope.PublicKey(
                name=row.name,
                recipient=envelope.Recipient(row.encryption_key),
                signing_key=row.signing_key,
            )
            for row in self.db.journalists()
        ]
