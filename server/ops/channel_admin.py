"""The official channel's admin side (docs/OFFICIAL_CHANNEL.md): the retention
sweep that `lanterne-server expire` (daily, deploy/lanterne-expire.timer) and
the start of `lanterne-server run` call, and the acknowledgement texts."""

from __future__ import annotations

from server.domain.channel import ACK_TEMPLATE_META, Retention
from server.domain.source_lifecycle import SourceLifecycle
from server.languages import LANGUAGES
from server.settings import Settings
from server.store import wiring

MAX_TEMPLATE_CHARS = 4000


class TemplateRefused(ValueError):
    """An acknowledgement text the channel cannot use; the message says why."""


def expire(settings: Settings, today: str) -> int:
    """Delete the sources whose expiry day has come, on the configured rows and
    objects, through the one deletion path; how many were deleted."""
    stores = wiring.configured_api_stores(settings)
    lifecycle = SourceLifecycle(stores.sources, stores.objects)
    return Retention(stores.sources, lifecycle, settings.channel).expire_due(today)


def set_ack_template(rows: wiring.AdminJournalistStore, language: str, text: str | None) -> None:
    """Record the acknowledgement text for ``language`` (None: back to the built-in one)."""
    if language not in LANGUAGES:
        raise TemplateRefused(f"--lang must be one of {', '.join(LANGUAGES)}")
    if text is None:
        rows.set_meta_value(ACK_TEMPLATE_META + language, "")
        return
    text = text.strip()
    if not text:
        raise TemplateRefused("the text is empty")
    if len(text) > MAX_TEMPLATE_CHARS:
        raise TemplateRefused(f"the text is over {MAX_TEMPLATE_CHARS} characters")
    if any(ord(c) < 32 and c not in "\n\t" for c in text):
        raise TemplateRefused("the text holds control characters")
    rows.set_meta_value(ACK_TEMPLATE_META + language, text)
