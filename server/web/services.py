"""What the routes need, built once by ``create_app`` and passed by dependency."""

from __future__ import annotations

from dataclasses import dataclass

import envelope
from server.domain.clock import Clock
from server.domain.sessions import FormTokens, LoginThrottle, SessionStore
from server.domain.sources import SourceService
from server.settings import Settings
from server.store.protocols import DiskSpace, JournalistStore, ObjectStore
from server.web.i18n import Pages


@dataclass
class Services:
    settings: Settings
    journalists: JournalistStore
    store: ObjectStore
    sources: SourceService
    sessions: SessionStore
    throttle: LoginThrottle
    form_tokens: FormTokens
    pages: Pages
    clock: Clock
    disk: DiskSpace

    def journalist_keys(self) -> list[envelope.PublicKey]:
        """Read each time, so keys an admin adds take effect without a restart."""
        return [
            envelope.PublicKey(
                name=row.name,
                recipient=envelope.X25519Recipient(row.encryption_key),
                signing_key=row.signing_key,
            )
            for row in self.journalists.journalists()
        ]
