"""An official reporting channel's duties, in days (issue 16; docs/OFFICIAL_CHANNEL.md).

EU Directive 2019/1937 asks a reporting channel to acknowledge a report
within 7 days of receipt and to give feedback within 3 months of the
acknowledgement, or of the end of those 7 days when none was sent (Art. 9(1)
(b) and (f)); an external authority may take 6 months in duly justified cases
(Art. 11(2)(d)); reports are kept no longer than necessary (Art. 18).

* **Deadlines** are computed, never stored: from the day the source's first
  submission was received (``created_on``), the day the first
  acknowledgement and feedback were sent (recorded with the reply that was
  them, ``ReplyPurpose``), and the channel's periods (``ChannelSettings``,
  or a source's own feedback period). A day is a deadline's last day: it is
  overdue from the next one.
* **Retention**: a source with no activity (a submission, a login) for
  ``retention_days`` is deleted, through the one deletion path
  (``SourceLifecycle.expire``). The day is shifted by a random number of
  days in ``[-EXPIRY_SHIFT_DAYS, +EXPIRY_SHIFT_DAYS]``, drawn once per source,
  so that the day a source disappears does not give the day of its last
  activity (nor its weekday: the window is two weeks). A journalist can keep
  a source longer (``kept_until``); the shift applies to that day too.
  Changing ``retention_days`` in config.toml applies to every source at once.

Nothing here reads a clock: callers pass today's day (``Clock.today``).
"""

from __future__ import annotations

import calendar
import contextlib
import dataclasses
import datetime
import json
from collections.abc import Callable
from dataclasses import dataclass

from server.domain.source_lifecycle import EXPIRY_SHIFT_DAYS, SourceLifecycle, draw_shift
from server.settings import ChannelSettings, ConfigError, channel_with
from server.store.protocols import (
    JournalistStore,
    SourceNotFound,
    SourceStore,
    SourceSummary,
)

__all__ = [
    "DEFAULT_ACK_TEMPLATE",
    "EXPIRY_SHIFT_DAYS",
    "MAX_KEEP_DAYS",
    "Channels",
    "Deadlines",
    "Retention",
    "ack_template",
    "add_days",
    "add_months",
    "deadlines",
    "draw_shift",
    "expiry_day",
]

# EXPIRY_SHIFT_DAYS (7, in source_lifecycle): two weeks of possible expiry days,
# so the weekday and the exact day of the last activity are hidden from whoever
# sees only when a source disappears, and a source is kept at most a week
# beyond the rule (docs/OFFICIAL_CHANNEL.md).
MAX_KEEP_DAYS = 10 * 366  # `lanterne keep --days`: ten years at most at a time


def add_days(day: str, days: int) -> str:
    return (datetime.date.fromisoformat(day) + datetime.timedelta(days=days)).isoformat()


def add_months(day: str, months: int) -> str:
    """The same day ``months`` later, or the month's last day when it has fewer
    (31 January + 1 month = 28 or 29 February): never later than the law's period."""
    start = datetime.date.fromisoformat(day)
    index = start.month - 1 + months
    year, month = start.year + index // 12, index % 12 + 1
    last = calendar.monthrange(year, month)[1]
    return datetime.date(year, month, min(start.day, last)).isoformat()


@dataclass(frozen=True)
class Deadlines:
    """A source's due days; None where nothing is due (not an official channel,
    the duty done, or the source's account deleted: nothing can reach them)."""

    acknowledge_by: str | None
    feedback_by: str | None


def deadlines(source: SourceSummary, channel: ChannelSettings) -> Deadlines:
    if not channel.official or not source.created_on:
        return Deadlines(None, None)
    ack_by = add_days(source.created_on, channel.acknowledge_days)
    # Art. 9(1)(f): from the acknowledgement, or from the end of the 7 days.
    start = source.acknowledged_on or ack_by
    feedback_by = add_months(start, source.feedback_months or channel.feedback_months)
    open_ack = source.acknowledged_on is None and not source.account_deleted
    open_feedback = source.feedback_on is None and not source.account_deleted
    return Deadlines(ack_by if open_ack else None, feedback_by if open_feedback else None)


def expiry_day(
    last_active_on: str, kept_until: str | None, shift: int | None, retention_days: int
) -> str | None:
    """The day the source is deleted on (None: retention is off). A source
    whose shift is not drawn yet counts as unshifted (it is drawn at the sweep)."""
    if retention_days <= 0:
        return None
    base = add_days(last_active_on, retention_days)
    if kept_until is not None and kept_until > base:
        base = kept_until
    return add_days(base, shift or 0)


def N_(message: str) -> str:
    """Marks a message for the catalogues (pybabel); translated where it is used."""
    return message


# What `lanterne ack` sends when the admin wrote no text for a language: plain,
# true of any report, and translated in every catalogue (server/locale). No
# period is named: the channel's own may differ from the Directive's.
DEFAULT_ACK_TEMPLATE = N_(
    "We have received your report, and this message confirms its receipt. It will be examined"
    " by the people in charge of this channel, who keep your identity confidential. We will"
    " tell you what action is taken, within the time the law sets. You can read our replies"
    " and send us more information at any time by logging in with your codename."
)
ACK_TEMPLATE_META = "ack_template:"  # + language code, in the instance values (meta)


def ack_template_key(language: str, desk: str | None = None) -> str:
    """The instance value holding the admin's text (``desk``: that desk's own)."""
    return ACK_TEMPLATE_META + (f"{desk}:" if desk else "") + language


def ack_template(
    journalists: JournalistStore,
    language: str,
    translate: Callable[[str], str],
    desk: str | None = None,
) -> str:
    """The acknowledgement text in ``language``: the desk's (``lanterne-server
    channel ack-template --desk``), else the instance's, else the built-in one
    through ``translate`` (that language's catalogue)."""
    keys = [ack_template_key(language, desk)] if desk else []
    for key in [*keys, ack_template_key(language)]:
        text = journalists.meta_value(key)
        if text:
            return text
    return translate(DEFAULT_ACK_TEMPLATE)


DESK_CHANNEL_META = "channel_desk:"  # + desk name: that desk's [channel] overrides, JSON


class Channels:
    """The instance's ``[channel]`` and each desk's overrides (``lanterne-server
    channel desk``), kept as instance values: a desk may be an official channel
    on a newsroom's instance, or keep its reports for another period."""

    def __init__(self, base: ChannelSettings, journalists: JournalistStore | None = None) -> None:
        self.base = base
        self._journalists = journalists

    def by_desk(self) -> dict[str, ChannelSettings]:
        """Each desk with overrides, and what applies to it (read now: the admin
        commands change them from another process)."""
        if self._journalists is None:
            return {}
        found: dict[str, ChannelSettings] = {}
        for desk in self._journalists.desks():
            raw = self._journalists.meta_value(DESK_CHANNEL_META + desk.name)
            if not raw:
                continue
            # Written checked by the admin command; a value damaged since is ignored
            # (the instance's settings apply) rather than stopping every listing.
            with contextlib.suppress(ValueError, TypeError, ConfigError):
                found[desk.name] = channel_with(self.base, json.loads(raw))
        return found

    def lookup(self) -> Callable[[str | None], ChannelSettings]:
        """What applies to a source of a desk (None: the whole newsroom)."""
        desks = self.by_desk()
        return lambda desk: desks.get(desk, self.base) if desk else self.base

    def any_retention(self) -> bool:
        return self.base.retention_days > 0 or any(
            c.retention_days > 0 for c in self.by_desk().values()
        )


class Retention:
    """Deletes the sources whose expiry day has come (``expire_due``): what
    ``lanterne-server expire`` and the start of ``run`` call."""

    def __init__(
        self,
        rows: SourceStore,
        lifecycle: SourceLifecycle,
        channel: ChannelSettings | Channels,
        draw: Callable[[], int] = draw_shift,
    ) -> None:
        self.rows = rows
        self.lifecycle = lifecycle
        self.channels = channel if isinstance(channel, Channels) else Channels(channel)
        self._draw = draw

    def expire_due(self, today: str) -> int:
        """Delete every source whose expiry day is ``today`` or before; how many.

        A source with no shift yet (created before this release, or a crash
        between its first submission and the draw) gets one first."""
        channel_of = self.channels.lookup()
        deleted = 0
        for facts in self.rows.retention_facts():
            retention_days = channel_of(facts.desk).retention_days
            if retention_days <= 0:
                continue
            shift = facts.expiry_shift
            if shift is None:
                shift = self._draw()
                self.rows.set_expiry_shift(facts.id, shift)
                facts = dataclasses.replace(facts, expiry_shift=shift)
            day = expiry_day(facts.last_active_on, facts.kept_until, shift, retention_days)
            if day is not None and day <= today:
                try:
                    self.lifecycle.expire(facts.id, facts)
                except SourceNotFound:
                    # Deleted meanwhile (a journalist, another instance), or active
                    # or kept since the read: decided again at the next sweep.
                    continue
                deleted += 1
        return deleted
