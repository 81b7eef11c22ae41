"""What the routes need, built once by ``create_app`` and passed by dependency."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import envelope
from server.domain import key_directory, receipts
from server.domain.clock import Clock
from server.domain.sessions import FormTokens, LoginThrottle, SessionStore
from server.domain.sources import SourceService
from server.settings import Settings
from server.store.protocols import DeskRow, DiskSpace, JournalistStore, ObjectStore
from server.web.i18n import Pages

_log = logging.getLogger("lanterne.keys")
_MAX_RECEIVER = 200  # characters of a receipt's received-by (envelope/SPEC.md §12.1)


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
    # The instance secret the receipt key derives from (server/domain/receipts.py).
    receipt_secret: bytes = b""

    def receiver_name(self, source_id: str) -> str:
        """Who a source's submissions go to, as a receipt names it: the
        organisation, and the source's desk (its title in the instance's
        default language) when it has one."""
        name = self.settings.organisation
        desk = self.sources.rows.desk_of(source_id)
        if desk is None:
            return name
        for row in self.journalists.desks():
            if row.name == desk:
                lang = self.settings.default_language
                title = row.titles.get(lang) or next(iter(row.titles.values()), desk)
                full = f"{name} — {' '.join(title.split())}"
                return full if len(full) <= _MAX_RECEIVER else name
        return name

    def make_receipt(self, source_id: str, day: str, object_ids: list[str]) -> str | None:
        """A signed receipt for a recorded submission, or None if the instance
        has no certified receipt key (or cannot read its objects back now)."""
        if not self.receipt_secret:
            return None
        try:
            return receipts.make_receipt(
                self.journalists,
                self.receipt_secret,
                self.store,
                received_by=self.receiver_name(source_id),
                day=day,
                object_ids=object_ids,
            )
        except Exception as exc:
            # The submission is recorded: a receipt that cannot be made (an object
            # unreadable, the database gone for a moment) must never turn that
            # into an error page. Only the error's type is logged.
            _log.warning("no receipt for a submission (%s)", type(exc).__name__)
            return None

    def journalist_keys(self) -> list[envelope.PublicKey]:
        """Read each time, so keys an admin adds take effect without a restart.

        With a newsroom key recorded, only the keys of the signed directory, and
        none at all if it does not verify (the pages then say that nothing can be
        received); on an unsigned instance, the registered journalists."""
        try:
            return key_directory.keys_to_encrypt_to(self.journalists)
        except key_directory.DirectoryUnusable as exc:
            _log.error("refusing to encrypt: %s", exc)
            return []

    def desk_keys(self, desk: str | None) -> list[envelope.PublicKey]:
        """What is sent to ``desk`` is encrypted to these keys only (none: refuse)."""
        try:
            return key_directory.desk_keys(self.journalists, desk)
        except key_directory.DirectoryUnusable as exc:
            _log.error("refusing to encrypt: %s", exc)
            return []

    def offered_desks(self) -> list[DeskRow]:
        """The desks a new source chooses from (none: the whole newsroom, as before)."""
        try:
            return key_directory.offered_desks(self.journalists)
        except key_directory.DirectoryUnusable:
            return []

    def newsroom_fingerprint(self) -> str | None:
        """Shown to sources, to compare with the one the newsroom publishes elsewhere."""
        try:
            key = key_directory.newsroom_key(self.journalists)
        except key_directory.DirectoryUnusable:
            return None
        return envelope.newsroom_fingerprint(key) if key is not None else None

    def signed_directory(self) -> str | None:
        try:
            return key_directory.signed_document(self.journalists)
        except key_directory.DirectoryUnusable:
            return None

    def directory_pin(self) -> tuple[str, int] | None:
        """What the submit page gives its script to check the directory with: the
        newsroom key and the serial now in force (nothing older is accepted)."""
        try:
            directory = key_directory.current(self.journalists)
        except key_directory.DirectoryUnusable:
            return None
        if directory is None:
            return None
        return key_directory.encoded_key(directory.newsroom_key), directory.serial
