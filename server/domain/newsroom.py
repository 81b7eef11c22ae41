"""What journalists see and change: sources with their items, triage and notes.

Triage state and notes are the newsroom's, shared by every journalist (kept
by a ``NewsroomStore``: server/store/newsroom.py on SQLite); notes are
envelopes in the object store like everything else.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import envelope
from server.domain.channel import (
    MAX_KEEP_DAYS,
    Channels,
    Deadlines,
    add_days,
    deadlines,
    expiry_day,
)
from server.domain.source_lifecycle import SourceLifecycle
from server.settings import ChannelSettings
from server.store.protocols import (
    ItemKind,
    JournalistRow,
    JournalistStore,
    MoveConflict,
    NewsroomStore,
    ObjectStore,
    PendingObject,
    ReplyPurpose,
    SourceNotFound,
    SourceSummary,
    TriageRefused,
)

__all__ = [
    "Invalid",
    "MoveConflict",
    "Newsroom",
    "NotFound",
    "NotMember",
    "Reader",
    "SourceSummary",
    "reader_of",
]

TAG = re.compile(r"[A-Za-z0-9._-]{1,32}")
MAX_TAGS = 16


class NotFound(Exception):
    """No such source, submission, object or journalist."""


class Invalid(Exception):
    """A value the API does not accept (the message says which)."""


class NotMember(Exception):
    """The journalist is not in the desk a change names (the message says which)."""


@dataclass(frozen=True)
class Reader:
    """Which sources a journalist may see and change (docs/DESKS.md): those of
    their desks (``desks``; None for a journalist who receives every desk) and
    those of the whole newsroom (sources from before desks). Anything else is
    answered as if it did not exist."""

    desks: frozenset[str] | None

    def sees(self, desk: str | None) -> bool:
        return desk is None or self.desks is None or desk in self.desks


EVERY_DESK = Reader(None)


def reader_of(journalists: JournalistStore, row: JournalistRow) -> Reader:
    """The desks of a journalist, read at each request (the admin may change them)."""
    if row.all_desks:
        return EVERY_DESK
    return Reader(frozenset(d.name for d in journalists.desks() if row.name in d.members))


class Newsroom:
    """Reads for the journalists; every change of a source's life goes to
    ``self.lifecycle`` (server/domain/source_lifecycle.py). Each method takes
    the ``Reader`` it answers for: what is outside their desks is ``NotFound``."""

    def __init__(
        self,
        rows: NewsroomStore,
        store: ObjectStore,
        lifecycle: SourceLifecycle,
        channel: ChannelSettings | None = None,
        desks: JournalistStore | None = None,
    ) -> None:
        """``channel``: config.toml's ``[channel]``; ``desks``: where each desk's
        overrides are read (server/domain/channel.py, ``Channels``)."""
        self.rows = rows
        self.store = store
        self.lifecycle = lifecycle
        self.channels = Channels(channel or ChannelSettings(), desks)

    @property
    def channel(self) -> ChannelSettings:
        """The instance's own channel settings (a desk may override them)."""
        return self.channels.base

    # An official channel's days (server/domain/channel.py)

    def channel_of(self) -> Callable[[str | None], ChannelSettings]:
        """What applies to a desk's sources, read once for a listing."""
        return self.channels.lookup()

    def deadlines(self, source: SourceSummary, channel: ChannelSettings | None = None) -> Deadlines:
        return deadlines(source, channel or self.channel_of()(source.desk))

    def expires_on(
        self, source: SourceSummary, channel: ChannelSettings | None = None
    ) -> str | None:
        return expiry_day(
            source.last_activity,
            source.kept_until,
            source.expiry_shift,
            (channel or self.channel_of()(source.desk)).retention_days,
        )

    def keep(self, source_id: str, days: int, today: str) -> None:
        """Keep the source at least ``days`` from ``today`` (`lanterne keep`)."""
        if not 1 <= days <= MAX_KEEP_DAYS:
            raise Invalid(f"days: from 1 to {MAX_KEEP_DAYS}")
        self.source(source_id)
        try:
            self.lifecycle.rows.keep_until(source_id, add_days(today, days))
        except SourceNotFound:
            raise NotFound(source_id) from None

    def set_extended_feedback(self, source_id: str, extended: bool) -> None:
        """Give one source its channel's longer feedback period (an authority's
        justified case), or back to the channel's own."""
        source = self.source(source_id)
        channel = self.channel_of()(source.desk)
        months = channel.feedback_months_extended if extended else None
        if extended and not (channel.official and months):
            raise Invalid(
                "extended_feedback: this channel allows no longer feedback period"
                " ([channel] feedback_months_extended)"
            )
        try:
            self.lifecycle.rows.set_feedback_months(source_id, months)
        except SourceNotFound:
            raise NotFound(source_id) from None

    # Reading

    def sources(self, reader: Reader = EVERY_DESK) -> list[SourceSummary]:
        return [s for s in self.rows.source_summaries() if reader.sees(s.desk)]

    def source(self, source_id: str, reader: Reader = EVERY_DESK) -> SourceSummary:
        for s in self.sources(reader):
            if s.id == source_id:
                return s
        raise NotFound(source_id)

    def submission_source(self, submission_id: str, reader: Reader = EVERY_DESK) -> str:
        """The source of a submission the reader may see; ``NotFound`` otherwise."""
        found = self.rows.source_of_submission(submission_id)
        if found is None or not reader.sees(found[1]):
            raise NotFound(submission_id)
        return found[0]

    def items(self, source_id: str, reader: Reader = EVERY_DESK) -> dict[str, list[dict[str, Any]]]:
        """Submissions with their objects, replies and notes of one source."""
        self.source(source_id, reader)
        found = self.rows.items_of(source_id)
        submissions: list[dict[str, Any]] = [
            {
                "id": sid,
                "received_on": day,
                "objects": [{"id": o.id, "kind": o.kind, "size": o.size} for o in objects],
            }
            for sid, day, objects in found.submissions
        ]
        replies: list[dict[str, Any]] = [
            {"id": r.id, "object_id": r.object_id, "sent_on": r.day, "journalist": r.journalist}
            for r in found.replies
        ]
        notes: list[dict[str, Any]] = [
            {"id": n.id, "object_id": n.object_id, "written_on": n.day, "journalist": n.journalist}
            for n in found.notes
        ]
        for item in (*replies, *notes):
            item["size"] = self._object_size(item["object_id"])
        return {"submissions": submissions, "replies": replies, "notes": notes}

    def _object_size(self, object_id: str) -> int:
        try:
            return self.store.size(object_id)
        except (OSError, ValueError):
            return 0

    def object_is_known(self, object_id: str) -> bool:
        return self.rows.object_is_known(object_id)

    def object_size(self, object_id: str, reader: Reader = EVERY_DESK) -> int | None:
        """The length of an object a source or a journalist sent, or None (also
        for an object of a source outside the reader's desks)."""
        owner = self.rows.source_of_object(object_id)
        if owner is None or not reader.sees(owner[1]):
            return None
        try:
            return self.store.size(object_id)
        except (OSError, ValueError):
            return None

    # Changing

    def update_triage(
        self,
        source_id: str,
        *,
        seen: bool | None = None,
        starred: bool | None = None,
        tags: list[str] | None = None,
        add_tags: list[str] | None = None,
        remove_tags: list[str] | None = None,
        assignee: str | None = None,
        clear_assignee: bool = False,
        reader: Reader = EVERY_DESK,
    ) -> None:
        """Change triage state; tag additions and removals apply atomically, so two
        journalists tagging at once both keep their tags."""
        self.source(source_id, reader)
        for given in (tags, add_tags, remove_tags):
            if given is not None and not all(TAG.fullmatch(t) for t in given):
                raise Invalid("tags: each 1-32 letters, digits, '.', '-', '_'")
        try:
            self.rows.update_triage(
                source_id,
                seen=seen,
                starred=starred,
                tags=tags,
                add_tags=add_tags,
                remove_tags=remove_tags,
                assignee=assignee,
                clear_assignee=clear_assignee,
                max_tags=MAX_TAGS,
            )
        except TriageRefused as exc:
            if exc.what == "tags":
                raise Invalid(f"tags: at most {MAX_TAGS} per source") from None
            raise Invalid("assignee: no journalist has that name") from None

    def add_item(
        self,
        kind: ItemKind,
        source_id: str,
        body: bytes,
        journalist_id: int,
        day: str,
        purpose: ReplyPurpose | None = None,
    ) -> dict[str, str]:
        """Store a note or a reply (an envelope the server cannot read); a
        reply's ``purpose`` records the day of an acknowledgement or a feedback.

        ``SourceGone`` for a reply to a source who deleted their account."""
        try:
            item_id, object_id = self.lifecycle.add_item(
                kind, source_id, body, journalist_id, day, purpose
            )
        except SourceNotFound:
            raise NotFound(source_id) from None
        return {"id": item_id, "object_id": object_id}

    # Moving a source to another desk (docs/DESKS.md, "Moving a source")

    def replacement_limit(self, source_id: str, object_id: str, reader: Reader) -> int:
        """The largest envelope that may replace ``object_id``, an object of
        ``source_id`` the reader may see (``NotFound`` otherwise): an envelope of
        as many plaintext bytes as the old one has ciphertext bytes, with the
        largest header, is larger than any re-encryption of it."""
        owner = self.rows.source_of_object(object_id)
        if owner is None or owner[0] != source_id or not reader.sees(owner[1]):
            raise NotFound(object_id)
        try:
            return envelope.ciphertext_size(self.store.size(object_id))
        except (OSError, ValueError):
            raise NotFound(object_id) from None

    def new_object(self) -> PendingObject:
        """Where a replacement envelope is written as it arrives (listed nowhere
        until a move names it; removed at the next start if none does)."""
        return self.store.new_object()

    def move(
        self,
        source_id: str,
        desk: str,
        replacements: Mapping[str, str],
        reader: Reader,
        desks: Sequence[str],
    ) -> None:
        """Put the source in ``desk``, its objects replaced by the envelopes the
        mover re-encrypted on their machine (``old id -> new id``). The mover must
        see the source (``NotFound``) and belong to ``desk`` (``NotMember``);
        ``Invalid`` for an unknown desk or a replacement that was not uploaded;
        ``MoveConflict`` when the replacements are not exactly the source's
        objects. The old envelopes are deleted once the rows point to the new."""
        summary = self.source(source_id, reader)
        if desk not in desks:
            raise Invalid(f"desk: no desk named {desk}")
        if reader.desks is not None and desk not in reader.desks:
            raise NotMember(f"you are not in desk {desk}: the admin adds journalists to desks")
        if summary.desk == desk:
            raise Invalid(f"desk: the source is already in desk {desk}")
        if len(set(replacements.values())) != len(replacements):
            raise Invalid("objects: a replacement is named twice")
        sized: dict[str, tuple[str, int]] = {}
        for old, new in replacements.items():
            if new in replacements or self.rows.object_is_known(new):
                raise Invalid(f"objects: {new} is not a new object")
            try:
                size = self.store.size(new)
            except (OSError, ValueError):
                raise Invalid(f"objects: {new} was not uploaded") from None
            sized[old] = (new, size)
        try:
            self.rows.move_source(source_id, desk, sized)
        except SourceNotFound:
            raise NotFound(source_id) from None
        for old in replacements:
            self.store.delete(old)
