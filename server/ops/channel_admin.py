"""The official channel's admin side (docs/OFFICIAL_CHANNEL.md): the retention
sweep that `lanterne-server expire` (daily, deploy/lanterne-expire.timer) and
the start of `lanterne-server run` call, and the acknowledgement texts."""

from __future__ import annotations

import json
from typing import Any

from server.domain.channel import DESK_CHANNEL_META, Channels, Retention, ack_template_key
from server.domain.source_lifecycle import SourceLifecycle
from server.languages import LANGUAGES
from server.settings import CHANNEL_KEYS, ConfigError, Settings, channel_with
from server.store import wiring

MAX_TEMPLATE_CHARS = 4000


class TemplateRefused(ValueError):
    """An acknowledgement text the channel cannot use; the message says why."""


def expire(settings: Settings, today: str) -> int:
    """Delete the sources whose expiry day has come, on the configured rows and
    objects, through the one deletion path; how many were deleted."""
    stores = wiring.configured_api_stores(settings)
    lifecycle = SourceLifecycle(stores.sources, stores.objects)
    channels = Channels(settings.channel, stores.journalists)
    return Retention(stores.sources, lifecycle, channels).expire_due(today)


def retention_on(settings: Settings, rows: wiring.AdminJournalistStore) -> bool:
    """Whether the instance or any desk deletes sources after a period."""
    return Channels(settings.channel, rows).any_retention()


class DeskUnknown(ValueError):
    """No desk of that name (``lanterne-server desks list``)."""


def _check_desk(rows: wiring.AdminJournalistStore, desk: str) -> None:
    if desk not in {d.name for d in rows.desks()}:
        raise DeskUnknown(f"no desk named {desk!r} (lanterne-server desks list)")


def set_desk_channel(
    settings: Settings, rows: wiring.AdminJournalistStore, desk: str, changes: dict[str, Any]
) -> dict[str, Any]:
    """Add ``changes`` to the desk's overrides of ``[channel]`` (an empty dict of
    changes with ``reset``: none); checked like config.toml. The overrides now."""
    _check_desk(rows, desk)
    raw = rows.meta_value(DESK_CHANNEL_META + desk)
    current: dict[str, Any] = json.loads(raw) if raw else {}
    overrides = {**current, **changes}
    if set(overrides) - set(CHANNEL_KEYS):
        raise ConfigError(f"a desk's channel takes {', '.join(CHANNEL_KEYS)}")
    channel_with(settings.channel, overrides)  # ConfigError if it does not hold
    rows.set_meta_value(DESK_CHANNEL_META + desk, json.dumps(overrides, sort_keys=True))
    return overrides


def reset_desk_channel(rows: wiring.AdminJournalistStore, desk: str) -> None:
    rows.set_meta_value(DESK_CHANNEL_META + desk, "")


def set_ack_template(
    rows: wiring.AdminJournalistStore, language: str, text: str | None, desk: str | None = None
) -> None:
    """Record the acknowledgement text for ``language`` (None: back to the
    instance's, or the built-in one); ``desk``: that desk's own text."""
    if language not in LANGUAGES:
        raise TemplateRefused(f"--lang must be one of {', '.join(LANGUAGES)}")
    if desk is not None:
        try:
            _check_desk(rows, desk)
        except DeskUnknown as exc:
            raise TemplateRefused(str(exc)) from None
    key = ack_template_key(language, desk)
    if text is None:
        rows.set_meta_value(key, "")
        return
    text = text.strip()
    if not text:
        raise TemplateRefused("the text is empty")
    if len(text) > MAX_TEMPLATE_CHARS:
        raise TemplateRefused(f"the text is over {MAX_TEMPLATE_CHARS} characters")
    if any(ord(c) < 32 and c not in "\n\t" for c in text):
        raise TemplateRefused("the text holds control characters")
    rows.set_meta_value(key, text)
