"""What the routes need, built once by ``create_app`` and passed by dependency."""

from __future__ import annotations

from dataclasses import dataclass

import envelope
from server.domain.sessions import FormTokens, LoginThrottle, SessionStore
from server.domain.sources import Clock, SourceService
from server.settings import Settings
from server.store.db import Database
from server.store.disk_reserve import DiskReserve
from server.store.objects import ObjectStore
from server.web.i18n import Pages


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
                recipient=envelope.X25519Recipient(row.encryption_key),
                signing_key=row.signing_key,
            )
            for row in self.db.journalists()
        ]
